"""CPU per operation of the archival index alone under steady writes (in-process: no HTTP, no SQL,
hash embeddings), with background maintenance and the in-memory copies on, as a server runs them.

16 scopes of `--seed` lines each; 16 clients, each on its own scope, loop: `append` mode appends
one line and sleeps 0.4 s (~2 appends a second per table, each table written without a quiet
period); `mix` mode recalls 5 : appends 2 and sleeps 0.15 s. After 5 s of warm-up, it prints the
process's CPU per operation over `--seconds`, the maintenance passes that began meanwhile, the
vector legs answered from a copy and the appends written through to one. Run old code against
new with PYTHONPATH=<checkout>/server:<checkout> (a `git worktree` of the old commit):

    python -m evals.bench_lance_writes append --seed 5000 [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from pathlib import Path

WORDS = "apple river engine garden planet violin copper meadow harbor lantern".split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(8))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(mode: str, seed_lines: int, seconds: float) -> str:
    from agentmem_server import Settings
    from agentmem_server.embedding import HashEmbedder
    from agentmem_server.services.archival import ArchivalIndex
    from agentmem_server.storage.base import BlockRef, ScopeKey

    settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data", embedding_model="hash:384")
    index = await ArchivalIndex.open(settings, HashEmbedder(384), background_maintenance=True)
    passes = 0
    maintain = index.store.lance.maintain

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal passes
        passes += 1
        return await maintain(*args, **kwargs)

    index.store.lance.maintain = counted  # type: ignore[method-assign]
    blocks = [BlockRef("t1", f"blk{c}", "agent", f"agent-{c}") for c in range(16)]
    rng = random.Random(1)
    lines = [seed_lines] * 16
    for block in blocks:
        prepared = await index.prepare([_sentence(rng) for _ in range(seed_lines)])
        await index.add(block, prepared, first_line=1, written_at=1)
    await asyncio.sleep(3)
    counting, done = False, 0
    stop = time.monotonic() + 5 + seconds + 1

    async def client(c: int) -> None:
        nonlocal done
        rng = random.Random(100 + c)
        while time.monotonic() < stop:
            op = "append" if mode == "append" else rng.choices(["recall", "append"], [5, 2])[0]
            if op == "append":
                lines[c] += 1
                prepared = await index.prepare([_sentence(rng)])
                await index.add(blocks[c], prepared, first_line=lines[c], written_at=lines[c])
            else:
                scope = ScopeKey("agent", f"agent-{c}")
                await index.recall("t1", _sentence(rng)[:30], scopes=[scope], limit=5)
            done += counting
            await asyncio.sleep(0.4 if mode == "append" else 0.15)

    tasks = [asyncio.create_task(client(c)) for c in range(16)]
    await asyncio.sleep(5)
    counting, cpu, passed, started = True, _cpu_s(), passes, time.monotonic()
    await asyncio.sleep(seconds)
    counting = False
    cpu, passed, wall = _cpu_s() - cpu, passes - passed, time.monotonic() - started
    await asyncio.gather(*tasks)
    cache = index.store.lance.vector_cache
    await index.close()
    return (
        f"{mode}: {done} ops ({done / wall:.1f}/s), CPU {cpu / done * 1000:.2f} ms/op, "
        f"{passed} maintenance passes, {getattr(cache, 'served', '-')} vector legs from a copy and "
        f"{getattr(cache, 'written_through', '-')} appends written through (whole run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["append", "mix"])
    parser.add_argument("--seed", type=int, default=200, help="lines per scope before the load")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(asyncio.run(run(args.mode, args.seed, args.seconds)))


if __name__ == "__main__":
    main()
