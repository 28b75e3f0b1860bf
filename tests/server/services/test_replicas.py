"""Two replicas in one process: each its own `MemoryService`, SQL connections and LanceDB handles,
on one database and one archival folder. Interleavings that real replicas hit by chance
(tests/e2e/test_scaleout_e2e.py) are forced here: an append paused at a chosen step while the
other replica deletes or creates the scope's block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from agentmem.types import MemoryRecallRequest
from agentmem_server.embedding import HashEmbedder
from agentmem_server.errors import NotFound
from agentmem_server.ids import PROCESS, new_id, new_write_id
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.services.memory import MemoryService
from agentmem_server.services.repair import drop_orphan_tables
from agentmem_server.settings import Settings
from agentmem_server.storage.base import BlockRef, ScopeKey, now_micros
from agentmem_server.storage.lance import store as lance_store
from agentmem_server.storage.lance.schema import block_table_name
from agentmem_server.storage.sql import blocks as blocks_sql
from agentmem_server.storage.sql.leases import SqlLeases
from agentmem_server.storage.sql.store import SqlStore

TENANT = "t1"
Replica = Callable[[], Awaitable[MemoryService]]


@pytest.fixture
async def replica(
    database_url: str, archival_settings: Settings, hash_embedder: HashEmbedder
) -> AsyncIterator[Replica]:
    opened: list[tuple[SqlStore, ArchivalIndex]] = []

    async def open_() -> MemoryService:
        sql = SqlStore.open(database_url)
        archival = await ArchivalIndex.open(
            archival_settings,
            hash_embedder,
            background_maintenance=False,
            leases=SqlLeases(sql, holder=new_id(PROCESS)),
        )
        opened.append((sql, archival))
        return MemoryService(sql, archival, core_limit_chars=10_000)

    yield open_
    for sql, archival in opened:
        await archival.close()
        await sql.aclose()


async def lines_of(memory: MemoryService, agent: str) -> list[str]:
    try:
        block = await memory.get_block(TENANT, "archival", agent)
    except NotFound:
        return []
    return block.content.splitlines() if block.content else []


async def assert_matches_sql(memory: MemoryService, agent: str) -> None:
    """Recall finds every committed line once, and nothing else; the store holds one table per
    archival block SQL has, and no other."""
    lines = await lines_of(memory, agent)
    found = await memory.recall(
        TENANT, MemoryRecallRequest(query="fact", agent_id=agent, mode="vector", limit=100)
    )
    ranges = [(r.line_number, r.end_line) for r in found]
    assert len(ranges) == len(set(ranges)), "no duplicate line range"
    for r in found:  # nothing extra: each chunk holds the committed lines of its range
        assert r.content == "\n".join(lines[r.line_number - 1 : r.end_line]), r
    covered = {n for start, end in ranges for n in range(start, end + 1)}
    assert covered == set(range(1, len(lines) + 1)), "nothing missing"
    blocks = await memory._sql.run_autocommit(blocks_sql.list_tenant_blocks, TENANT)
    wanted = {
        block_table_name(TENANT, ScopeKey.from_agent_key(b.agent_key), b.id)
        for b in blocks
        if b.block_type == "archival"
    }
    tables = await memory.archival_index.store.lance.table_names()  # type: ignore[attr-defined]
    assert set(tables) == wanted, "no table left behind"


def pause(
    memory: MemoryService, monkeypatch: pytest.MonkeyPatch, *, after_write: bool
) -> tuple[asyncio.Event, asyncio.Event]:
    """Pause the replica's next archival index write before it starts (or after it stored its
    rows, before the append's SQL step): (reached, resume)."""
    reached, resume = asyncio.Event(), asyncio.Event()
    index = memory.archival_index
    real = index.add

    async def paused(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(index, "add", real)
        if after_write:
            await real(*args, **kwargs)
        reached.set()
        await resume.wait()
        if not after_write:
            await real(*args, **kwargs)

    monkeypatch.setattr(index, "add", paused)
    return reached, resume


@pytest.mark.parametrize("after_write", [False, True], ids=["before-index", "after-index"])
async def test_an_append_racing_a_delete_on_another_replica_lands_in_a_new_block(
    replica: Replica, monkeypatch: pytest.MonkeyPatch, after_write: bool
) -> None:
    """Before: paused before its index write, B wrote into a re-created table of the deleted
    block, and left it behind (empty) when its SQL step found the block gone."""
    a, b = await replica(), await replica()
    await b.append(TENANT, "archival", "fact one", "bot")
    await assert_matches_sql(a, "bot")  # both replicas have the table open
    await assert_matches_sql(b, "bot")
    reached, resume = pause(b, monkeypatch, after_write=after_write)
    appending = asyncio.ensure_future(b.append(TENANT, "archival", "fact two", "bot"))
    await asyncio.wait_for(reached.wait(), 30)
    await a.delete_block(TENANT, "archival", "bot")
    resume.set()
    block = await appending
    assert (block.start_line, block.end_line) == (1, 1), "appended after the delete"
    for memory in (a, b):
        assert await lines_of(memory, "bot") == ["fact two"]
        await assert_matches_sql(memory, "bot")
    assert await a._sql.run_autocommit(blocks_sql.archival_writes_in_flight) == [], "undone"


async def test_an_append_whose_table_vanishes_before_the_delete_commits_lands_in_a_new_block(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete drops the block's table inside its SQL transaction and commits after. An append
    on another replica whose index write met the half-removed table ("Not found" on a data
    file) read the block in SQL before that commit, took the failure for its own and answered
    500 (seen once in tests/e2e/test_scaleout_e2e.py during a full `make test`)."""
    a, b = await replica(), await replica()
    await b.append(TENANT, "archival", "fact one", "bot")
    commit = asyncio.Event()
    real_add = b.archival_index.add

    async def meets_the_drop(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(b.archival_index, "add", real_add)
        asyncio.get_running_loop().call_later(0.2, commit.set)
        # What LanceDB raises when a drop removes the files under a reader.
        raise RuntimeError("lance error: Not found: /lance/arc_x.lance/data/0101.lance")

    monkeypatch.setattr(b.archival_index, "add", meets_the_drop)
    reached, resume = pause(b, monkeypatch, after_write=False)
    appending = asyncio.ensure_future(b.append(TENANT, "archival", "fact two", "bot"))
    await asyncio.wait_for(reached.wait(), 30)

    dropped = asyncio.Event()
    real_delete = a.archival_index.delete_block

    async def delete_then_hold(*args: Any, **kwargs: Any) -> None:
        await real_delete(*args, **kwargs)
        dropped.set()
        await commit.wait()  # the delete's SQL transaction stays open meanwhile

    monkeypatch.setattr(a.archival_index, "delete_block", delete_then_hold)
    deleting = asyncio.ensure_future(a.delete_block(TENANT, "archival", "bot"))
    await asyncio.wait_for(dropped.wait(), 30)
    resume.set()
    block = await asyncio.wait_for(appending, 30)
    await asyncio.wait_for(deleting, 30)
    assert (block.start_line, block.end_line) == (1, 1), "appended after the delete"
    for memory in (a, b):
        assert await lines_of(memory, "bot") == ["fact two"]
        await assert_matches_sql(memory, "bot")
    assert await a._sql.run_autocommit(blocks_sql.archival_writes_in_flight) == [], "undone"


async def test_an_append_that_loses_the_creation_of_a_scope_leaves_no_table(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: B's rows went into a table named after the block id B had guessed; A created the
    scope's block first, B retried into A's block and left its own table behind, empty."""
    a, b = await replica(), await replica()
    reached, resume = pause(b, monkeypatch, after_write=True)
    appending = asyncio.ensure_future(b.append(TENANT, "archival", "fact from b", "bot"))
    await asyncio.wait_for(reached.wait(), 30)
    await a.append(TENANT, "archival", "fact from a", "bot")
    resume.set()
    await appending
    for memory in (a, b):
        assert await lines_of(memory, "bot") == ["fact from a", "fact from b"]
        await assert_matches_sql(memory, "bot")
    assert await a._sql.run_autocommit(blocks_sql.archival_writes_in_flight) == [], "undone"


async def test_an_index_failure_of_a_block_unchanged_in_sql_is_answered(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a failure caused by another replica's change is retried; others are the caller's."""
    a = await replica()
    await a.append(TENANT, "archival", "fact one", "bot")

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(a.archival_index, "add", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await a.append(TENANT, "archival", "fact two", "bot")
    monkeypatch.undo()
    assert await lines_of(a, "bot") == ["fact one"]
    assert await a._sql.run_autocommit(blocks_sql.archival_writes_in_flight) == []
    await assert_matches_sql(a, "bot")


async def test_a_drop_racing_a_writer_on_a_folder_completes(tmp_path: Path) -> None:
    """Before: the drop failed with "Directory not empty" while another connection wrote into
    the table (a delete racing an append of another replica answered 500), in most tries."""
    import lancedb

    folder = tmp_path / "lance"
    one = await lance_store._connect(str(folder), None)
    two = await lance_store._connect(str(folder), None)
    for attempt in range(8):
        name = f"t{attempt}"
        await one[1].create_table(name, data=pa.table({"x": list(range(10))}))
        writer_table = await two[1].open_table(name)
        store = lance_store.LanceStore(
            one[1], one[0], model_id="m", dimension=4, ann_index_min_rows=100
        )

        async def write(table: lancedb.table.AsyncTable = writer_table) -> None:
            for i in range(3):
                try:
                    await table.add(pa.table({"x": [i]}))
                except Exception:  # noqa: BLE001 - the table went away under it: expected
                    return

        async def drop(name: str = name, store: lance_store.LanceStore = store) -> None:
            await asyncio.sleep(0.005)
            await store.drop_table(name)

        await asyncio.gather(write(), drop())
        writer_table.close()


async def interrupted(memory: MemoryService, agent: str, kind: str, lines: list[str]) -> str:
    """An archival write of a dead process, left in flight after its index step: an append's
    rows after the block's lines, or (a resync: an update or delete) the scope's index made
    `lines` while SQL kept the old ones."""
    write_id = new_write_id()
    await memory._sql.run_autocommit(
        blocks_sql.begin_archival_write, write_id, TENANT, agent, kind, now_micros(), "proc_dead"
    )
    block = await memory._sql.run_autocommit(blocks_sql.get_block, TENANT, "archival", agent)
    ref = BlockRef.of(TENANT, block.id, agent)
    index = memory.archival_index
    if kind == "append":
        prepared = await index.prepare(lines)
        first = block.line_count + 1
        await index.add(ref, prepared, first_line=first, written_at=now_micros(), write_id=write_id)
    else:
        await index.replace(ref, lines, written_at=now_micros())
    return write_id


async def test_interrupted_writes_are_repaired_once_by_one_of_three_replicas(
    replica: Replica,
) -> None:
    """Every replica runs the repair. Before: each repaired every write (3 passes for each), and
    two rebuilding one scope at once could delete each other's rows or keep both."""
    replicas = [await replica() for _ in range(3)]
    first = replicas[0]
    for agent in ("bot1", "bot2", "bot3"):
        for n in ("one", "two"):  # a chunk per line (assert_matches_sql compares lines)
            await first.append(TENANT, "archival", f"fact {agent} {n}", agent)
    writes = [
        await interrupted(first, "bot1", "append", ["fact lost a", "fact lost b"]),
        await interrupted(first, "bot2", "resync", ["fact never committed"]),
        await interrupted(first, "bot2", "resync", ["fact nor this", "fact nor that"]),
        await interrupted(first, "bot3", "append", ["fact lost c"]),
        await interrupted(first, "bot3", "resync", ["fact edited away"]),
    ]
    reports = await asyncio.gather(*(r.repair.repair() for r in replicas))
    assert sum(r.repaired for r in reports) == len(writes), reports
    assert sum(r.failed + r.quarantined for r in reports) == 0, reports
    assert await first._sql.run_autocommit(blocks_sql.archival_writes_in_flight) == []
    for memory in replicas:
        for agent in ("bot1", "bot2", "bot3"):
            assert await lines_of(memory, agent) == [f"fact {agent} one", f"fact {agent} two"]
            await assert_matches_sql(memory, agent)


async def test_tables_of_blocks_sql_does_not_hold_are_dropped_but_not_a_writes(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table left by a process that died in a delete (or in an append that never committed)
    is dropped by the sweep (`agentmem cleanup`, and servers hourly); the table an append on
    another replica is writing for a new scope is not, though SQL holds no block for it yet."""
    a, b = await replica(), await replica()
    await a.append(TENANT, "archival", "fact kept", "bot1")
    left = BlockRef.of(TENANT, "blk_gone", "bot2")
    index = a.archival_index
    await index.add(left, await index.prepare(["fact deleted"]), first_line=1, written_at=1)
    reached, resume = pause(b, monkeypatch, after_write=True)
    appending = asyncio.ensure_future(b.append(TENANT, "archival", "fact new", "bot3"))
    await asyncio.wait_for(reached.wait(), 30)
    dropped = await drop_orphan_tables(a._sql, index.store)
    assert dropped == [block_table_name(TENANT, left.scope_key, "blk_gone")]
    assert await drop_orphan_tables(a._sql, index.store) == []
    resume.set()
    await appending
    for memory in (a, b):
        for agent in ("bot1", "bot2", "bot3"):
            await assert_matches_sql(memory, agent)
    assert await lines_of(b, "bot3") == ["fact new"]
