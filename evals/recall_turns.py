"""Turns of the event loop and callbacks per recall, counted in-process: the recall as
`MemoryService` runs it (the query's embedding started first, then `ArchivalIndex.recall`), on
asyncio's own loop with every `_run_once` (a turn) and `Handle._run` (a callback) counted from the
query's start to the answer. Hash embedder, one scope of `--lines` lines, the vector leg from its
in-memory copy. Each turn is a point where whatever else is ready on the loop runs first.

    python -m evals.recall_turns [--recalls 1000] [--lines 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events as base_events
import asyncio.events as events
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

COUNTS = {"turns": 0, "callbacks": 0}


def _count() -> None:
    run_once = base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]
    handle_run = events.Handle._run

    def counted_run_once(self: Any) -> None:
        COUNTS["turns"] += 1
        run_once(self)

    def counted_handle_run(self: Any) -> None:
        COUNTS["callbacks"] += 1
        handle_run(self)

    base_events.BaseEventLoop._run_once = counted_run_once  # type: ignore[attr-defined]
    events.Handle._run = counted_handle_run  # type: ignore[method-assign]


async def measure(recalls: int, lines: int) -> dict[str, dict[str, float]]:
    from agentmem_server.embedding import HashEmbedder
    from agentmem_server.services.archival import ArchivalIndex
    from agentmem_server.settings import Settings
    from agentmem_server.storage.base import BlockRef

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            embedding_model="hash:64",
            chunk_tokens=64,
            chunk_overlap_lines=1,
        )
        index = await ArchivalIndex.open(settings, HashEmbedder(64), background_maintenance=False)
        try:
            block = BlockRef("t1", "blk1", "user", None)
            text = [f"note {i}: topic {i % 37} with word{i % 101} and more" for i in range(lines)]
            await index.add(block, await index.prepare(text), first_line=1, written_at=1)
            cache = index.store.lance.vector_cache  # type: ignore[attr-defined]
            for _ in range(200):  # until the in-memory copy answers
                await index.recall("t1", "topic 5", scopes=[block], mode="vector", limit=5)
                if cache.served:
                    break
                await asyncio.sleep(0.05)
            report: dict[str, dict[str, float]] = {}
            for mode in ("vector", "hybrid"):
                turns, callbacks, walls = [], [], []
                for q in range(recalls):
                    query = f"topic {q % 37} word{q % 101}"
                    COUNTS["turns"] = COUNTS["callbacks"] = 0
                    start = time.perf_counter()
                    await index.recall(
                        "t1",
                        query,
                        scopes=[block],
                        mode=mode,  # type: ignore[arg-type]
                        limit=5,
                        query_vector=index.embed_query(query),
                        hidden_writes=frozenset(),
                    )
                    walls.append(time.perf_counter() - start)
                    turns.append(COUNTS["turns"])
                    callbacks.append(COUNTS["callbacks"])
                report[mode] = {
                    "turns_p50": statistics.median(turns),
                    "callbacks_p50": statistics.median(callbacks),
                    "wall_p50_ms": round(statistics.median(walls) * 1e3, 3),
                }
            return report
        finally:
            await index.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recalls", type=int, default=1000)
    p.add_argument("--lines", type=int, default=2000)
    args = p.parse_args()
    _count()
    for mode, figures in asyncio.run(measure(args.recalls, args.lines)).items():
        print(mode, figures)


if __name__ == "__main__":
    main()
