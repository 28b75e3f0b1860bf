"""Memory blocks: core text in SQL, archival lines in SQL with their vectors in the archival index.

SQL holds the source of truth (block rows and archival lines); LanceDB holds derived chunks and
vectors. Archival writes run the SQL transaction around the vector write, so a failed vector write
rolls the lines back, and a failed commit undoes the vector write. A process killed between the
two leaves its write in `archival_writes_in_flight`: recall hides its rows, and the crash repair
(services/repair.py) takes them back.

A scope is `agent_id` here as everywhere public; SQL keys it by `agent_key` (the agent id, or
`USER_SCOPE_KEY` for the user scope).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal, Optional, TypeVar

from sqlalchemy import Connection

from agentmem.types import BlockVersion, MemoryBlock, MemoryRecallRequest, MemoryRecallResult

from ..errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from ..ids import BLOCK, new_id, new_write_id
from ..memtrim import BIG_REQUEST_CHARS, schedule_trim
from ..storage.base import (
    USER_SCOPE_KEY,
    BlockRef,
    ScopeKey,
    agent_key_of,
    from_micros,
    now_micros,
    to_micros,
)
from ..storage.sql import blocks as blocks_sql
from ..storage.sql.events import EventRow, NewEvent
from ..storage.sql.store import SqlStore
from ..storage.sql.uow import Transaction
from .repair import ArchivalRepair

log = logging.getLogger("agentmem.memory")

if TYPE_CHECKING:
    from .archival import ArchivalIndex, PreparedChunks
    from .events import EventLog
    from .limits import Quotas

T = TypeVar("T")

BLOCK_TYPES = ("core", "archival")


def split_lines(text: str) -> list[str]:
    """Archival text as lines: CRLF folded, one trailing newline ignored (it ends the last line)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def count_lines(content: str) -> int:
    return content.count("\n") + 1 if content else 0


def _check_block_type(block_type: str) -> None:
    if block_type not in BLOCK_TYPES:
        raise InvalidInput(
            f"block_type must be 'core' or 'archival', not {block_type!r}", field="block_type"
        )


def _to_model(
    row: blocks_sql.BlockRow,
    content: Optional[str] = None,
    start: Optional[int] = None,
    end: Optional[int] = None,
) -> MemoryBlock:
    return MemoryBlock(
        id=row.id,
        block_type=row.block_type,  # type: ignore[arg-type]
        content=row.content if content is None else content,
        scope="agent" if row.agent_key else "user",
        agent_id=row.agent_key or None,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
        line_count=row.line_count,
        start_line=start,
        end_line=end,
    )


def _conflict(current: Optional[blocks_sql.BlockRow], expected: Optional[datetime]) -> Conflict:
    if current is None:
        return Conflict(
            "block does not exist; pass expected_updated_at=None to create it",
            field="expected_updated_at",
            current_updated_at=None,
        )
    current_at = from_micros(current.updated_at).isoformat()
    if expected is None:
        message = (
            f"block already exists (updated_at={current_at}); pass its updated_at to replace it"
        )
    else:
        message = f"block changed since {expected.isoformat()}; current updated_at is {current_at}"
    return Conflict(message, field="expected_updated_at", current_updated_at=current_at)


def block_event(
    block_type: str, action: str, agent_key: str, data: Optional[dict[str, object]] = None
) -> NewEvent:
    """The change-feed event of a block write: keyed by block type, in the scope's namespace
    (`("agent", id)`, or `()` for the user scope)."""
    return NewEvent(
        kind=block_type,
        action=action,
        key=block_type,
        namespace=("agent", agent_key) if agent_key else (),
        scope="agent" if agent_key else "user",
        agent_id=agent_key or None,
        data=data,
    )


def _block_data(row: blocks_sql.BlockRow, **extra: object) -> dict[str, object]:
    data: dict[str, object] = {
        "updated_at": from_micros(row.updated_at).isoformat(),
        "line_count": row.line_count,
    }
    if row.block_type == "core":
        data["content"] = row.content
    data.update(extra)
    return data


def _version(block_type: str, agent_key: str, row: EventRow) -> BlockVersion:
    data = row.data or {}
    updated_at = data.get("updated_at")
    return BlockVersion(
        seq=row.seq,
        at=from_micros(row.at),
        action=row.action,
        block_type=block_type,
        scope="agent" if agent_key else "user",
        agent_id=agent_key or None,
        content=data.get("content"),
        updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
        line_count=data.get("line_count"),
        start_line=data.get("start_line"),
        end_line=data.get("end_line"),
    )


