"""Load benchmark (issue 12, item 9): 16 concurrent clients of mixed memory traffic on one server.

    python -m evals.bench_load --seconds 120 --db sqlite,postgres
    python -m evals.bench_load --seconds 120 --old /tmp/old9611      # old and new, side by side

Each client loops for `--seconds` over a mix (weights `--mix`): `recall` (hybrid, k=5, its agent
scope and the shared user scope), `append` (one archival line to its agent scope), and `core`
(get the agent's core block, then a guarded update of it: read-modify-write, retried on 409),
and, outside the default mix, `get` (the core block's get alone: authentication, one SQL read,
a JSON answer) and `ping` (`GET /healthz` over the same client's connections, answered before
authentication): the floors under any request, `--mix get=1`.
Clients use `max_retries=0`, so every failure is counted. Before the clock starts each agent
holds `--seed-lines` archival lines. Per run: requests/s, p50/p95/p99 (ms) overall and per
operation, errors by kind, and the server's RSS at the start and the end and every twentieth of
the run (`rss_trace_mb`; `agentmem serve` in its own process, the bundled MiniLM,
`AGENTMEM_RATE_LIMIT_PER_S=0`), and CPU over the timed window (`cpu`): the cores the server
and this process's clients used, and their CPU ms per request, the server's by thread name (its
event loop apart; Python's own threads all read `python`). `--warmup-s` runs the load that
long first, uncounted, and reads the start RSS after it: the RSS target (flat within 5%) is about
a server past its warm-up.
With `--old`, each database runs old then new, back to back, on the same box: compare the
ratios, the box is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional

from evals._bench import Server, log

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu garden tea "
    "dentist lisbon window seat peanut allergy rust python berlin meeting invoice"
).split()


def _sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


DEFAULT_MIX = "recall=5,append=2,core=3"


def parse_mix(text: str) -> dict[str, float]:
    """`recall=5,append=2` as {"recall": 5.0, "append": 2.0}: each op's weight."""
    return {k: float(v) for k, v in (p.split("=") for p in text.split(","))}


def _pct(ordered: list[float], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000, 1)


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": _pct(ordered, 0.5),
        "p95_ms": _pct(ordered, 0.95),
        "p99_ms": _pct(ordered, 0.99),
    }


async def run_load(server: Server, args: argparse.Namespace) -> dict:
    import agentmem

    mix = parse_mix(args.mix)
    ops, weights = list(mix), list(mix.values())
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    seed = random.Random(1)

    async with agentmem.AsyncClient(
        api_key=server.key, base_url=server.url, timeout=120, max_retries=0
    ) as setup:
        for c in range(args.clients):
            lines = "\n".join(_sentence(seed) for _ in range(args.seed_lines))
            await setup.memory.append("archival", lines, agent_id=f"agent-{c}")
            await setup.memory.update(
                "core", "counter: 0", expected_updated_at=None, agent_id=f"agent-{c}"
            )
        await setup.memory.append(
            "archival", "\n".join(_sentence(seed) for _ in range(args.seed_lines))
        )
    log(f"load: seeded, {args.clients} clients for {args.warmup_s:g} + {args.seconds:g} s")
    # Requests of the warm-up are not counted, and RSS is read when it ends: the first minutes
    # of load fill caches and copies that then stay (docs: evals/README.md, bench_load).
    measure_from = time.monotonic() + args.warmup_s
    stop_at = measure_from + args.seconds
    rss_trace: list[tuple[float, float]] = []
    cpu_at_start: dict = {}

    async def sample_rss() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_at_start.update(_cpu_now(server))
        every = max(5.0, args.seconds / 20)
        while time.monotonic() < stop_at:
            rss_trace.append((round(time.monotonic() - measure_from, 1), server.rss_mb()))
            await asyncio.sleep(every)

    async def client_loop(c: int) -> None:
        rng = random.Random(100 + c)
        agent = f"agent-{c}"
        async with agentmem.AsyncClient(
            api_key=server.key, base_url=server.url, timeout=120, max_retries=0
        ) as client:
            while time.monotonic() < stop_at:
                op = rng.choices(ops, weights)[0]
                started = time.perf_counter()
                try:
                    if op == "ping":  # the floor: an empty request, same connection pool
                        (await client._http.get(server.url + "/healthz")).raise_for_status()
                    elif op == "get":  # the least an API request does: auth, one SQL read
                        await client.memory.get("core", agent_id=agent)
                    elif op == "recall":
                        await client.memory.recall(_sentence(rng, 4), agent_id=agent, limit=5)
                    elif op == "append":
                        await client.memory.append("archival", _sentence(rng), agent_id=agent)
                    else:
                        for _ in range(5):
                            block = await client.memory.get("core", agent_id=agent)
                            value = int(block.content.split(": ")[1]) + 1
                            try:
                                await client.memory.update(
                                    "core",
                                    f"counter: {value}",
                                    expected_updated_at=block.updated_at,
                                    agent_id=agent,
                                )
                                break
                            except agentmem.ConflictError:
                                continue
                except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                    errors[f"{op}: {type(exc).__name__}"] += 1
                    continue
                if time.monotonic() >= measure_from:
                    latencies[op].append(time.perf_counter() - started)

    sampler = asyncio.ensure_future(sample_rss())
    await asyncio.gather(*(client_loop(c) for c in range(args.clients)))
    elapsed = time.monotonic() - measure_from
    await sampler
    cpu_at_end = _cpu_now(server)
    everything = [x for xs in latencies.values() for x in xs]
    return {
        "seconds": round(elapsed, 1),
        "requests": len(everything),
        "throughput_rps": round(len(everything) / elapsed, 1),
        "latency": summary(everything),
        "by_op": {op: summary(xs) for op, xs in sorted(latencies.items())},
        "errors": dict(errors),
        "cpu": _cpu_report(cpu_at_start, cpu_at_end, elapsed, len(everything)),
        "rss_start_mb": rss_trace[0][1] if rss_trace else server.rss_mb(),
        "rss_end_mb": server.rss_mb(),
        "rss_trace_mb": rss_trace,
    }


