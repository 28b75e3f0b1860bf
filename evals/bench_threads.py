"""Threads over HTTP: paging a 100k-message thread, and compacting 1,000 messages end to end.

Each backend runs a real `agentmem serve` process on a loopback port with the offline provider;
the public client talks to it. Both backends are measured in the same run (the machine is shared).

    python -m evals.bench_threads [--messages 100000] [--n 200] [--compact 1000]
        [--postgres-url URL] [--no-postgres] [--out evals/out/bench_threads.json]

- list 50: `threads.messages(limit=50)` first page, `after=` a message in the middle, and
  `before=` one (the last 50 before it), p50/p95 over `--n` calls each. Target (issue 16):
  p50 <= 10 ms.
- run: one offline-provider run continuing the 100k thread, against one on a 10-message thread.
- compaction: `threads.compact(keep_last=0)` of `--compact` messages (~25 words each) with the
  bundled model, wall time; beside it, `memory.append` of the same lines to another agent (the
  embedding part alone), so the ratio shows what compaction adds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import agentmem
from evals._bench import Server, latency_summary, log
from evals.bench_core import _drop_schema, _pg_schema_url

DEFAULT_PG = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WORDS = (
    "trip booking seat window aisle hotel Lisbon Porto train dinner museum ticket family budget "
    "flight morning evening weather beach walk coffee market river bridge castle gallery"
).split()


def sentence(rng: random.Random, i: int) -> str:
    return f"Message {i}: " + " ".join(rng.choice(WORDS) for _ in range(24)) + "."


def fill(client: agentmem.Client, thread_id: str, count: int, rng: random.Random) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 1000):
        batch = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": sentence(rng, i)}
            for i in range(start, min(count, start + 1000))
        ]
        ids += [m.id for m in client.threads.add_messages(thread_id, batch)]
    return ids


def timed(fn, n: int) -> dict:
    for _ in range(20):  # warm the pools and the code path
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return latency_summary(samples)


def measure_paging(url: str, key: str, messages: int, n: int) -> dict:
    rng = random.Random(16)
    with agentmem.Client(api_key=key, base_url=url, timeout=600) as client:
        client.agents.create("bench")
        thread = client.threads.create(agent_id="bench")
        t0 = time.perf_counter()
        ids = fill(client, thread.id, messages, rng)
        fill_s = time.perf_counter() - t0
        log(f"  filled {messages} messages in {fill_s:.1f} s")
        middle = ids[len(ids) // 2]
        out = {
            "fill_s": round(fill_s, 1),
            "first_page": timed(lambda: client.threads.messages(thread.id, limit=50), n),
            "after_middle": timed(
                lambda: client.threads.messages(thread.id, limit=50, after=middle), n
            ),
            "before_middle": timed(
                lambda: client.threads.messages(thread.id, limit=50, before=middle), n
            ),
        }
        small = client.threads.create(agent_id="bench")
        fill(client, small.id, 10, rng)
        runs = 10
        out["run_on_10"] = timed(
            lambda: client.agents.run("bench", "Hello", thread_id=small.id), runs
        )
        out["run_on_big"] = timed(
            lambda: client.agents.run("bench", "Hello", thread_id=thread.id), runs
        )
    return out


def measure_compaction(url: str, key: str, count: int) -> dict:
    rng = random.Random(1000)
    with agentmem.Client(api_key=key, base_url=url, timeout=1800) as client:
        client.agents.create("compact")
        client.agents.create("append")
        thread = client.threads.create(agent_id="compact")
        fill(client, thread.id, count, rng)
        client.memory.append("archival", "warm up the model", agent_id="append")
        lines = [sentence(random.Random(1000 + i), i) for i in range(count)]
        t0 = time.perf_counter()
        client.memory.append("archival", "\n".join(lines), agent_id="append")
        append_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = client.threads.compact(thread.id, keep_last=0)
        compact_s = time.perf_counter() - t0
        assert result.compacted == count, result
    return {
        "messages": count,
        "compact_s": round(compact_s, 2),
        "append_same_lines_s": round(append_s, 2),
        "ratio": round(compact_s / append_s, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=200, help="measured calls per paging kind")
    parser.add_argument("--compact", type=int, default=1000, help="messages compacted (0: skip)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("evals/out/bench_threads.json"))
    args = parser.parse_args(argv)

    results: dict[str, dict] = {}
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    pg = None if args.no_postgres else _pg_schema_url(args.postgres_url)
    if pg:
        backends.append(("postgres", pg[0]))
    try:
        for name, db_url in backends:
            log(f"{name}: paging")
            with tempfile.TemporaryDirectory() as tmp:
                settings = {"embedding_model": "hash:384"} | (
                    {"database_url": db_url} if db_url else {}
                )
                server = Server(Path(tmp), **settings).start()
                try:
                    results[name] = measure_paging(server.url, server.key, args.messages, args.n)
                finally:
                    server.stop()
            if pg and db_url:  # a fresh schema for the compaction server
                _drop_schema(args.postgres_url, pg[1])
                pg = _pg_schema_url(args.postgres_url)
                db_url = pg[0] if pg else None
            r = results[name]
            for kind in ("first_page", "after_middle", "before_middle", "run_on_10", "run_on_big"):
                log(
                    f"  {kind:14s} p50 {r[kind]['p50_ms']:8.2f} ms  "
                    f"p95 {r[kind]['p95_ms']:8.2f} ms (n={r[kind]['n']})"
                )
            if args.compact and (db_url or name == "sqlite"):
                log(f"{name}: compaction of {args.compact} messages (bundled model)")
                with tempfile.TemporaryDirectory() as tmp:
                    settings = {"embedding_model": "bundled:all-MiniLM-L6-v2"} | (
                        {"database_url": db_url} if db_url else {}
                    )
                    server = Server(Path(tmp), **settings).start()
                    try:
                        results[name]["compaction"] = c = measure_compaction(
                            server.url, server.key, args.compact
                        )
                    finally:
                        server.stop()
                log(
                    f"  compact {c['compact_s']} s; append of the same lines "
                    f"{c['append_same_lines_s']} s (ratio {c['ratio']})"
                )
    finally:
        if pg:
            _drop_schema(args.postgres_url, pg[1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