VANISHED_WAIT_S = 10.0
"""How long an archival write whose index vanished under it waits for the delete that dropped
it to commit (a drop retries for up to ~5 s while writers race it: storage/lance/store.py)."""
APPEND_ATTEMPTS = 8
APPEND_BACKOFF_S = 0.02
"""An archival append that lost its guarded SQL step to another replica's write retries after a
random pause of up to `APPEND_BACKOFF_S * 2**attempt` (at most ~2.5 s after the 7th loss). Without
it, three replicas appending to one scope retried in lockstep: one request lost 5 rounds in a row
and answered 409 (tests/e2e/test_scaleout_e2e.py)."""


class _BlockMoved(Exception):
    """The archival block changed between an append's read and its write (another replica)."""


class _ScopeLock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


ArchivalWriteKind = Literal["append", "resync"]
"""How an interrupted archival write is repaired: "append" drops the rows tagged with its write
id, "resync" rebuilds the scope's index from its committed lines."""


class MemoryService:
    def __init__(
        self,
        sql: SqlStore,
        archival: ArchivalIndex,
        *,
        core_limit_chars: int,
        quotas: Optional[Quotas] = None,
        events: Optional[EventLog] = None,
    ):
        """`events`: the change feed every write is recorded in (in the write's transaction).
        None keeps no log: only benchmarks measuring what the log costs build it so."""
        self._sql = sql
        self._archival = archival
        self.core_limit_chars = core_limit_chars
        self._quotas = quotas
        self._scope_locks: dict[tuple[str, str], _ScopeLock] = {}
        self.repair = ArchivalRepair(sql, self)
        """Crash repair; its process id is the owner this service's writes record."""
        self._events = events

    def _record(self, conn: Connection, tenant_id: str, event: NewEvent) -> None:
        if self._events is not None:
            self._events.record(conn, tenant_id, event)

    def _committed(self, tenant_id: str) -> None:
        if self._events is not None:
            self._events.committed(tenant_id)

    @property
    def archival_index(self) -> ArchivalIndex:
        return self._archival

    @property
    def quotas(self) -> Optional[Quotas]:
        return self._quotas

    async def _ensure_room(self, tenant_id: str, quota: str, adding: int, field: str) -> None:
        if self._quotas is not None:
            await self._quotas.ensure_room(tenant_id, quota, adding, field=field)

    # ---- transactions that span SQL and the archival index -------------------------------------

    @asynccontextmanager
    async def _archival_transaction(
        self, tenant_id: str, agent_key: str, kind: ArchivalWriteKind
    ) -> AsyncIterator[tuple[Transaction, str]]:
        """A transaction for a write that may change the scope's archival index, and the write id
        its archival rows carry. Recorded in `archival_writes_in_flight` until it commits or is
        undone (see `repair_interrupted_writes`); the index writes inside it register their undo
        with `tx.on_failure`, since LanceDB commits on its own."""
        write_id = new_write_id()
        await self._sql.run_autocommit(
            blocks_sql.begin_archival_write,
            write_id,
            tenant_id,
            agent_key,
            kind,
            now_micros(),
            self.repair.process_id,
        )
        tx: Optional[Transaction] = None
        try:
            async with self._sql.transaction() as tx:
                yield tx, write_id
                await tx.run(blocks_sql.end_archival_write, write_id)  # commits with the write
        except BaseException:
            if tx is None or tx.undone:
                with suppress(Exception):  # left in place, the repair would redo a finished undo
                    await self._sql.run_autocommit(blocks_sql.end_archival_write, write_id)
            raise

    async def repair_interrupted_writes(self, *, older_than: Optional[timedelta] = None) -> int:
        """Repair the interrupted archival writes of dead processes (with `older_than`: every
        write started longer ago); returns how many were repaired (services/repair.py)."""
        return (await self.repair.repair(older_than=older_than)).repaired

    async def resync_scope(self, tenant_id: str, agent_key: str) -> None:
        """Make the scope's archival index match its committed lines again (re-embedding only
        chunks whose text the index no longer holds)."""

        def read(conn: Connection) -> tuple[Optional[blocks_sql.BlockRow], list[str]]:
            # One transaction, one snapshot: the block row and its lines agree.
            row = blocks_sql.get_block(conn, tenant_id, "archival", agent_key)
            return row, blocks_sql.read_lines(conn, row.id, 1, None) if row is not None else []

        row, lines = await self._sql.run_in_transaction(read)
        if row is None:
            await self._archival.drop_scope(tenant_id, ScopeKey.from_agent_key(agent_key))
            return
        ref = BlockRef.of(tenant_id, row.id, agent_key)
        await self._archival.replace(ref, lines, written_at=from_micros(row.updated_at))

    # ---- reads ------------------------------------------------------------------------------

    async def list_blocks(
        self, tenant_id: str, scope: str, agent_id: Optional[str]
    ) -> list[MemoryBlock]:
        if scope not in ("user", "agent", "all"):
            raise InvalidInput(
                f"scope must be 'user', 'agent' or 'all', not {scope!r}", field="scope"
            )
        if scope == "agent" and not agent_id:
            raise InvalidInput("scope='agent' needs agent_id", field="agent_id")
        by_scope: dict[str, list[Optional[str]]] = {
            "user": [USER_SCOPE_KEY],
            "agent": [agent_id],
            "all": [USER_SCOPE_KEY, agent_id],
        }
        keys = by_scope[scope]
        rows = await self._sql.run_autocommit(
            blocks_sql.list_blocks, tenant_id, [k for k in keys if k is not None]
        )
        # Archival text can be millions of lines; list shows its size, `get` reads ranges of it.
        return [_to_model(r, content="" if r.block_type == "archival" else None) for r in rows]

    async def get_block(
        self,
        tenant_id: str,
        block_type: str,
        agent_id: Optional[str],
        start_line: Optional[int] = None,
        end_line: Optional[int] = None,
    ) -> MemoryBlock:
        _check_block_type(block_type)
        if start_line is not None and start_line < 1:
            raise InvalidInput("start_line must be >= 1", field="start_line", limit=1)
        if start_line is not None and end_line is not None and end_line < start_line:
            raise InvalidInput("end_line must be >= start_line", field="end_line")
        ranged = start_line is not None or end_line is not None
        start = start_line or 1

        def read(
            conn: Connection,
        ) -> tuple[Optional[blocks_sql.BlockRow], Optional[list[str]]]:
            row = blocks_sql.get_block(conn, tenant_id, block_type, agent_key_of(agent_id))
            if row is None:
                return None, None
            if block_type == "archival":
                return row, blocks_sql.read_lines(conn, row.id, start, end_line)
            return row, None

        row, lines = await self._sql.run_autocommit(read)
        if row is None:
            raise NotFound(
                f"no {block_type} block in "
                f"{'agent ' + repr(agent_id) if agent_id else 'user'} scope"
            )
        if lines is None:
            if not ranged:
                return _to_model(row)
            lines = row.content.split("\n")[start - 1 : end_line] if row.content else []
        if not ranged:
            return _to_model(row, content="\n".join(lines))
        last = start + len(lines) - 1 if lines else None
        return _to_model(row, content="\n".join(lines), start=start if lines else None, end=last)

    async def history(
        self, tenant_id: str, block_type: str, agent_id: Optional[str], limit: int
    ) -> list[BlockVersion]:
        """The block's versions from the change feed, newest first."""
        _check_block_type(block_type)
        if self._events is None:
            return []
        agent_key = agent_key_of(agent_id)
        ref = block_event(block_type, "", agent_key)
        rows = await self._events.history(
            tenant_id, kinds=(block_type,), key=block_type, namespace=ref.namespace, limit=limit
        )
        return [_version(block_type, agent_key, row) for row in rows]

    async def recall(
        self, tenant_id: str, request: MemoryRecallRequest
    ) -> list[MemoryRecallResult]:
        if request.scope == "agent" and not request.agent_id:
            raise InvalidInput("scope='agent' needs agent_id", field="agent_id")
        keys: list[str] = []
        if request.scope in ("user", "all"):
            keys.append(USER_SCOPE_KEY)
        if request.scope in ("agent", "all") and request.agent_id:
            keys.append(request.agent_id)
        # The query is embedded (on its own thread) while SQL is asked, so the SQL round trip
        # costs a recall nothing on the critical path (docs/recall.md, "Where the time goes").
        embedding = self._archival.embed_query(request.query)
        try:
            # The blocks SQL holds now: a deleted scope is never searched, a re-created one is its
            # new block's index, and a write committed by any replica is seen (docs/deploy.md).
            # Read in the same call: the writes whose rows recall hides (services/repair.py).
            found, hidden = await self._sql.run_autocommit(
                blocks_sql.recall_targets, tenant_id, keys
            )
            by_key = {agent_key: (block_id, stamp) for block_id, agent_key, stamp in found}
            blocks = [
                BlockRef.of(tenant_id, by_key[k][0], k, by_key[k][1]) for k in keys if k in by_key
            ]
            return await self._archival.recall(
                tenant_id,
                request.query,
                hidden_writes=hidden,
                query_vector=embedding,
                scopes=blocks,
                mode=request.mode,
                limit=request.limit,
                min_score=request.min_score,
                updated_after=request.updated_after,
                updated_before=request.updated_before,
            )
        finally:
            embedding.cancel()  # unused when nothing was searched; a no-op once done
            if embedding.done() and not embedding.cancelled():
                embedding.exception()  # seen: a failure nobody awaited is not logged as lost

    # ---- writes -----------------------------------------------------------------------------

    def _check_core_size(self, content: str) -> None:
        if len(content) > self.core_limit_chars:
            raise PayloadTooLarge(
                f"core block content is {len(content)} characters; "
                f"the limit is {self.core_limit_chars}",
                field="content",
                limit=self.core_limit_chars,
            )

    async def update_block(
        self,
        tenant_id: str,
        block_type: str,
        content: str,
        expected_updated_at: Optional[datetime],
        agent_id: Optional[str],
    ) -> MemoryBlock:
        _check_block_type(block_type)
        agent_key = agent_key_of(agent_id)
        if block_type == "core":
            self._check_core_size(content)
            if expected_updated_at is None:  # creates a block
                await self._ensure_room(tenant_id, "core_blocks", 1, "expected_updated_at")
            return await self._update_core(tenant_id, agent_key, content, expected_updated_at)
        return await self._update_archival(tenant_id, agent_key, content, expected_updated_at)

    async def _update_core(
        self, tenant_id: str, agent_key: str, content: str, expected: Optional[datetime]
    ) -> MemoryBlock:
        def write(
            conn: Connection,
        ) -> tuple[Optional[blocks_sql.BlockRow], Optional[blocks_sql.BlockRow]]:
            if expected is None:
                row = blocks_sql.insert_block_if_missing(
                    conn, tenant_id, "core", agent_key, content, count_lines(content), now_micros()
                )
            else:
                row = blocks_sql.guarded_update(
                    conn,
                    tenant_id,
                    "core",
                    agent_key,
                    expected_updated_at=to_micros(expected),
                    content=content,
                    line_count=count_lines(content),
                    now_us=now_micros(),
                )
            if row is not None:
                self._record(
                    conn, tenant_id, block_event("core", "update", agent_key, _block_data(row))
                )
                return row, None
            return None, blocks_sql.get_block(conn, tenant_id, "core", agent_key)

        row, current = await self._run_write(write)
        if row is None:
            raise _conflict(current, expected)
        self._committed(tenant_id)
        return _to_model(row)

    async def _run_write(self, write: Callable[[Connection], T]) -> T:
        """A core write: with the log, one transaction holding the write and its event; without,
        the write's single statement on its own."""
        if self._events is None:
            return await self._sql.run_autocommit(write)
        return await self._sql.run_in_transaction(write)

    async def _update_archival(
        self, tenant_id: str, agent_key: str, content: str, expected: Optional[datetime]
    ) -> MemoryBlock:
        lines = split_lines(content) if content else []
        # Counted as if every line were new: the lines it replaces are not known before the write.
        await self._ensure_room(tenant_id, "archival_lines", len(lines), "content")
        now = now_micros()
        async with self._archival_transaction(tenant_id, agent_key, "resync") as (tx, _):
            if expected is None:
                row = await tx.run(
                    blocks_sql.insert_block_if_missing,
                    tenant_id,
                    "archival",
                    agent_key,
                    "",
                    len(lines),
                    now,
                )
            else:
                row = await tx.run(
                    blocks_sql.guarded_update,
                    tenant_id,
                    "archival",
                    agent_key,
                    expected_updated_at=to_micros(expected),
                    content="",
                    line_count=len(lines),
                    now_us=now,
                )
            if row is None:
                current = await tx.run(blocks_sql.get_block, tenant_id, "archival", agent_key)
                raise _conflict(current, expected)
            await tx.run(blocks_sql.replace_lines, row.id, lines, row.updated_at)
            ref = BlockRef.of(tenant_id, row.id, agent_key)
            # Inside the transaction: if embedding or the vector write fails, the text rolls back
            # too.
            tx.on_failure(partial(self.resync_scope, tenant_id, agent_key))
            await self._archival.replace(ref, lines, written_at=from_micros(row.updated_at))
            event = block_event("archival", "update", agent_key, _block_data(row))
            await tx.run(self._record, tenant_id, event)
        self._committed(tenant_id)
        return _to_model(row, content=content)

    async def append(
        self, tenant_id: str, block_type: str, text: str, agent_id: Optional[str]
    ) -> MemoryBlock:
        _check_block_type(block_type)
        if not text:
            raise InvalidInput("text must not be empty", field="text")
        if block_type == "core":
            return await self._append_core(tenant_id, agent_key_of(agent_id), text)
        try:
            return await self.append_archival_lines(tenant_id, split_lines(text), agent_id)
        finally:
            if len(text) >= BIG_REQUEST_CHARS:
                schedule_trim()

    async def _append_core(self, tenant_id: str, agent_key: str, text: str) -> MemoryBlock:
        self._check_core_size(text)
        added = count_lines(text)

        def write(
            conn: Connection,
        ) -> tuple[Optional[blocks_sql.BlockRow], Optional[blocks_sql.BlockRow]]:
            row = blocks_sql.append_core_text(
                conn,
                tenant_id,
                "core",
                agent_key,
                text=text,
                added_lines=added,
                limit_chars=self.core_limit_chars,
                now_us=now_micros(),
            )
            if row is None:
                current = blocks_sql.get_block(conn, tenant_id, "core", agent_key)
                if current is not None:
                    return None, current
                if self._quotas is not None:  # only when this append creates the block
                    self._quotas.ensure_room_in(conn, tenant_id, "core_blocks", 1, field="text")
                row = blocks_sql.insert_block_if_missing(
                    conn, tenant_id, "core", agent_key, text, added, now_micros()
                )
            if row is not None:
                data = _block_data(
                    row, start_line=row.line_count - added + 1, end_line=row.line_count
                )
                self._record(conn, tenant_id, block_event("core", "append", agent_key, data))
            return row, None

        # A concurrent creator can win the insert between our UPDATE and INSERT; then append again.
        for _ in range(3):
            row, current = await self._run_write(write)
            if row is not None:
                self._committed(tenant_id)
                return _to_model(row)
            if current is not None:
                raise PayloadTooLarge(
                    f"appending {len(text)} characters to a core block of {len(current.content)} "
                    f"would pass the limit of {self.core_limit_chars}",
                    field="text",
                    limit=self.core_limit_chars,
                )
        raise Conflict("core block kept changing during append; retry", field="text")

    async def append_archival_lines(
        self,
        tenant_id: str,
        lines: list[str],
        agent_id: Optional[str],
        *,
        with_sql: Optional[Callable[[Connection], object]] = None,
    ) -> MemoryBlock:
        """Append exact lines (import uses this: no newline folding, empty lines kept).

        `with_sql(conn)` runs first in the same SQL transaction: what it writes commits with the
        lines or not at all, and an error it raises leaves nothing written (thread compaction
        moves messages into archival memory this way)."""
        agent_key = agent_key_of(agent_id)
        await self._ensure_room(tenant_id, "archival_lines", len(lines), "text")
        # Embedding is the slow part and touches no state, so it runs before any lock is taken.
        prepared = await self._archival.prepare(
            lines, scope=(tenant_id, ScopeKey.from_agent_key(agent_key))
        )
        # One append per scope at a time in this process (they would number the same lines); a
        # replica appending to the scope meanwhile makes the guarded write below retry.
        lost: list[tuple[Callable[[], Awaitable[None]], str]] = []
        try:
            async with self._scope_lock(tenant_id, agent_key):
                for attempt in range(APPEND_ATTEMPTS):
                    if attempt:
                        await asyncio.sleep(random.uniform(0, APPEND_BACKOFF_S * 2**attempt))
                    row = await self._append_once(
                        tenant_id, agent_key, lines, prepared, with_sql, lost=lost
                    )
                    if row is not None:
                        first = row.line_count - len(lines) + 1
                        end = row.line_count
                        return _to_model(row, content="\n".join(lines), start=first, end=end)
        finally:
            # The rows of attempts that lost go after the append (hidden from recall until
            # then: their writes are in flight). Taken back before the retry, they made it start
            # behind the winner's next append, which could win every round (409 after 5 losses
            # with 3 replicas appending to one scope).
            for undo, write_id in lost:
                if await self._undo_index_write(undo, write_id):
                    await self._end_write(write_id, None)
        raise Conflict(
            "the archival block kept changing during the append (other servers appending to "
            "it); retry",
            field="text",
        )

    async def _append_once(
        self,
        tenant_id: str,
        agent_key: str,
        lines: list[str],
        prepared: PreparedChunks,
        with_sql: Optional[Callable[[Connection], object]] = None,
        *,
        lost: list[tuple[Callable[[], Awaitable[None]], str]],
    ) -> Optional[blocks_sql.BlockRow]:
        """Store the lines after the block's current last line; None when the block changed
        since it was read: then what to take back, with the write id, is added to `lost`.

        The index rows are written first, numbered from the block as read, and then one short
        SQL transaction checks the block is unchanged, stores the lines and ends the write. So
        the SQL write lock (all of SQLite's writers wait on it) is never held during index I/O,
        nor is a SQL thread. Until that commit the rows are hidden from recall (the write is in
        flight); a failed commit takes them back, a process that dies leaves them to the repair.
        """
        block = await self._sql.run_autocommit(
            blocks_sql.get_block, tenant_id, "archival", agent_key
        )
        block_id = block.id if block is not None else new_id(BLOCK)
        count = block.line_count if block is not None else 0
        seen_at = block.updated_at if block is not None else None
        now = now_micros() if seen_at is None else max(now_micros(), seen_at + 1)
        scope = ScopeKey.from_agent_key(agent_key)
        write_id = new_write_id()
        await self._sql.run_autocommit(
            blocks_sql.begin_archival_write,
            write_id,
            tenant_id,
            agent_key,
            "append",
            now_micros(),
            self.repair.process_id,
        )
        undo = partial(self._undo_append, tenant_id, scope, write_id, block_id)
        moved = False

        async def undo_unless_moved() -> None:
            if not moved:  # a lost race: the caller takes the rows back later
                await undo()

        tx: Optional[Transaction] = None
        try:
            try:
                await self._archival.add(
                    BlockRef.of(tenant_id, block_id, agent_key),
                    prepared,
                    first_line=count + 1,
                    written_at=now,
                    write_id=write_id,
                )
            except Exception as exc:
                if not await self._lost_block(tenant_id, agent_key, block_id, seen_at, exc):
                    raise
                # Another replica changed the block under this write: a delete dropped its
                # table mid-write (LanceDB then fails in many ways: files not found, a
                # half-removed folder). Like a lost SQL race, take the rows back and retry.
                log.info("archival append %s lost its block to another write; retrying", write_id)
                raise _BlockMoved() from None
            async with self._sql.transaction() as tx:
                tx.on_failure(undo_unless_moved)
                if with_sql is not None:
                    await tx.run(with_sql)
                row = await tx.run(
                    self._commit_append,
                    tenant_id,
                    agent_key,
                    block_id,
                    seen_at,
                    count,
                    lines,
                    now,
                    write_id,
                )
                if row is None:
                    moved = True
                    raise _BlockMoved()
            self._committed(tenant_id)
            return row
        except _BlockMoved:
            lost.append((undo, write_id))
            return None
        except BaseException:
            # With no transaction begun, the index write failed or was cancelled: take back what
            # it stored (the transaction's own failure ran `undo` already).
            if tx is not None or await self._undo_index_write(undo, write_id):
                await self._end_write(write_id, tx)
            raise

    async def _undo_index_write(self, undo: Callable[[], Awaitable[None]], write_id: str) -> bool:
        try:
            await asyncio.shield(undo())
        except Exception:  # noqa: BLE001 - left in flight, the repair takes it back
            log.exception("could not undo a failed archival append %s", write_id)
            return False
        return True

    async def _lost_block(
        self,
        tenant_id: str,
        agent_key: str,
        block_id: str,
        seen_at: Optional[int],
        error: BaseException,
    ) -> bool:
        """Whether an index write failed because another replica changed the block under it.

        A delete drops the block's index inside its SQL transaction and commits after the drop:
        a write that met the index's files vanishing can read the block unchanged until then.
        Such a failure waits for the block to move, up to `VANISHED_WAIT_S` (the longest a
        drop retries), before it is taken for the write's own (it was at once: a 500)."""
        if await self._block_moved(tenant_id, agent_key, block_id, seen_at):
            return True
        if not self._archival.vanished(error):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VANISHED_WAIT_S
        pause = APPEND_BACKOFF_S
        while loop.time() < deadline:
            await asyncio.sleep(pause)
            if await self._block_moved(tenant_id, agent_key, block_id, seen_at):
                return True
            pause = min(pause * 2, 0.5)
        return False

    async def _block_moved(
        self, tenant_id: str, agent_key: str, block_id: str, seen_at: Optional[int]
    ) -> bool:
        """Whether the scope's archival block is no longer the one an append read (`seen_at`
        its updated_at; None: there was none)."""
        try:
            row = await self._sql.run_autocommit(
                blocks_sql.get_block, tenant_id, "archival", agent_key
            )
        except Exception:  # noqa: BLE001 - the append's own error is the one to answer
            log.exception("could not read the archival block after a failed append")
            return False
        if seen_at is None:
            return row is not None
        return row is None or row.id != block_id or row.updated_at != seen_at

    async def _undo_append(
        self, tenant_id: str, scope: ScopeKey, write_id: str, block_id: str
    ) -> None:
        """Take back the index rows of an append whose SQL step did not commit. If its block is
        gone (deleted meanwhile) or was never created (another replica created the scope's
        block first), its table goes too: left alone, it would stay behind empty, or as a
        half-removed table a delete raced."""
        row = await self._sql.run_autocommit(
            blocks_sql.get_block, tenant_id, "archival", scope.agent_key
        )
        if row is None or row.id != block_id:
            await self._archival.delete_block(tenant_id, block_id, scope=scope)
        else:
            await self._archival.discard_write(tenant_id, scope, write_id, block_id=block_id)

    def _commit_append(
        self,
        conn: Connection,
        tenant_id: str,
        agent_key: str,
        block_id: str,
        seen_at: Optional[int],
        count: int,
        lines: list[str],
        now: int,
        write_id: str,
    ) -> Optional[blocks_sql.BlockRow]:
        row = blocks_sql.commit_append(
            conn,
            tenant_id,
            agent_key,
            block_id,
            seen_at=seen_at,
            count=count,
            lines=lines,
            now_us=now,
            write_id=write_id,
        )
        if row is not None:
            data = _block_data(row, start_line=count + 1, end_line=row.line_count)
            self._record(conn, tenant_id, block_event("archival", "append", agent_key, data))
        return row

    async def _end_write(self, write_id: str, tx: Optional[Transaction]) -> None:
        if tx is None or tx.undone:
            with suppress(Exception):  # left in place, the repair would redo a finished undo
                await self._sql.run_autocommit(blocks_sql.end_archival_write, write_id)

    @asynccontextmanager
    async def _scope_lock(self, tenant_id: str, agent_key: str) -> AsyncIterator[None]:
        key = (tenant_id, agent_key)
        entry = self._scope_locks.get(key)
        if entry is None:
            entry = self._scope_locks[key] = _ScopeLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._scope_locks[key]

    async def delete_block(self, tenant_id: str, block_type: str, agent_id: Optional[str]) -> None:
        _check_block_type(block_type)
        agent_key = agent_key_of(agent_id)
        if block_type == "core":

            def delete(conn: Connection) -> Optional[str]:
                block_id = blocks_sql.delete_block(conn, tenant_id, block_type, agent_key)
                if block_id:  # deleting nothing changes nothing: no event
                    self._record(conn, tenant_id, block_event("core", "delete", agent_key))
                return block_id

            if await self._sql.run_in_transaction(delete):
                self._committed(tenant_id)
            return
        async with self._archival_transaction(tenant_id, agent_key, "resync") as (tx, _):
            block_id = await tx.run(blocks_sql.delete_block, tenant_id, block_type, agent_key)
            if block_id:
                tx.on_failure(partial(self.resync_scope, tenant_id, agent_key))
                scope = ScopeKey.from_agent_key(agent_key)
                await self._archival.delete_block(tenant_id, block_id, scope=scope)
                await tx.run(self._record, tenant_id, block_event("archival", "delete", agent_key))
        if block_id:
            self._committed(tenant_id)

    async def delete_agent_memory(self, tenant_id: str, agent_id: str) -> None:
        for block_type in BLOCK_TYPES:
            await self.delete_block(tenant_id, block_type, agent_id)
