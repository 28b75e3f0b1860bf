"""The least CPU each operation of bench_load's mix can cost here, from the parts it cannot skip.

    python -m evals.bench_floor --baseline <git worktree of 965d01c> --rounds 3

Issue 12 item 9 asks 3x the baseline's throughput under bench_load. On two cores that is a CPU
budget per operation: 2,000 ms / (3 x the baseline's req/s), the clients included (they run on
the same box). This times, in-process and with nothing of agentmem around them, the parts that
any server keeping DESIGN's contract does for each operation, so their sum bounds what any code
can reach:

- `query embedding`: the bundled MiniLM (ONNX, as served) on one 4-word query alone, and per
  query in a batch of `--batch` (what merging concurrent recalls gives at best);
- `line embedding`: what a one-line append of a 12-word line has embedded (`ArchivalIndex.prepare`:
  its unit key, and scaffolds where the line has any), alone, and per line in a batch;
- `LanceDB add`: one durable commit of one row into a 200-row table, as an append makes;
- `LanceDB BM25`: one full-text query (ids and scores only, limit 20) of a 200-row table with its
  FTS index current (no unindexed rows: the cheapest case), as a hybrid recall makes per scope.

The HTTP floor (one authenticated request's server and client CPU: bench_load `--mix get=1`) and,
with `--baseline`, the baseline's throughput under the default mix are measured in every round
beside the parts, and each round's floor is set against that round's budget. CPU is the
process's (`time.process_time`: all threads, LanceDB's and ONNX Runtime's included) or, for the
loads, the server's and the clients' (bench_load's `cpu`); medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional

from evals._bench import log
from evals.bench_load import DEFAULT_MIX, _sentence, parse_mix

MIX = {op: w / sum(parse_mix(DEFAULT_MIX).values()) for op, w in parse_mix(DEFAULT_MIX).items()}
"""bench_load's default mix, as shares of operations."""
REQUESTS = {"recall": 1, "append": 1, "core": 2}
"""HTTP requests per operation (core: a get, then a guarded update)."""
COMPACT_EVERY = 10
SCOPES_PER_RECALL = 2
"""bench_load's recall searches the agent's scope and the shared user scope."""


def cpu_ms(call: Callable[[], Any], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) * 1000 / n


async def acpu_ms(call: Callable[[], Awaitable[Any]], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) * 1000 / n


async def lance_parts(rng: random.Random, n: int, folder: Path) -> dict[str, float]:
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS

    db = await lancedb.connect_async(str(folder))

    def rows(count: int, start: int) -> pa.Table:
        return pa.table(
            {
                "chunk_id": [f"c{start + i}" for i in range(count)],
                "text": [_sentence(rng) for _ in range(count)],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array([rng.random() for _ in range(count * 384)], pa.float32()), 384
                ),
            }
        )

    table = await db.create_table("floor", rows(200, 0))
    await table.create_index("text", config=FTS())

    async def bm25() -> None:
        query = table.query().nearest_to_text(_sentence(rng, 4), columns="text")
        await query.select(["chunk_id", "_score"]).limit(20).to_arrow()

    for _ in range(5):
        await bm25()
    search = await acpu_ms(bm25, n)
    # Each add leaves a fragment, and a manifest listing them all that the next commit rewrites:
    # compacted every `COMPACT_EVERY` adds (untimed), as maintenance does, the floor is the
    # cheap case. Searches are timed first, on the compacted, indexed table.
    commit = 0.0
    for i in range(n):
        row = rows(1, 200 + i)
        started = time.process_time()
        await table.add(row)
        commit += time.process_time() - started
        if i % COMPACT_EVERY == COMPACT_EVERY - 1:
            await table.optimize()
    return {"LanceDB BM25 (one scope)": search, "LanceDB add (one row)": commit * 1000 / n}


class _Recording:
    """The embedder, keeping the texts it is given (to learn what an append embeds)."""

    def __init__(self, embedder: Any):
        self.embedder = embedder
        self.texts: list[str] = []

    def embed(self, texts: Any) -> Any:
        self.texts.extend(texts)
        return self.embedder.embed(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)


async def _texts_of_appends(settings: Any, embedder: Any, lines: list[str]) -> list[str]:
    """What `prepare` embeds for one-line appends of `lines` (bench_load's append): each line's
    unit key, and its scaffolds where it has any."""
    from agentmem_server.services.archival import ArchivalIndex

    recording = _Recording(embedder)
    index = await ArchivalIndex.open(settings, recording, background_maintenance=False)
    try:
        for line in lines:
            await index.prepare([line], units=True)
    finally:
        await index.close()
    return recording.texts


