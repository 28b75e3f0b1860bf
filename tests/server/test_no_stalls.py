"""One request cannot stall the server (issue 12, item 6).

- A long single line is chunked off the event loop (before: lines <= 64 were chunked on it, so
  one 1 MB line held the loop for seconds).
- Chunking gives up when the index closes, so a shutdown never waits for a huge append's
  chunking to end.
- Checking every chunk in one batch makes the same chunks as checking each as it grows.
- The import body's line splitter is linear in a long line (before: quadratic).
- Bulk embedding lanes run at a lower OS priority than the query lane and the event loop, and a
  query has a tokenizer of its own (before: one lock shared with the bulk lanes).
- `agentmem serve` freezes its start-up heap, so a full garbage collection no longer walks
  ~300k objects while no thread may run Python (0.1-1 s pauses on a busy box).
- A big append's rows are hashed, numbered, given their scaffold cosines and made into an Arrow
  table off the event loop (before: on it, ~2.5 s for an 8 MiB append of chat lines).
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import threading
import time
import weakref
from typing import Any

import pytest

from agentmem_server import chunking, scaffold
from agentmem_server.api.routes.transfer import _lines
from agentmem_server.chunking import ChunkBudget, ChunkingStopped, _chunk, _Lines, chunk_lines
from agentmem_server.embedding import EmbeddingBatcher, HashEmbedder
from agentmem_server.memtrim import freeze_heap
from agentmem_server.priority import thread_nice
from agentmem_server.services import archival
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.storage.base import BlockRef, ScopeKey
from agentmem_server.storage.lance import index as lance_index
from agentmem_server.tokens import count_tokens


async def test_a_long_line_is_chunked_off_the_event_loop(
    index: ArchivalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    for name in ("chunk_lines", "build_units"):  # whichever the table format uses
        real = getattr(chunking, name)

        def recording(*args, real=real, **kwargs):
            threads.append(threading.current_thread())
            return real(*args, **kwargs)

        monkeypatch.setattr(f"agentmem_server.services.archival.{name}", recording)
    prepared = await index.prepare(["word " * 20_000])
    assert prepared.chunks and threads and threads[0] is not threading.main_thread()
    await index.prepare(["a short line"])  # small input: inline, microseconds
    assert threads[1] is threading.main_thread()


async def test_chunking_stops_when_the_index_closes(open_index) -> None:
    index = await open_index()
    lines = [f"line {i} " + "word " * 30 for i in range(20_000)]
    task = asyncio.ensure_future(index.prepare(lines))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await index.close()
    with pytest.raises((ChunkingStopped, RuntimeError)):
        await task
    assert time.monotonic() - started < 10


def test_chunk_lines_stops_when_asked(hash_embedder) -> None:
    budget = ChunkBudget(64, count_tokens, 128, hash_embedder.count_tokens)
    with pytest.raises(ChunkingStopped):
        chunk_lines(["some words"] * 10, budget, stop=lambda: True)


@pytest.mark.parametrize("seed", range(5))
def test_batch_checked_chunks_equal_chunks_checked_one_by_one(hash_embedder, seed: int) -> None:
    rng = random.Random(seed)
    words = ["a", "bb", "ccc", "delta", "\t", "  ", "x" * 40, "<|endoftext|>", "naïve", "日本語"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    budget = ChunkBudget(
        48,
        count_tokens,
        64,
        hash_embedder.count_tokens,
        lambda ts: [hash_embedder.count_tokens(t) for t in ts],
    )
    exact = _chunk(_Lines(lines, budget), 1, 1, verify=True)
    assert chunk_lines(lines, budget, overlap_lines=1) == exact


class _Body:
    def __init__(self, chunks: list[bytes]):
        self._chunks = chunks

    async def stream(self):
        for c in self._chunks:
            yield c


async def _split(chunks: list[bytes]) -> list[bytes]:
    return [line async for line in _lines(_Body(chunks))]  # type: ignore[arg-type]


async def test_the_import_line_splitter_is_right_for_any_chunking() -> None:
    body = b'{"a":1}\n\n{"b":"xyz"}\n{"c":3}'
    expected = body.split(b"\n")
    for size in (1, 2, 3, 5, 8, len(body)):
        assert await _split([body[i : i + size] for i in range(0, len(body), size)]) == expected


async def test_a_long_import_line_is_split_in_linear_time() -> None:
    line = b"x" * (16 << 20)
    chunks = [line[i : i + 16384] for i in range(0, len(line), 16384)] + [b"\n{}"]
    started = time.perf_counter()
    lines = await _split(chunks)
    assert [len(x) for x in lines] == [len(line), 2]
    # Before: every chunk re-split everything pending (16 MiB in 1024 chunks: ~8 GB scanned).
    assert time.perf_counter() - started < 2.0


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own priority on Linux")
async def test_bulk_embedding_lanes_run_at_a_lower_priority_than_queries() -> None:
    seen: dict[str, int] = {}

    class Recording(HashEmbedder):
        def embed(self, texts):
            seen["bulk"] = thread_nice()
            return super().embed(texts)

        def embed_query(self, texts):
            seen["query"] = thread_nice()
            return super().embed(texts)

    base = thread_nice()
    batcher = EmbeddingBatcher(Recording(16), workers=2, bulk_nice=5)
    try:
        await batcher.embed(["a line of a big append"])
        await batcher.embed(["what is due?"], urgent=True)
    finally:
        await batcher.aclose()
    assert seen == {"bulk": min(19, base + 5), "query": base}
    assert thread_nice() == base, "the event loop's thread keeps its priority"


def test_freeze_heap_collects_garbage_first_then_freezes_the_rest() -> None:
    class Node:
        pass

    def cycle() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        return weakref.ref(a)

    garbage = cycle()
    alive = [Node()]
    try:
        frozen = freeze_heap()
        assert garbage() is None, "a cycle that was already garbage is collected, not frozen"
        # Not `== gc.get_freeze_count()` afterwards: a frozen object freed since has left the
        # count, and another thread's objects may be frozen by then too.
        assert frozen > 0 and gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects()), "what lives is out of the walk"
    finally:
        gc.unfreeze()


async def test_lancedb_caches_are_bounded_by_the_settings(
    open_index, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LanceDB's defaults (6 GiB of index pages, 1 GiB of metadata) let a busy server grow toward
    # them: every append makes a table version, and each version read was cached.
    import lancedb

    sizes: list[tuple[int, int]] = []
    real = lancedb.Session

    def recording(*, index_cache_size_bytes: int, metadata_cache_size_bytes: int):
        sizes.append((index_cache_size_bytes, metadata_cache_size_bytes))
        return real(
            index_cache_size_bytes=index_cache_size_bytes,
            metadata_cache_size_bytes=metadata_cache_size_bytes,
        )

    monkeypatch.setattr(lancedb, "Session", recording)
    index = await open_index(lance_index_cache_mb=3, lance_metadata_cache_mb=2)
    assert sizes == [(3 * 2**20, 2 * 2**20)]
    prepared = await index.prepare(["the session serves the searches"])
    await index.add(BlockRef.of("t1", "b1", "", 0), prepared, first_line=1, written_at=1)
    hits = await index.recall("t1", "session", scopes=[ScopeKey("user")])
    assert [h.content for h in hits] == ["the session serves the searches"]


async def test_a_big_append_makes_its_rows_off_the_event_loop(
    index: ArchivalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing, renumbering, scaffolding and turning an 8 MiB append's 130k units into rows is
    ~2.5 s of Python: on the event loop it stalled every other request for that long."""
    loop_thread = threading.get_ident()
    on_loop: list[str] = []

    def watched(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == loop_thread:
                on_loop.append(name)
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(archival, "text_hash", watched("text_hash", archival.text_hash))
    monkeypatch.setattr(lance_index, "rows_table", watched("rows_table", lance_index.rows_table))
    monkeypatch.setattr(scaffold, "scaffold_of", watched("scaffold_of", scaffold.scaffold_of))
    monkeypatch.setattr(scaffold, "replace", watched("replace", scaffold.replace))
    # 2,000 rows: more than INLINE_ROWS (1024), the most a write makes on the loop.
    lines = [f"Ana: item {i} of the inventory is a widget" for i in range(2000)]
    bot = BlockRef("t1", "blk_bot", "agent", "bot")
    await index.add(bot, await index.prepare(lines, units=True), first_line=41, written_at=1)
    assert not on_loop, f"ran on the event loop: {sorted(set(on_loop))}"
    state = await index.store.scope_table("t1", ScopeKey("agent", "bot"))
    assert state is not None
    rows = await state.table.query().select(["start_line", "end_line", "scaffold"]).to_arrow()
    starts, ends = rows.column("start_line").to_pylist(), rows.column("end_line").to_pylist()
    assert len(starts) == len(lines), "one unit per line"
    assert None not in rows.column("scaffold").to_pylist(), "each unit has its speaker's cosine"
    assert (min(starts), max(ends)) == (41, 40 + len(lines)), "numbered from first_line"
