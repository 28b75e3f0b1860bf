"""Storage: updates re-embed only what changed, deletes leave no bytes behind, models never mix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agentmem_server.embedding import HashEmbedder
from agentmem_server.errors import EmbeddingModelMismatch
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.settings import Settings
from agentmem_server.storage.base import BlockRef, ScopeKey, to_micros
from agentmem_server.storage.lance.schema import (
    block_table_name,
    legacy_table_name,
    parse_table_name,
    parse_table_name_full,
    search_column,
)
from agentmem_server.storage.lance.store import storage_options

from support import T0_US

BOT = BlockRef("t1", "blk_bot", "agent", "bot")


def facts(n: int, start: int = 0) -> list[str]:
    return [
        f"fact {i}: the {i}th item of the inventory is a widget" for i in range(start, start + n)
    ]


def lance_bytes(settings: Settings) -> bytes:
    root = Path(settings.resolved_archival_uri())
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


async def test_update_re_embeds_only_the_changed_chunks(
    index: ArchivalIndex, hash_embedder: HashEmbedder
) -> None:
    lines = facts(120)
    first = await index.replace(BOT, lines, written_at=T0_US)
    assert first.embedded == first.chunks > 10
    edited = list(lines)
    edited[60] = "fact 60: this one was rewritten by the user"
    hash_embedder.texts_embedded = 0
    second = await index.replace(BOT, edited, written_at=T0_US + 1)
    assert second.embedded == hash_embedder.texts_embedded <= 2
    hits = await index.recall(
        "t1", "rewritten by the user", scopes=[ScopeKey("agent", "bot")], mode="keyword", limit=1
    )
    assert (
        hits[0].line_number <= 61 <= hits[0].end_line and to_micros(hits[0].updated_at) == T0_US + 1
    )
    assert await index.store.scope_table("t1", ScopeKey("agent", "bot")) is not None
    rows = await (await index.store.scope_table("t1", ScopeKey("agent", "bot"))).table.count_rows()
    assert rows == second.chunks, "the old rows are gone"


async def test_update_after_appends_keeps_the_appended_chunks(
    index: ArchivalIndex, hash_embedder: HashEmbedder
) -> None:
    lines = facts(90)
    for start in range(0, 90, 30):
        await index.add(
            BOT,
            await index.prepare(lines[start : start + 30]),
            first_line=start + 1,
            written_at=T0_US + start,
        )
    hash_embedder.texts_embedded = 0
    result = await index.replace(BOT, lines, written_at=T0_US + 100)
    assert result.embedded == hash_embedder.texts_embedded <= 4, (
        "only the seams between appends need chunks"
    )
    hash_embedder.texts_embedded = 0
    shifted = ["a new first line"] + lines
    result = await index.replace(BOT, shifted, written_at=T0_US + 200)
    assert result.embedded <= 2
    hits = await index.recall(
        "t1", "fact 45 inventory", scopes=[ScopeKey("agent", "bot")], mode="keyword", limit=1
    )
    assert hits[0].line_number <= 47 <= hits[0].end_line, "kept chunks moved with their lines"


async def test_update_to_empty_text_removes_every_chunk(index: ArchivalIndex) -> None:
    await index.replace(BOT, facts(10), written_at=T0_US)
    assert (await index.replace(BOT, [], written_at=T0_US + 1)).chunks == 0
    assert await index.recall("t1", "widget", scopes=[ScopeKey("agent", "bot")]) == []


async def test_deleted_and_replaced_text_leaves_no_bytes_after_cleanup(
    index: ArchivalIndex, archival_settings: Settings
) -> None:
    secret, edited_out = b"Zqxjkv-hunter2-secret", b"Wbxqlorp-old-address"
    keep = BlockRef("t1", "blk_user", "user", None)
    await index.add(
        keep,
        await index.prepare(facts(50) + [f"my old address is {edited_out.decode()}"]),
        first_line=1,
        written_at=T0_US,
    )
    await index.add(
        BOT,
        await index.prepare(facts(30) + [f"the password is {secret.decode()}"]),
        first_line=1,
        written_at=T0_US,
    )
    bot_table = (await index.store.scope_table("t1", ScopeKey("agent", "bot"))).table
    # The row whose vector embeds the secret (a unit's neighbours show it in their text only).
    searched = search_column(await bot_table.schema())
    where = f"{searched} LIKE '%Zqxjkv%'"
    row = (await bot_table.query().where(where).select(["vector"]).to_list())[0]
    vector = np.asarray(row["vector"], dtype=np.float32).tobytes()
    await index.maintain()  # indexes and compaction have seen both texts
    before = lance_bytes(archival_settings)
    assert secret in before and edited_out in before
    assert vector in before, "vectors are stored as raw float32"

    await index.delete_block("t1", "blk_bot")
    await index.replace(keep, facts(50) + ["my new address is elsewhere"], written_at=T0_US + 1)
    await index.cleanup()

    after = lance_bytes(archival_settings)
    for needle in (
        secret,
        secret.lower(),
        edited_out,
        edited_out.lower(),
        b"zqxjkv",
        b"wbxqlorp",
        vector,
    ):
        assert needle not in after
    assert b"new address" in after
    assert await index.recall("t1", "password", scopes=[ScopeKey("agent", "bot")]) == []


async def test_delete_tenant_removes_only_that_tenant(index: ArchivalIndex) -> None:
    for tenant in ("t1", "t11", "t1x"):
        await index.add(
            BlockRef(tenant, f"b_{tenant}", "user", None),
            await index.prepare(facts(3)),
            first_line=1,
            written_at=T0_US,
        )
    await index.delete_tenant("t1")
    assert await index.recall("t1", "widget", scopes=[ScopeKey("user")]) == []
    for tenant in ("t11", "t1x"):
        assert await index.recall(tenant, "widget", scopes=[ScopeKey("user")])


async def test_delete_block_is_idempotent_and_scoped_to_its_tenant(index: ArchivalIndex) -> None:
    await index.add(BOT, await index.prepare(facts(3)), first_line=1, written_at=T0_US)
    await index.delete_block("other-tenant", "blk_bot")
    assert await index.recall("t1", "widget", scopes=[ScopeKey("agent", "bot")])
    await index.delete_block("t1", "blk_bot")
    await index.delete_block("t1", "blk_bot")
    assert await index.recall("t1", "widget", scopes=[ScopeKey("agent", "bot")]) == []


async def test_a_block_deleted_behind_the_index_back_is_dropped_on_next_write(open_index) -> None:
    index = await open_index()
    await index.add(
        BOT, await index.prepare(["stale row about widgets"]), first_line=1, written_at=T0_US
    )
    fresh = BlockRef("t1", "blk_bot_2", "agent", "bot")  # the block was re-created under a new id
    await index.add(
        fresh, await index.prepare(["fresh row about gadgets"]), first_line=1, written_at=T0_US + 1
    )
    hits = await index.recall(
        "t1", "row", scopes=[ScopeKey("agent", "bot")], mode="keyword", limit=5
    )
    assert [h.block_id for h in hits] == ["blk_bot_2"]


async def test_delete_of_a_block_this_process_never_opened_finds_its_table(
    open_index, archival_settings
) -> None:
    writer = await open_index()
    await writer.add(BOT, await writer.prepare(facts(3)), first_line=1, written_at=T0_US)
    await writer.close()
    other = await open_index()
    await other.delete_block("t1", "blk_bot")
    assert await other.recall("t1", "widget", scopes=[ScopeKey("agent", "bot")]) == []


async def test_another_model_is_refused_until_reindex(
    open_index, archival_settings: Settings
) -> None:
    first = await open_index()
    await first.add(BOT, await first.prepare(facts(40)), first_line=1, written_at=T0_US)
    await first.close()

    other_model = HashEmbedder(32)
    with pytest.raises(EmbeddingModelMismatch, match="agentmem reindex") as err:
        await open_index(embedder=other_model)
    assert "hash:64" in err.value.message and "hash:32" in err.value.message

    reindexing = await open_index(embedder=other_model, allow_model_mismatch=True)
    seen: list[tuple[int, int]] = []
    done = await reindexing.reindex(progress=lambda d, t: seen.append((d, t)))
    assert done == seen[-1][0] == seen[-1][1] > 0
    assert await reindexing.reindex() == 0, "a finished reindex has nothing left to do"
    await reindexing.close()

    after = await open_index(embedder=other_model)
    hits = await after.recall(
        "t1", "fact 7 inventory", scopes=[ScopeKey("agent", "bot")], mode="hybrid", limit=3
    )
    assert hits and any(h.line_number <= 8 <= h.end_line for h in hits)
    state = await after.store.scope_table("t1", ScopeKey("agent", "bot"))
    assert state.table_schema.field("vector").type.list_size == 32


async def test_an_interrupted_reindex_resumes(open_index) -> None:
    first = await open_index()
    for agent in ("a", "b"):
        block = BlockRef("t1", f"blk_{agent}", "agent", agent)
        await first.add(block, await first.prepare(facts(20)), first_line=1, written_at=T0_US)
    await first.close()

    class FailsOnce(HashEmbedder):
        failed = False

        def embed(self, texts):
            if self.calls >= 1 and not FailsOnce.failed:
                FailsOnce.failed = True
                raise RuntimeError("power cut")
            return super().embed(texts)

    broken = await open_index(
        embedder=FailsOnce(32), allow_model_mismatch=True, embedding_batch_size=4
    )
    with pytest.raises(RuntimeError, match="power cut"):
        await broken.reindex()
    resumed = await open_index(embedder=HashEmbedder(32), allow_model_mismatch=True)
    await resumed.reindex()
    await resumed.close()
    after = await open_index(embedder=HashEmbedder(32))
    for agent in ("a", "b"):
        hits = await after.recall("t1", "widget", scopes=[ScopeKey("agent", agent)], limit=50)
        assert (
            len(hits)
            == await (
                await after.store.scope_table("t1", ScopeKey("agent", agent))
            ).table.count_rows()
        )
    assert await after.store.lance.table_names("rx_") == []


async def test_background_maintenance_indexes_new_rows(open_index) -> None:
    index = await open_index()
    index.store.maintenance.background, index.store.maintenance.delay_s = True, 0.01
    await index.add(BOT, await index.prepare(facts(5)), first_line=1, written_at=T0_US)
    state = await index.store.scope_table("t1", ScopeKey("agent", "bot"))
    fts = f"{search_column(state.table_schema)}_idx"
    assert (await state.table.index_stats(fts)).num_unindexed_rows > 0
    for _ in range(250):
        stats = await state.table.index_stats(fts)
        if stats.num_unindexed_rows == 0:
            break
        await asyncio.sleep(0.02)
    assert (
        stats.num_unindexed_rows == 0 and stats.num_indexed_rows == await state.table.count_rows()
    )


async def test_background_pruning_removes_replaced_text_after_the_grace_without_further_writes(
    open_index, archival_settings: Settings
) -> None:
    # The pass right after a write must keep the versions it superseded (another replica may
    # read them); a second pass, once the grace is over, removes them with nobody writing again.
    index = await open_index(archival_version_grace_s=1.0)
    index.store.maintenance.background, index.store.maintenance.delay_s = True, 0.01
    old = b"Qvzjxw-old-phone-number"
    await index.replace(BOT, facts(20) + [f"call me at {old.decode()}"], written_at=T0_US)
    await index.replace(BOT, facts(20) + ["call me at the office"], written_at=T0_US + 1)
    await asyncio.sleep(0.3)  # the write's own pass has run, within the grace
    assert old in lance_bytes(archival_settings), "superseded versions are kept for the grace"
    for _ in range(100):
        await asyncio.sleep(0.05)
        if old not in lance_bytes(archival_settings):
            break
    after = lance_bytes(archival_settings)
    assert old not in after and old.lower() not in after
    assert b"the office" in after
    assert [
        h.content
        for h in await index.recall(
            "t1", "call me", scopes=[ScopeKey("agent", "bot")], mode="keyword", limit=1
        )
    ]


def test_table_names_round_trip_and_stay_per_tenant() -> None:
    for tenant, scope in [
        ("t_1", ScopeKey("user")),
        ("ten_9", ScopeKey("agent", "a_b.c-d")),
        ("x", ScopeKey("agent", "_u")),
        ("x", ScopeKey("agent", "7_a")),
    ]:
        for block in ("blk_0a1b", "b_u", "_a3_x"):
            name = block_table_name(tenant, scope, block)
            assert parse_table_name_full(name) == (tenant, scope, block)
            assert parse_table_name(name) == (tenant, scope)
        assert parse_table_name_full(legacy_table_name(tenant, scope)) == (tenant, scope, None)
    assert not block_table_name("t1", ScopeKey("user"), "b").startswith(
        block_table_name("t", ScopeKey("user"), "b")[:-1] + "1"
    )
    with pytest.raises(ValueError):
        block_table_name("bad tenant/../x", ScopeKey("user"), "b")
    with pytest.raises(ValueError):
        block_table_name("t1", ScopeKey("user"), "../b")


def test_s3_uris_get_storage_options_from_settings(tmp_path: Path) -> None:
    assert storage_options(Settings(data_dir=tmp_path)) is None
    options = storage_options(
        Settings(
            archival_uri="s3://bucket/prefix",
            s3_endpoint="http://minio:9000",
            s3_region="eu-west-1",
            s3_access_key_id="AK",
            s3_secret_access_key="SK",
            s3_allow_http=True,
        )
    )
    assert options == {
        "aws_endpoint": "http://minio:9000",
        "aws_region": "eu-west-1",
        "aws_access_key_id": "AK",
        "aws_secret_access_key": "SK",
        "allow_http": "true",
    }
    assert storage_options(Settings(archival_uri="s3://bucket/p")) == {}
    every = storage_options(
        Settings(
            archival_uri="s3+ddb://bucket/p?ddbTableName=commits",
            s3_region="eu-west-1",
            s3_session_token="TOKEN",
            s3_virtual_hosted_style=True,
        )
    )
    assert every == {
        "aws_region": "eu-west-1",
        "aws_session_token": "TOKEN",
        "aws_virtual_hosted_style_request": "true",
    }, "s3+ddb:// gets the S3 settings too (it ignored them before)"
    assert storage_options(Settings(archival_uri=str(tmp_path))) is None
    with pytest.raises(ValueError, match="gs://"):
        storage_options(Settings(archival_uri="gs://bucket/p"))


async def test_recall_results_carry_their_own_rows_across_deletes_and_compaction(
    index: ArchivalIndex,
) -> None:
    for start in range(0, 60, 10):  # six small fragments, each one append
        await index.add(
            BOT,
            await index.prepare(facts(10, start)),
            first_line=start + 1,
            written_at=T0_US + start,
        )
    scope = [ScopeKey("agent", "bot")]
    state = await index.store.scope_table("t1", scope[0])
    await state.table.delete("start_line < 20")
    await index.maintain()  # compaction rewrites the fragments: row positions change
    for mode in ("hybrid", "vector", "keyword"):
        hits = await index.recall(
            "t1", "fact 55 inventory widget", scopes=scope, mode=mode, limit=10
        )
        assert hits, mode
        for hit in hits:
            # Text, line range and time must all come from the same row (no fetch by position).
            first = hit.line_number - 1
            assert hit.line_number >= 20
            assert hit.content.splitlines()[0] == facts(1, first)[0]
            assert hit.end_line == hit.line_number + len(hit.content.splitlines()) - 1
            assert round(hit.updated_at.timestamp() * 1e6) == T0_US + first // 10 * 10


class _RecordingStore:
    """Stands in for LanceStore where only the order of maintenance passes matters."""

    def __init__(self) -> None:
        self.passes: list[str] = []

    async def maintain(self, name: str, *, prune_older_than) -> None:
        self.passes.append(name)


async def test_pruning_passes_are_booked_once_per_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from agentmem_server.storage.lance import maintenance as maintenance_module

    monkeypatch.setattr(maintenance_module, "PRUNE_MARGIN_S", 0.05)
    store = _RecordingStore()
    grace = timedelta(seconds=0.1)
    m = maintenance_module.Maintenance(store, prune_grace=grace, background=True, delay_s=0.01)  # type: ignore[arg-type]
    m.mark("a")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(store.passes) >= 2:
            break
    await asyncio.sleep(0.4)  # a table nobody wrote again gets no third pass
    assert store.passes == ["a", "a"], "the write's pass, then one pruning pass after the grace"

    # A write that lands just before a table's pruning pass: that pass maintains it, so it
    # must book the next one (the versions this write superseded are not past the grace yet).
    m.delay_s = 60.0  # keep the loop out of the way
    m.mark("b")
    await m.run(prune_older_than=grace, names={"a", "b"}, pruning_pass=True)
    await m.run(prune_older_than=timedelta(milliseconds=1), names=set())  # cleanup() books nothing
    assert set(m._prune_at) == {"b"}
    await m.aclose()