def model_parts(rng: random.Random, n: int, batch: int, folder: Path) -> dict[str, float]:
    from agentmem_server.embedding.loader import load_embedder
    from agentmem_server.settings import Settings

    settings = Settings(data_dir=folder, embedding_model="bundled:all-MiniLM-L6-v2")
    embedder: Any = load_embedder(settings)
    query = getattr(embedder, "embed_query", embedder.embed)
    texts = asyncio.run(
        _texts_of_appends(settings, embedder, [_sentence(rng) for _ in range(batch)])
    )
    one_line = asyncio.run(_texts_of_appends(settings, embedder, [_sentence(rng)]))
    queries = [_sentence(rng, 4) for _ in range(batch)]
    for _ in range(5):
        query([queries[0]])
    return {
        "query embedding, alone": cpu_ms(lambda: query([_sentence(rng, 4)]), n),
        f"query embedding, in a batch of {batch}": cpu_ms(lambda: embedder.embed(queries), n)
        / batch,
        "texts embedded per line": len(texts) / batch,
        "line embedding, alone": cpu_ms(lambda: embedder.embed(one_line), n),
        f"line embedding, in a batch of {batch}": cpu_ms(lambda: embedder.embed(texts), n) / batch,
    }


def floor(parts: dict[str, float], batch: int) -> dict[str, float]:
    """The mix's floor per operation from one round's `parts`, and, where the round ran the
    baseline, the CPU per operation 3x its throughput allows on two cores."""
    query = parts[f"query embedding, in a batch of {batch}"]
    line = parts[f"line embedding, in a batch of {batch}"]
    per_op = {
        "recall": query + SCOPES_PER_RECALL * parts["LanceDB BM25 (one scope)"],
        "append": line + parts["LanceDB add (one row)"],
        "core": 0.0,
    }
    request = parts["request: server"] + parts["request: client"]
    http = {op: REQUESTS[op] * request for op in MIX}
    total = sum(MIX[op] * (per_op[op] + http[op]) for op in MIX)
    out = {
        "floor_ms_per_op": total,
        "of_which_http_ms": sum(MIX[op] * http[op] for op in MIX),
        "ceiling_rps_on_2_cores": 2000 / total,
    }
    if parts.get("baseline req/s"):
        budget = 2000 / (3 * parts["baseline req/s"])
        out["budget_ms_per_op_at_3x"] = budget
        out["floor_over_budget"] = total / budget
    return out


def load_parts(args: argparse.Namespace) -> dict[str, float]:
    """One authenticated request's CPU (bench_load `--mix get=1`, the hash model: no embedding)
    and, with `--baseline`, the baseline's throughput under the default mix, now."""
    from evals.bench_load import one_run

    def load(mix: str, code: Optional[Path], setting: list[str]) -> dict[str, Any]:
        return one_run(
            "sqlite",
            code,
            argparse.Namespace(
                seconds=args.load_seconds,
                warmup_s=10.0,
                clients=16,
                mix=mix,
                seed_lines=10 if mix == "get=1" else 200,
                setting=setting,
                postgres_url="",
            ),
        )

    got = load("get=1", None, ["embedding_model=hash:384"])
    parts = {
        "request: server": got["cpu"]["server_ms_per_request"],
        "request: client": got["cpu"]["client_ms_per_request"],
    }
    if args.baseline is not None:
        base = load(DEFAULT_MIX, args.baseline, [])
        parts["baseline req/s"] = base["throughput_rps"]
        parts["baseline CPU ms/op, server + clients"] = (
            base["cpu"]["server_ms_per_request"] + base["cpu"]["client_ms_per_request"]
        )
    return parts


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="calls per part and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a checkout of the baseline (965d01c), run under the mix in every round",
    )
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(3)
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            parts = load_parts(args)
            parts.update(model_parts(rng, args.n, args.batch, Path(tmp) / "model"))
            parts.update(asyncio.run(lance_parts(rng, args.n, Path(tmp) / f"lance{r}")))
            # Each round's floor against that round's baseline: the box's speed moves by 2x
            # within an hour, so parts measured apart do not compare.
            parts.update(floor(parts, args.batch))
            for name, value in parts.items():
                samples.setdefault(name, []).append(value)
            log(f"floor: round {r + 1}/{args.rounds}", json.dumps(parts))
    report = {
        "median_of_rounds": {k: round(statistics.median(xs), 3) for k, xs in samples.items()},
        "rounds": {k: [round(x, 3) for x in xs] for k, xs in samples.items()},
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
