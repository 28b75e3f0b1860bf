"""Archival tables of line units (`archival_units="lines"`): written, searched by their key,
updated, deleted and re-embedded; tables of chunks made before stay chunks and stay readable."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentmem_server.embedding import HashEmbedder
from agentmem_server.services import recall
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.storage.base import BlockRef, ScopeKey
from agentmem_server.storage.lance.arrow import vectors_of
from agentmem_server.storage.lance.schema import schema_units

from support import T0_US

BOT = BlockRef("t1", "blk_bot", "agent", "bot")
SCOPE = ScopeKey("agent", "bot")
CHAT = [
    "[1:56 pm on 8 May, 2023] Ana: Hey Bo! How was the weekend?",
    "[1:56 pm on 8 May, 2023] Bo: Lovely. We went kayaking yesterday.",
    "[1:56 pm on 8 May, 2023] Ana: Oh nice, where did you go?",
    "[1:56 pm on 8 May, 2023] Bo: Up the river past the old mill.",
    "[1:56 pm on 8 May, 2023] Ana: I spent the whole weekend painting the fence.",
]


async def units_index(open_index, **overrides) -> ArchivalIndex:
    return await open_index(archival_units="lines", **overrides)


async def rows(index: ArchivalIndex) -> list[dict]:
    state = await index.store.scope_table("t1", SCOPE)
    return await state.table.query().to_list()


async def test_a_new_block_gets_one_row_per_line_keyed_and_searched_by_its_key(open_index) -> None:
    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT), first_line=11, written_at=T0_US)
    state = await index.store.scope_table("t1", SCOPE)
    assert schema_units(state.table_schema)
    stored = sorted(await rows(index), key=lambda r: r["end_line"])
    assert len(stored) == len(CHAT)
    # The date a relative phrase means is searchable, though no line says it.
    hits = await index.recall("t1", "7 May 2023", scopes=[SCOPE], mode="keyword", limit=1)
    assert hits[0].content == "\n".join(CHAT[0:3])
    assert (hits[0].line_number, hits[0].end_line) == (11, 13)
    # A vector is its key's: the previous line and the line, the date written once.
    row = next(r for r in stored if r["start_line"] == 11 and r["end_line"] == 13)
    assert row["key"] == (
        "[8 May 2023] Ana: Hey Bo! How was the weekend?\n"
        "Bo: Lovely. We went kayaking yesterday (7 May 2023)."
    )
    expected = HashEmbedder(64).embed([row["key"]])[0]
    assert np.allclose(row["vector"], expected, atol=1e-6)


async def test_hybrid_returns_the_line_with_its_neighbours_spread_over_the_block(
    open_index,
) -> None:
    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT), first_line=1, written_at=T0_US)
    hits = await index.recall("t1", "river old mill", scopes=[SCOPE], mode="hybrid", limit=2)
    assert (hits[0].line_number, hits[0].end_line) == (3, 5)
    assert "past the old mill" in hits[0].content


async def test_an_update_embeds_only_the_units_whose_key_changed(
    open_index, hash_embedder: HashEmbedder
) -> None:
    index = await units_index(open_index)
    lines = [f"fact {i}: the {i}th item of the inventory is a widget" for i in range(60)]
    first = await index.replace(BOT, lines, written_at=T0_US)
    assert first.chunks == first.embedded == 60
    edited = list(lines)
    edited[30] = "fact 30: this one was rewritten by the user"
    hash_embedder.texts_embedded = 0
    second = await index.replace(BOT, edited, written_at=T0_US + 1)
    # The edited line's unit, and the next one's (its key holds the line before it).
    assert second.embedded == hash_embedder.texts_embedded == 2
    assert len(await rows(index)) == 60
    hits = await index.recall("t1", "rewritten by the user", scopes=[SCOPE], mode="keyword")
    assert hits[0].line_number <= 31 <= hits[0].end_line


async def test_appends_and_a_delete_of_a_unit_table(open_index) -> None:
    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT[:2]), first_line=1, written_at=T0_US)
    await index.add(BOT, await index.prepare(CHAT[2:]), first_line=3, written_at=T0_US + 1)
    stored = await rows(index)
    # Units stay within their append: line 3's neither returns nor is keyed by line 2.
    third = next(r for r in stored if r["start_line"] == 3)
    assert third["end_line"] == 4 and "kayaking" not in third["key"]
    await index.delete_block("t1", BOT.block_id, scope=SCOPE)
    assert await index.recall("t1", "kayaking", scopes=[SCOPE]) == []


async def test_a_chunk_table_stays_chunks_and_readable_when_the_default_is_lines(
    open_index,
) -> None:
    before = await open_index(archival_units="chunks")
    await before.add(BOT, await before.prepare(CHAT), first_line=1, written_at=T0_US)
    await before.close()
    after = await units_index(open_index)
    # The append was prepared as units (the default), then again as chunks for this table.
    more = ["[9 May 2023] Bo: The fence looks great now."]
    await after.add(BOT, await after.prepare(more), first_line=6, written_at=T0_US + 1)
    state = await after.store.scope_table("t1", SCOPE)
    assert not schema_units(state.table_schema) and "key" not in state.table_schema.names
    hits = await after.recall("t1", "fence looks great", scopes=[SCOPE], mode="hybrid", limit=1)
    assert hits[0].line_number <= 6 <= hits[0].end_line
    # Now this process knows the format: the next append is prepared as chunks at once.
    assert (await after.prepare(more, scope=("t1", SCOPE))).units is False
    result = await after.replace(BOT, CHAT + more, written_at=T0_US + 2)
    assert result.embedded == 0  # chunks again, all known


async def test_reindex_embeds_each_units_key_with_the_new_model(open_index) -> None:
    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT), first_line=1, written_at=T0_US)
    await index.close()
    other = HashEmbedder(32)
    reindexing = await units_index(open_index, embedder=other, allow_model_mismatch=True)
    assert await reindexing.reindex() == len(CHAT)
    await reindexing.close()
    after = await units_index(open_index, embedder=other)
    state = await after.store.scope_table("t1", SCOPE)
    assert schema_units(state.table_schema)
    table = await state.table.query().to_arrow()
    keys = table.column("key").to_pylist()
    assert np.allclose(vectors_of(table.column("vector"), 32), other.embed(keys), atol=1e-6)
    hits = await after.recall("t1", "7 May 2023", scopes=[SCOPE], mode="keyword", limit=1)
    assert "kayaking" in hits[0].content


def test_hybrid_over_unit_tables_weighs_bm25_less() -> None:
    chunks = recall.order_for("hybrid", units=False)
    units = recall.order_for("hybrid", units=True)
    assert chunks is recall.order_hybrid and units is not chunks
    assert recall.order_for("vector", units=True) is recall.order_by_vector


def test_a_query_naming_a_date_leans_on_the_keys_resolved_dates() -> None:
    from agentmem_server.storage.base import ChunkHit

    def cand(name: str, cosine: float, bm25: float | None) -> recall.Candidate:
        return recall.Candidate(0, ChunkHit(name, 1, 1, name, 0), cosine, bm25)

    chatty, dated = cand("chatty", 0.60, None), cand("dated", 0.50, 9.0)
    plain = recall.order_for("hybrid", units=True, query="What did Ana do at the lake?")
    on_a_day = recall.order_for("hybrid", units=True, query="What did Ana do on 6 May 2023?")
    # 0.93 x 0.60 > 0.93 x 0.50 + 0.07; 0.8 x 0.60 < 0.8 x 0.50 + 0.2
    assert [c.hit.chunk_id for c in plain([chatty], [dated])] == ["chatty", "dated"]
    assert [c.hit.chunk_id for c in on_a_day([chatty], [dated])] == ["dated", "chatty"]


async def test_reindex_rebuilds_a_chunk_table_as_units_keeping_its_writes(open_index) -> None:
    before = await open_index(archival_units="chunks")
    await before.add(BOT, await before.prepare(CHAT[:3]), first_line=1, written_at=T0_US)
    await before.add(BOT, await before.prepare(CHAT[3:]), first_line=4, written_at=T0_US + 7)
    writes = {r["write_id"]: r["written_at"] for r in await rows(before)}
    await before.close()

    index = await units_index(open_index)
    assert await index.reindex() > 0
    assert await index.reindex() == 0, "nothing left to rebuild"
    state = await index.store.scope_table("t1", SCOPE)
    assert schema_units(state.table_schema)
    stored = await rows(index)
    assert len(stored) == len(CHAT)
    assert {r["write_id"]: r["written_at"] for r in stored} == writes
    assert len({r["chunk_id"] for r in stored}) == len(CHAT)
    # Units stay within the append they came from: line 4 starts the second one.
    fourth = next(r for r in stored if r["key"].endswith("Bo: Up the river past the old mill."))
    assert fourth["start_line"] == 4 and "where did you go" not in fourth["key"]
    hits = await index.recall("t1", "7 May 2023", scopes=[SCOPE], mode="keyword", limit=1)
    assert "kayaking" in hits[0].content and hits[0].line_number == 1


async def test_an_interrupted_rebuild_leaves_the_chunks_and_starts_over(open_index) -> None:
    before = await open_index(archival_units="chunks")
    lines = [f"fact {i}: the {i}th item of the inventory is a widget" for i in range(40)]
    await before.add(BOT, await before.prepare(lines), first_line=1, written_at=T0_US)
    chunks = len(await rows(before))
    await before.close()

    class FailsOnce(HashEmbedder):
        def embed(self, texts):
            if self.calls >= 1:
                raise RuntimeError("power cut")
            return super().embed(texts)

    broken = await units_index(open_index, embedder=FailsOnce(64), embedding_batch_size=4)
    try:
        await broken.reindex()
    except RuntimeError as exc:
        assert "power cut" in str(exc)
    else:
        raise AssertionError("the rebuild should have failed")
    assert len(await broken.store.lance.table_names("rx_")) == 1
    await broken.close()

    index = await units_index(open_index)
    state = await index.store.scope_table("t1", SCOPE)
    assert not schema_units(state.table_schema) and len(await rows(index)) == chunks
    await index.reindex()
    assert await index.store.lance.table_names("rx_") == []
    assert len(await rows(index)) == 40


async def test_each_unit_stores_its_scaffold_cosine_and_both_vector_paths_return_it(
    open_index,
) -> None:
    from agentmem_server.scaffold import scaffold_of
    from agentmem_server.storage.lance.arrow import chunk_hits
    from agentmem_server.storage.lance.schema import block_table_name

    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT), first_line=1, written_at=T0_US)
    stored = {r["chunk_id"]: r for r in await rows(index)}
    model = HashEmbedder(64)
    for r in stored.values():
        expected = float(np.dot(r["vector"], model.embed([scaffold_of(r["key"])])[0]))
        assert abs(r["scaffold"] - expected) < 1e-5
    name = block_table_name("t1", SCOPE, "blk_bot")
    state = await index.store.lance.table(name)
    query = model.embed(["kayaking on the river"])[0]
    from_lance = await index.store.lance.vector_search(state, query, limit=3, where=None)
    cache = index.store.lance.vector_cache
    await cache.nearest(name, state.table, query, 3)  # starts the copy
    for _ in range(500):
        from_copy = await cache.nearest(name, state.table, query, 3)
        if from_copy is not None:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the table was not copied into memory")
    for found in (from_lance, from_copy):
        hits = chunk_hits(found)
        assert hits and all(abs(h.scaffold - stored[h.chunk_id]["scaffold"]) < 1e-5 for h in hits)
        # The vector leg reads the vectors too (hybrid keeps its results apart by them).
        vectors = vectors_of(found.column("vector"), 64)
        for h, v in zip(hits, vectors, strict=True):
            expected = np.asarray(stored[h.chunk_id]["vector"])
            assert np.allclose(v, expected / np.linalg.norm(expected), atol=1e-5)
    text = await index.store.lance.text_search(state, "kayaking", limit=3, where=None)
    assert chunk_hits(text)[0].scaffold == pytest.approx(
        stored[chunk_hits(text)[0].chunk_id]["scaffold"], abs=1e-5
    )


async def test_a_unit_table_without_the_scaffold_column_is_still_searched_and_written(
    open_index,
) -> None:
    from agentmem_server.storage.lance.schema import block_table_name

    index = await units_index(open_index)
    await index.add(BOT, await index.prepare(CHAT[:3]), first_line=1, written_at=T0_US)
    name = block_table_name("t1", SCOPE, "blk_bot")
    state = await index.store.lance.table(name)
    await state.table.drop_columns(["scaffold"])  # as units were stored before the column
    await index.close()
    older = await units_index(open_index)
    await older.add(BOT, await older.prepare(CHAT[3:]), first_line=4, written_at=T0_US + 1)
    for mode in ("hybrid", "vector", "keyword"):
        hits = await older.recall("t1", "painting the fence", scopes=[SCOPE], mode=mode, limit=2)
        assert any("fence" in h.content for h in hits), mode
