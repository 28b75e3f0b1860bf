"""The SQL unit of work: the one way services run SQL off the event loop.

    async with sql.transaction() as tx:                  # BEGIN ... COMMIT, steps on one thread
        row = await tx.run(blocks_sql.get_block, tenant_id, "core", agent_key)
        tx.on_failure(undo)                              # awaited if it does not commit
    rows = await sql.run_autocommit(blocks_sql.list_blocks, tenant_id, keys)   # no BEGIN
    agent = await sql.run_in_transaction(conversations_sql.get_agent, tenant_id, agent_id)

Every SQL function takes the connection first (`fn(conn, *args)`). SQLAlchemy here is
synchronous, so the work runs on the store's own threads: a bounded set of lanes, one thread
each, never asyncio's default pool (shared with everything else) and never a thread per write.

A transaction holds one lane from BEGIN to COMMIT: every step and the commit run on that thread.
That is what keeps the write lock from deadlocking the server: requests waiting for the lock
block their own lanes, while the transaction holding it always has its thread to commit on.
Lanes are never shared while held, so SQL work started inside a transaction (which could wait for
the very lock the transaction holds) is refused as a programming error.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from types import TracebackType
from typing import Any, Concatenate, Optional, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, RootTransaction

log = logging.getLogger("agentmem.sql")

P = ParamSpec("P")
T = TypeVar("T")

SQL_THREADS = 16
"""Lanes per store. Each holds at most one connection, so this stays within the engine's pool
(SQLite 8 + 16 overflow, PostgreSQL 10 + 20) and a lane never waits for a connection."""

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentmem_sql_in_transaction", default=False
)


class NestedSqlWork(RuntimeError):
    """SQL work was started inside a transaction: it could wait for a lock the transaction holds."""


class Lanes:
    """A bounded set of single-thread executors, each lent to one user at a time.

    Threads start on first use, so a store opened by the CLI (which runs SQL synchronously)
    starts none.
    """

    def __init__(self, size: int, *, name: str = "agentmem-sql"):
        if size < 1:
            raise ValueError("a store needs at least one SQL thread")
        self._size = size
        self._name = name
        self._all: list[ThreadPoolExecutor] = []
        self._free: list[ThreadPoolExecutor] = []
        self._waiters: deque[asyncio.Future[ThreadPoolExecutor]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    async def acquire(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the SQL store is closed")
            if self._free:
                return self._free.pop()
            if len(self._all) < self._size:
                lane = ThreadPoolExecutor(1, thread_name_prefix=f"{self._name}-{len(self._all)}")
                self._all.append(lane)
                return lane
            waiter: asyncio.Future[ThreadPoolExecutor] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as the wait was cancelled
            raise

    def release(self, lane: ThreadPoolExecutor) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter, lane)
                    return
            self._free.append(lane)

    def _hand_over(
        self, waiter: asyncio.Future[ThreadPoolExecutor], lane: ThreadPoolExecutor
    ) -> None:
        if waiter.done():  # cancelled between release and now
            self.release(lane)
        else:
            waiter.set_result(lane)

    def shutdown(self) -> None:
        """Refuse new work and wait for the work in flight (its connections must go back to the
        pool before the engine is disposed, or they leak)."""
        with self._lock:
            self._closed = True
            lanes = list(self._all)
        for lane in lanes:
            lane.shutdown(wait=True)


async def _call(lane: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(lane, partial(fn, *args))


def _refuse_nesting() -> None:
    if _in_transaction.get():
        raise NestedSqlWork(
            "SQL work started inside a transaction; run it through the transaction (tx.run) "
            "or after it"
        )


class Transaction:
    """One SQL transaction pinned to a lane; use it through `UnitOfWork.transaction()`."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow
        self._lane: Optional[ThreadPoolExecutor] = None
        self._conn: Optional[Connection] = None
        self._trans: Optional[RootTransaction] = None
        self._token: Optional[contextvars.Token[bool]] = None
        self._undo: list[Callable[[], Awaitable[None]]] = []
        self.undone = True
        """False once an `on_failure` step failed: what it was to put back may be out of step."""

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the transaction is not open")
        return self._conn

    async def run(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(conn, *args, **kwargs)` inside the transaction, on its thread."""
        if self._lane is None:
            raise RuntimeError("the transaction is not open")
        return await _call(self._lane, partial(fn, self.conn, *args, **kwargs))

    def on_failure(self, undo: Callable[[], Awaitable[None]]) -> None:
        """Await `undo()` if the transaction does not commit (a step or the commit failed, or
        the caller was cancelled): for changes made outside SQL, such as the archival index,
        which commits on its own. Steps run newest first, after the rollback; one that fails is
        logged and sets `undone` to False, and the transaction's own error is raised."""
        self._undo.append(undo)

    async def __aenter__(self) -> Transaction:
        _refuse_nesting()
        lane = await self._uow._lanes.acquire()
        try:
            self._conn = await _call(lane, self._uow.engine.connect)
            try:
                self._trans = await _call(lane, self._conn.begin)
            except BaseException:
                await _call(lane, self._conn.close)
                raise
        except BaseException:
            self._uow._lanes.release(lane)
            raise
        self._lane = lane
        self._token = _in_transaction.set(True)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        assert self._lane is not None and self._conn is not None and self._trans is not None
        lane, conn, trans = self._lane, self._conn, self._trans
        committed = False
        try:
            if exc_type is None:
                commit = asyncio.ensure_future(_call(lane, trans.commit))
                try:
                    await asyncio.shield(commit)
                except asyncio.CancelledError:
                    # The commit goes on on its thread; whether it lands decides the undo.
                    await asyncio.wait({commit})
                    committed = not commit.cancelled() and commit.exception() is None
                    raise
                committed = True
        finally:
            try:
                if not committed:
                    # The commit itself may have failed (lock timeout, lost connection).
                    with suppress(Exception):
                        await _call(lane, trans.rollback)
                await _call(lane, conn.close)
            finally:
                self._lane = self._conn = self._trans = None
                if self._token is not None:
                    _in_transaction.reset(self._token)
                    self._token = None
                self._uow._lanes.release(lane)
                if not committed:
                    await self._run_undo()

    async def _run_undo(self) -> None:
        for undo in reversed(self._undo):
            try:
                await undo()
            except Exception:  # noqa: BLE001 - the transaction's own error is the one to raise
                self.undone = False
                log.exception("could not undo a change after a failed SQL transaction")


class UnitOfWork:
    """Runs SQL functions on the store's lanes: in a transaction, or statement by statement."""

    def __init__(self, engine: Engine, *, threads: int = SQL_THREADS):
        self.engine = engine
        # Single-statement work (key lookups, reads, the guarded UPDATE ... RETURNING) is atomic by
        # itself; running it without BEGIN/COMMIT saves two round trips per request on PostgreSQL.
        self._autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Not on SQLite: there the driver already runs a read with no BEGIN and wraps a write in
        # one of its own, committed by `_commit_each` below, which is what AUTOCOMMIT does; while
        # switching a pooled connection to AUTOCOMMIT and back (and a PRAGMA to restore its level)
        # made a one-row read cost 135 us of CPU instead of 50.
        self._sqlite = engine.dialect.name == "sqlite"
        self._lanes = Lanes(threads)

    def transaction(self) -> Transaction:
        """`async with sql.transaction() as tx:` commits when the block ends without an error."""
        return Transaction(self)

    async def run_in_transaction(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(conn, ...)` in a transaction of its own, BEGIN to COMMIT in one call."""

        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn, *args, **kwargs)

        return await self._run(work)

    async def run_autocommit(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(conn, ...)` whose statements each stand alone (reads, one guarded write)."""

        def work() -> T:
            if self._sqlite:
                return self._commit_each(fn, *args, **kwargs)
            with self._autocommit_engine.connect() as conn:
                return fn(conn, *args, **kwargs)

        return await self._run(work)

    def _commit_each(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """AUTOCOMMIT as SQLite's driver gives it: what `fn` wrote is committed when it returns,
        and when it fails too (a failed statement undoes only itself, as in AUTOCOMMIT). The
        driver begins a transaction only at a write, so reads before it take no lock."""
        with self.engine.connect() as conn:
            # The driver's commit, not `conn.commit()`: to SQLAlchemy (and its "commit" event,
            # which tests use to fail a transaction's commit) this stays work outside any
            # transaction, as it was under AUTOCOMMIT; closing then rolls back nothing.
            driver = conn.connection.driver_connection
            assert driver is not None
            try:
                result = fn(conn, *args, **kwargs)
            except BaseException:
                with suppress(Exception):  # the error to raise is fn's
                    driver.commit()
                raise
            driver.commit()
            return result

    async def _run(self, work: Callable[[], T]) -> T:
        _refuse_nesting()
        lane = await self._lanes.acquire()
        try:
            return await _call(lane, work)
        finally:
            # If the caller was cancelled, the work still finishes on the lane; the next user
            # of the lane simply queues behind it.
            self._lanes.release(lane)

    # ---- for synchronous callers (the CLI), on their own thread ------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """`with sql.begin() as conn:` one transaction, on the calling thread."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def single_statements(self) -> Iterator[Connection]:
        """A connection whose statements each stand alone, on the calling thread."""
        with self._autocommit_engine.connect() as conn:
            yield conn

    # ---- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wait for SQL work in flight (off the event loop), then close every connection."""
        await asyncio.get_running_loop().run_in_executor(None, self._lanes.shutdown)
        self.engine.dispose()

    def close(self) -> None:
        self._lanes.shutdown()
        self.engine.dispose()