def _cpu_now(server: Server) -> dict:
    return {
        "client": time.process_time(),
        "server": server.cpu_s(),
        "threads": server.thread_cpu_s(),
    }


def _cpu_report(start: dict, end: dict, elapsed: float, requests: int) -> dict:
    """Cores used over the timed window, and CPU ms per request (an operation of the mix, as in
    `requests`: `core` is two HTTP requests), of the server (by thread name) and of this
    process's clients: on a shared box these move less than req/s does, and the clients' share
    is CPU the server could not have had."""
    per = 1000 / max(1, requests)
    threads = {
        name: round((seconds - start["threads"].get(name, 0.0)) * per, 2)
        for name, seconds in end["threads"].items()
    }
    return {
        "server_cores": round((end["server"] - start["server"]) / elapsed, 2),
        "client_cores": round((end["client"] - start["client"]) / elapsed, 2),
        "server_ms_per_request": round((end["server"] - start["server"]) * per, 2),
        "client_ms_per_request": round((end["client"] - start["client"]) * per, 2),
        "server_ms_per_request_by_thread": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
    }


def one_run(db: str, code: Optional[Path], args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"embedding_model": "bundled:all-MiniLM-L6-v2", "rate_limit_per_s": "0"}
        settings.update(kv.split("=", 1) for kv in args.setting)
        if db == "postgres":
            settings["database_url"] = _fresh_postgres_schema(args.postgres_url)
        server = Server(Path(tmp), code=code, **settings).start()
        try:
            result = asyncio.run(run_load(server, args))
        finally:
            server.stop()
        return {"db": db, "code": str(code) if code else "this checkout", **result}


def _fresh_postgres_schema(base: str) -> str:
    import secrets
    from urllib.parse import quote

    import sqlalchemy

    schema = "bench_" + secrets.token_hex(4)
    engine = sqlalchemy.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument(
        "--warmup-s", type=float, default=0.0, help="load first, not counted; RSS read after it"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--seed-lines", type=int, default=200)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--old", type=Path, default=None, help="an older checkout, run before this one"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting for every run, e.g. recall_cache_mb=0 (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for db in args.db.split(","):
        for code in ([args.old] if args.old else []) + [None]:
            log("load:", db, code or "this checkout")
            runs.append(one_run(db, code, args))
            log(json.dumps(runs[-1]))
    report = {"clients": args.clients, "mix": args.mix, "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
