"""The keyword leg's CPU with its rows from the in-memory copy or from LanceDB, in turns.

    python -m evals.bench_keyword_leg --rows 300,10000 --queries 300

In-process (an `ArchivalIndex` on a temporary folder, the hash embedder: the model is not what
is measured): one scope of N bench_load-style lines, copied into memory, then the same keyword
recalls in turns with `VectorCache.rows` answering (LanceDB reads ids and scores only) and
refused (LanceDB reads every column, as before). CPU is the process's (`time.process_time`,
LanceDB's threads included) per recall; wall time beside it. Medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

from evals._bench import log
from evals.bench_load import _sentence

OUT = Path(__file__).resolve().parent / "out" / "bench_keyword_leg.json"


async def measure(rows: int, args: argparse.Namespace) -> dict:
    from agentmem_server.embedding.hashing import HashEmbedder
    from agentmem_server.services.archival import ArchivalIndex
    from agentmem_server.settings import Settings
    from agentmem_server.storage.base import BlockRef, ScopeKey
    from agentmem_server.storage.lance.schema import block_table_name

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, embedding_model="hash:384")
        index = await ArchivalIndex.open(settings, HashEmbedder(384), background_maintenance=False)
        try:
            ref = BlockRef("t1", "blk_bench", "user", None)
            lines = [_sentence(rng) for _ in range(rows)]
            for start in range(0, rows, 1000):
                part = lines[start : start + 1000]
                await index.add(ref, await index.prepare(part), first_line=start + 1, written_at=1)
            await index.maintain()
            scopes = [ScopeKey("user")]
            cache = index.store.lance.vector_cache
            assert cache is not None
            name = block_table_name("t1", scopes[0], ref.block_id)
            for _ in range(500):  # the first recall starts the copy
                await index.recall("t1", "alpha", scopes=scopes, mode="vector", limit=5)
                state = await index.store.lance.table(name)
                if state is not None and await cache.current(name, state.table):
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the scope was not copied into memory")
            queries = [_sentence(rng, 4) for _ in range(args.queries)]
            rows_of = cache.rows
            cpu: dict[str, list[float]] = {"copy": [], "lancedb": []}
            wall: dict[str, list[float]] = {"copy": [], "lancedb": []}
            for _ in range(args.rounds):
                for name in ("copy", "lancedb"):
                    cache.rows = rows_of if name == "copy" else (lambda *a, **k: None)  # type: ignore[method-assign]
                    c0, t0 = time.process_time(), time.perf_counter()
                    for q in queries:
                        await index.recall("t1", q, scopes=scopes, mode="keyword", limit=5)
                    cpu[name].append((time.process_time() - c0) / len(queries) * 1000)
                    wall[name].append((time.perf_counter() - t0) / len(queries) * 1000)
            cache.rows = rows_of  # type: ignore[method-assign]
        finally:
            with contextlib.suppress(Exception):
                await index.close()
    out = {
        name: {
            "cpu_ms": round(statistics.median(cpu[name]), 3),
            "wall_ms": round(statistics.median(wall[name]), 3),
        }
        for name in cpu
    }
    return {
        "rows": rows,
        **out,
        "cpu_ratio": round(out["lancedb"]["cpu_ms"] / out["copy"]["cpu_ms"], 3),
    }


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="300,10000")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    report = {"started": time.strftime("%Y-%m-%d %H:%M"), "runs": []}
    for n in args.rows.split(","):
        run = asyncio.run(measure(int(n), args))
        report["runs"].append(run)
        log(json.dumps(run))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
