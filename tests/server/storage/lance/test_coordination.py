"""Replicas sharing one archival store: one maintainer per table at a time (a lease in SQL), and
LanceDB's retryable commit conflicts retried."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem_server.embedding import HashEmbedder
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.settings import Settings
from agentmem_server.storage.base import BlockRef
from agentmem_server.storage.lance import store as lance_store
from agentmem_server.storage.lance.maintenance import lease_name
from agentmem_server.storage.sql.leases import SqlLeases
from agentmem_server.storage.sql.store import SqlStore

BOT = BlockRef("t1", "blk_bot", "agent", "bot")


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'shared.db'}")
    yield store
    store.close()


async def test_a_table_is_maintained_by_one_replica_at_a_time(
    sql: SqlStore,
    archival_settings: Settings,
    hash_embedder: HashEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = await ArchivalIndex.open(
        archival_settings,
        hash_embedder,
        background_maintenance=False,
        leases=SqlLeases(sql, holder="one"),
    )
    two = await ArchivalIndex.open(
        archival_settings,
        hash_embedder,
        background_maintenance=False,
        leases=SqlLeases(sql, holder="two"),
    )
    try:
        await one.add(
            BOT, await one.prepare([f"fact {i}" for i in range(20)]), first_line=1, written_at=1
        )
        await two.add(BOT, await two.prepare(["fact 20"]), first_line=21, written_at=2)
        name = one.store.lance.cached_block_table("blk_bot")
        assert name is not None
        started, release = asyncio.Event(), asyncio.Event()
        real = one.store.lance.maintain
        maintained: list[str] = []

        async def slow_maintain(table: str, **kwargs: object) -> None:
            started.set()
            await release.wait()
            maintained.append("one")
            await real(table, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(one.store.lance, "maintain", slow_maintain)
        first = asyncio.ensure_future(one.maintain())
        await asyncio.wait_for(started.wait(), 30)
        await two.maintain()  # finds the lease taken: skips, and keeps the table marked
        assert two.store.maintenance.skipped == 1
        assert name in two.store.maintenance._dirty
        release.set()
        await first
        assert maintained == ["one"]
        assert await SqlLeases(sql, holder="three").acquire(lease_name(name), ttl_s=1), "released"
    finally:
        await one.close()
        await two.close()


async def test_retryable_commit_conflicts_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lance_store.random, "uniform", lambda a, b: 0.0)
    calls = 0

    async def commit() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("lance error: Retryable commit conflict for version 7: compaction")
        return "done"

    assert await lance_store.retrying(commit) == "done" and calls == 3

    async def conflict() -> None:
        raise RuntimeError("lance error: Commit conflict for version 7: not retryable")

    with pytest.raises(RuntimeError, match="not retryable"):
        await lance_store.retrying(conflict)
