"""Leases in SQL (one maintainer per archival table across replicas), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

from agentmem_server.storage.sql import leases as sql
from agentmem_server.storage.sql.leases import SqlLeases
from agentmem_server.storage.sql.store import SqlStore

SECOND = 1_000_000


def test_one_holder_at_a_time_until_it_releases_or_expires(sql_store: SqlStore) -> None:
    with sql_store.begin() as conn:
        assert sql.acquire(conn, "archival:t", "a", 0, 10 * SECOND)
        assert not sql.acquire(conn, "archival:t", "b", 5 * SECOND, 10 * SECOND)
        assert sql.acquire(conn, "archival:other", "b", 5 * SECOND, 10 * SECOND)
        assert sql.acquire(conn, "archival:t", "a", 5 * SECOND, 10 * SECOND), (
            "renewed by its holder"
        )
        assert not sql.acquire(conn, "archival:t", "b", 14 * SECOND, 10 * SECOND), (
            "renewal moved expiry"
        )
        assert sql.acquire(conn, "archival:t", "b", 16 * SECOND, 10 * SECOND), "expired: taken over"
        sql.release(conn, "archival:t", "a")  # not a's any more: nothing happens
        assert sql.holder_of(conn, "archival:t", 16 * SECOND) == "b"
        sql.release(conn, "archival:t", "b")
        assert sql.holder_of(conn, "archival:t", 16 * SECOND) is None
        assert sql.acquire(conn, "archival:t", "c", 16 * SECOND, 10 * SECOND)


def test_concurrent_takers_get_one_lease(sql_store: SqlStore) -> None:
    won: list[str] = []
    barrier = threading.Barrier(8)

    def take(holder: str) -> None:
        barrier.wait()
        with sql_store.begin() as conn:
            if sql.acquire(conn, "archival:race", holder, 0, 60 * SECOND):
                won.append(holder)

    threads = [threading.Thread(target=take, args=(f"h{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1, won


async def test_sql_leases_object(sql_store: SqlStore) -> None:
    a, b = SqlLeases(sql_store, holder="a"), SqlLeases(sql_store, holder="b")
    assert await a.acquire("archival:x", ttl_s=30)
    assert not await b.acquire("archival:x", ttl_s=30)
    await a.release("archival:x")
    assert await b.acquire("archival:x", ttl_s=30)
    await asyncio.sleep(0)
