"""The SQL unit of work: pinned transactions, bounded threads, undo on failure, clean close."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from agentmem_server.storage.sql.schema import tenants
from agentmem_server.storage.sql.store import SqlStore
from agentmem_server.storage.sql.uow import NestedSqlWork


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'uow.db'}")
    yield store
    store.close()


def add_tenant(conn: Connection, name: str) -> str:
    conn.execute(insert(tenants).values(id=name, name=name, created_at=0))
    return threading.current_thread().name


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(tenants)).scalar_one())


def thread_name(conn: Connection) -> str:
    return threading.current_thread().name


async def test_a_transaction_runs_every_step_and_its_commit_on_one_thread_of_the_store(
    sql: SqlStore,
):
    seen: list[str] = []
    event.listen(sql.engine, "commit", lambda conn: seen.append(threading.current_thread().name))
    async with sql.transaction() as tx:
        for i in range(5):
            seen.append(await tx.run(add_tenant, f"t{i}"))
            await asyncio.sleep(0)  # other tasks run between the steps
    assert len(set(seen)) == 1 and len(seen) == 6
    assert seen[0].startswith("agentmem-sql"), "never asyncio's default pool"
    assert await sql.run_autocommit(count) == 5


async def test_work_runs_on_at_most_the_store_threads(tmp_path: Path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'few.db'}", threads=3)
    try:
        names = await asyncio.gather(*(store.run_autocommit(thread_name) for _ in range(40)))
        assert 1 <= len(set(names)) <= 3
    finally:
        await store.aclose()


async def test_the_transaction_holding_the_write_lock_always_gets_to_commit(tmp_path: Path):
    # Two threads. The holder takes SQLite's write lock and waits; five writers queue behind it,
    # one of them blocking the other thread on the lock. The holder must still commit on its own
    # thread (a shared pool deadlocked here: the waiters took every thread).
    store = SqlStore.open(f"sqlite:///{tmp_path / 'lock.db'}", threads=2)
    try:
        release = asyncio.Event()

        async def holder() -> None:
            async with store.transaction() as tx:
                await tx.run(add_tenant, "holder")
                await release.wait()

        held = asyncio.create_task(holder())
        await asyncio.sleep(0.1)
        writers = [
            asyncio.create_task(store.run_in_transaction(add_tenant, f"w{i}")) for i in range(5)
        ]
        await asyncio.sleep(0.3)
        release.set()
        await asyncio.wait_for(asyncio.gather(held, *writers), timeout=20)
        assert await store.run_autocommit(count) == 6
    finally:
        await store.aclose()


async def test_on_failure_runs_when_a_step_fails_and_not_after_a_commit(sql: SqlStore):
    undone: list[str] = []

    async def undo() -> None:
        undone.append("undo")

    with pytest.raises(ValueError, match="step"):
        async with sql.transaction() as tx:
            await tx.run(add_tenant, "a")
            tx.on_failure(undo)
            raise ValueError("step")
    assert undone == ["undo"] and await sql.run_autocommit(count) == 0

    async with sql.transaction() as tx:
        await tx.run(add_tenant, "b")
        tx.on_failure(undo)
    assert undone == ["undo"] and await sql.run_autocommit(count) == 1


async def test_on_failure_runs_when_the_commit_fails_and_a_failed_undo_is_reported(sql: SqlStore):
    calls: list[str] = []

    async def good() -> None:
        calls.append("good")

    async def bad() -> None:
        calls.append("bad")
        raise OSError("index unreachable")

    def fail(conn: object) -> None:
        raise RuntimeError("injected: the commit failed")

    event.listen(sql.engine, "commit", fail)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            async with sql.transaction() as tx:
                await tx.run(add_tenant, "a")
                tx.on_failure(good)
                tx.on_failure(bad)
    finally:
        event.remove(sql.engine, "commit", fail)
    assert calls == ["bad", "good"], "newest first, and every step runs"
    assert tx.undone is False
    assert await sql.run_autocommit(count) == 0


async def test_a_commit_that_lands_after_the_caller_is_cancelled_is_not_undone(sql: SqlStore):
    committing = threading.Event()

    def slow_commit(conn: object) -> None:
        committing.set()
        time.sleep(0.3)

    undone: list[str] = []

    async def undo() -> None:
        undone.append("undo")

    async def write() -> None:
        async with sql.transaction() as tx:
            await tx.run(add_tenant, "a")
            tx.on_failure(undo)

    event.listen(sql.engine, "commit", slow_commit)
    try:
        task = asyncio.create_task(write())
        while not committing.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        event.remove(sql.engine, "commit", slow_commit)
    assert await sql.run_autocommit(count) == 1, "the commit went through"
    assert undone == [], "so what it made outside SQL must stay"


async def test_sql_work_inside_a_transaction_is_refused(sql: SqlStore):
    with pytest.raises(NestedSqlWork):
        async with sql.transaction():
            await sql.run_autocommit(count)
    assert await sql.run_autocommit(count) == 0, "after the transaction, work runs again"


async def test_close_waits_for_work_in_flight_so_no_connection_is_left_open(tmp_path: Path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'close.db'}")
    started = threading.Event()

    def slow(conn: Connection) -> int:
        started.set()
        time.sleep(0.3)
        return count(conn)

    task = asyncio.create_task(store.run_autocommit(slow))
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()  # the caller gives up; the statement goes on on its thread
    pool = store.engine.pool
    await store.aclose()
    assert pool.checkedout() == 0
    with pytest.raises(RuntimeError, match="closed"):
        await store.run_autocommit(count)


async def test_sqlite_keeps_a_pooled_connection_per_sql_thread(tmp_path: Path):
    # With fewer (8 for 16 threads), busy threads opened and closed connections all the time.
    opened: list[object] = []
    store = SqlStore.open(f"sqlite:///{tmp_path / 'pool.db'}", threads=12)
    try:
        event.listen(store.engine, "connect", lambda conn, record: opened.append(conn))
        store.engine.dispose()
        release = threading.Event()

        def hold(conn: Connection) -> None:
            release.wait(10)

        for _ in range(3):
            release.clear()
            busy = [asyncio.ensure_future(store.run_autocommit(hold)) for _ in range(12)]
            await asyncio.sleep(0.2)
            release.set()
            await asyncio.gather(*busy)
        assert len(opened) <= 12, "connections are reused, not opened again for each burst"
    finally:
        await store.aclose()


async def test_autocommit_work_keeps_what_ran_before_a_failed_statement(database_url: str):
    # Each statement stands alone: the first insert stays when the second fails, on SQLite (the
    # driver's own transaction, committed anyway) as on PostgreSQL (AUTOCOMMIT).
    store = SqlStore.open(database_url)

    def two_inserts(conn: Connection) -> None:
        add_tenant(conn, "first")
        add_tenant(conn, "first")  # the same id again

    try:
        with pytest.raises(IntegrityError):
            await store.run_autocommit(two_inserts)
        assert await store.run_autocommit(count) == 1
        # And the connection went back to the pool usable: a write through it commits.
        await store.run_autocommit(add_tenant, "second")
        assert await store.run_in_transaction(count) == 2
    finally:
        await store.aclose()


async def test_autocommit_writes_are_committed_when_the_work_returns(sql: SqlStore):
    # Another connection sees the write at once: nothing was left in an open transaction (which
    # on SQLite would also hold the write lock and block every other writer).
    await sql.run_autocommit(add_tenant, "a")
    with sql.engine.connect() as other:
        assert count(other) == 1
    await sql.run_in_transaction(add_tenant, "b")
    assert await sql.run_autocommit(count) == 2
