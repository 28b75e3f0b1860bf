"""Import an export (services/transfer.py) into a tenant: strict, tenant-safe, all-or-nothing.

    result = await import_records(sql, memory, tenant_id, lines)   # {"counts", "renamed"}

Three passes over the records:

1. **Check.** Every line is parsed with its kind's model (`RECORD_KINDS`), the same value rules
   and limits as the REST routes (ids, text, sizes, roles), and checked against the lines before
   it (a message names a thread of this file, a run's record agrees with its line, ...). The
   lines go to a spool file (memory, then disk). Nothing is written; any error answers 4xx with
   the line number.
2. **Embed.** Archival lines are chunked and embedded and their rows written to the archival
   index, each write recorded in `archival_writes_in_flight` first (so a process that dies here
   leaves rows the crash repair discards).
3. **Write.** One SQL transaction applies every record in file order and, last, records the
   change-feed events of what it wrote (those the same REST writes would record: one archival
   `append` per block and one thread `append` per thread, not one per line or message). If it
   fails (a conflict, a quota), it rolls back and the archival rows of pass 2 are discarded: the
   tenant is as before, its event log too.

Every lookup is scoped to the importing tenant. Agents and blocks are the tenant's own keys: one
that exists already answers 409. Threads, messages and runs have server-wide ids; a record whose
id is taken (by anyone) gets a fresh id, references to it in the file follow, and the answer's
`renamed` lists the new ids. Message `seq` numbers are renumbered 1..n per thread (their order
kept).

A record kind is one model and one `write` function (plus an optional `check`), registered with
`record_kind`; see the kinds at the end of this module.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import (
    IO,
    TYPE_CHECKING,
    Annotated,
    Any,
    Generic,
    Literal,
    Optional,
    TypeVar,
    Union,
)

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection

from agentmem.types._constraints import (
    MAX_LINE_NUMBER,
    MODEL_MAX_LENGTH,
    Id,
    JsonObject,
    Text,
)
from agentmem.types.state import StateKey, StateValue, encode_namespace, namespace_problem
from agentmem.types.threads import MessageRole, ThreadMetadata, Title

from ..chunking import Chunk
from ..errors import Conflict, InvalidInput, PayloadTooLarge
from ..ids import BLOCK, MESSAGE, RUN, THREAD, new_id, new_write_id
from ..memtrim import schedule_trim
from ..storage.base import BlockRef, ScopeKey, agent_key_of, from_micros, now_micros
from ..storage.sql import blocks as blocks_sql
from ..storage.sql import conversations as conversations_sql
from ..storage.sql import state as state_sql
from ..storage.sql import threads as threads_sql
from ..storage.sql.conversations import ThreadRow
from ..storage.sql.events import NewEvent
from ..storage.sql.store import SqlStore
from .agents import agent_event
from .memory import MemoryService, block_event, count_lines
from .run_record import RunRecord
from .state import state_event
from .threads import messages_data, thread_data, thread_event

if TYPE_CHECKING:
    from .events import EventLog

FORMAT = "agentmem-export"
VERSION = 1

MAX_MICROS = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z in microseconds: the last time both databases store."""

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
"""An import's checked lines stay in memory up to this size, then go to a temporary file."""

EVENT_BUFFER_BYTES = 8 * 1024 * 1024
"""Change-feed events an import keeps in memory to record at the end of its write pass."""

EMBED_GROUP_LINES = 4096
"""Archival lines embedded together (their batches concurrently) and written as one write."""

Micros = Annotated[int, Field(ge=0, le=MAX_MICROS)]


# ---- records ------------------------------------------------------------------------------------


class Record(BaseModel):
    """A line of an export. Unknown fields are refused, as in request bodies."""

    model_config = ConfigDict(extra="forbid")


class HeaderRecord(Record):
    type: Literal["header"]
    format: Literal["agentmem-export"]
    version: int
    exported_at: Optional[str] = None


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("an archival line must not contain a line break")
    return value


Line = Annotated[Text, AfterValidator(_one_line)]


class AgentRecord(Record):
    type: Literal["agent"]
    id: Id
    instructions: Text = ""
    model: Optional[Annotated[Text, Field(max_length=MODEL_MAX_LENGTH)]] = None
    metadata: JsonObject = Field(default_factory=dict)


class BlockRecord(Record):
    type: Literal["block"]
    block_type: Literal["core", "archival"]
    agent_id: Optional[Id] = None
    content: Optional[Text] = None
    """Core blocks only."""
    line_count: Optional[int] = Field(default=None, ge=0, le=MAX_LINE_NUMBER)
    """Archival blocks only: how many lines the source held (the `archival_lines` carry them)."""


class ArchivalLinesRecord(Record):
    type: Literal["archival_lines"]
    agent_id: Optional[Id] = None
    lines: list[Line] = Field(min_length=1)


class ThreadRecord(Record):
    type: Literal["thread"]
    id: Id
    agent_id: Optional[Union[Id, Literal[""]]] = None
    """None (or "", as exports before title and metadata wrote it): no run has bound it yet."""
    title: Optional[Title] = None
    metadata: ThreadMetadata = Field(default_factory=dict)
    created_at: Micros
    updated_at: Optional[Micros] = None
    """Missing in older exports: the thread's `created_at` then."""


class MessageRecord(Record):
    type: Literal["message"]
    id: Id
    thread_id: Id
    seq: int = Field(ge=1, le=MAX_LINE_NUMBER)
    role: MessageRole
    kind: Literal["message", "summary"] = "message"
    """`summary`: a compaction's stand-in for the turns it moved to archival memory."""
    content: Text
    run_id: Optional[Id] = None
    created_at: Micros


class RunLineRecord(Record):
    type: Literal["run"]
    id: Id
    agent_id: Id
    thread_id: Id
    created_at: Micros
    replay_of: Optional[Id] = None
    record: JsonObject


R = TypeVar("R", bound=Record)


# ---- what the passes share ----------------------------------------------------------------------


@dataclass
class ImportState:
    """What the check pass learns and the write pass uses. Ids of the file map to the ids the
    records get here (`renamed`: only those that changed)."""

    tenant_id: str
    core_limit_chars: int
    started_us: int
    counts: dict[str, int] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    blocks: set[tuple[str, str]] = field(default_factory=set)
    """(block_type, agent_key) declared by the file."""
    threads: dict[str, str] = field(default_factory=dict)
    """Thread id -> its agent id."""
    thread_seq: dict[str, int] = field(default_factory=dict)
    """Thread id -> the last `seq` seen (check) / written (write)."""
    messages: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    pending_refs: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, kind, id) references to runs, resolved once every line was read."""
    agent_refs: dict[str, int] = field(default_factory=dict)
    """Agent id -> the first line of a thread or run naming it; those the file does not create
    must be the tenant's (checked with the database)."""
    archival_lines: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """agent_key -> lines of that scope so far (check) / written (write)."""
    archival_batches: int = 0
    block_ids: dict[str, str] = field(default_factory=dict)
    """agent_key -> the id the scope's archival block gets (its index rows carry it)."""
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    """kind -> {id in the file: id given here}."""
    archival_written: set[str] = field(default_factory=set)
    """Agent keys whose archival block the write pass created."""
    state_keys: set[tuple[str, str]] = field(default_factory=set)
    """(namespace, key) of the file's keyed-state entries."""
    event_cap_bytes: int = 64 * 1024
    """The change feed's data cap: message text kept for a thread's event stops past it."""
    recorder: Optional[Callable[[Connection, str, NewEvent], object]] = None
    """Records an event in the write pass's transaction; None: no change feed."""
    events: list[NewEvent] = field(default_factory=list)
    """Events of what the write pass wrote (in file order) not recorded yet."""
    events_bytes: int = 0
    """About what `events` holds in memory."""
    recorded: int = 0
    archival_updated: dict[str, int] = field(default_factory=dict)
    """agent_key -> the archival block's `updated_at` after the write pass (in write order)."""
    thread_rows: dict[str, ThreadRow] = field(default_factory=dict)
    """New thread id -> the thread as written."""
    thread_messages: Optional[tuple[str, _ThreadMessages]] = None
    """(new thread id, the messages just written into it): its `append` event, emitted when a
    record of another thread (or of another kind) comes, so one thread's text at most is held."""

    def emit(self, conn: Connection, event: NewEvent, size: int = 0) -> None:
        """Keep `event` (about `size` bytes of data) to record when the write pass ends: the
        tenant's event counter is then locked only from there to the commit. An import whose
        events pass `EVENT_BUFFER_BYTES` records them as it goes instead (holding the counter
        longer, never the events' data in memory)."""
        if self.recorder is None:
            return
        self.events.append(event)
        self.events_bytes += size + 256
        if self.events_bytes > EVENT_BUFFER_BYTES:
            self.flush_events(conn)

    def flush_events(self, conn: Connection) -> None:
        if self.recorder is None:
            return
        for event in self.events:
            self.recorder(conn, self.tenant_id, event)
        self.recorded += len(self.events)
        self.events.clear()
        self.events_bytes = 0

    def messages_into(self, conn: Connection, thread_id: str) -> _ThreadMessages:
        """The accumulator of the thread's messages (a new one after another thread's)."""
        if self.thread_messages is None or self.thread_messages[0] != thread_id:
            self.end_messages(conn)
            self.thread_messages = (thread_id, _ThreadMessages())
        return self.thread_messages[1]

    def end_messages(self, conn: Connection) -> None:
        """Emit the `append` event of the messages written in a row into one thread."""
        if self.thread_messages is None:
            return
        thread_id, added = self.thread_messages
        self.thread_messages = None
        row = self.thread_rows[thread_id]
        data = messages_data(added.items) | {"count": added.count, "last_id": added.last_id}
        self.emit(conn, thread_event("append", thread_id, row.agent_id, data), added.text_bytes)

    def closing_events(self) -> list[NewEvent]:
        """The events that sum up a whole archival block, after the file-order ones: one
        `append` per block."""
        out = []
        for agent_key, updated in self.archival_updated.items():
            count = self.archival_lines[agent_key]
            data = {
                "updated_at": from_micros(updated).isoformat(),
                "line_count": count,
                "start_line": 1,
                "end_line": count,
            }
            out.append(block_event("archival", "append", agent_key, data))
        return out

    def new_id(self, kind: str, old: str) -> str:
        return self.renamed.get(kind, {}).get(old, old)

    def archival_block_id(self, agent_key: str) -> str:
        if agent_key not in self.block_ids:
            self.block_ids[agent_key] = new_id(BLOCK)
        return self.block_ids[agent_key]

    def batch_written_at(self, batch: int) -> int:
        """Each imported batch gets its own time, so a later export keeps the batches apart."""
        return self.started_us + batch


@dataclass
class _ThreadMessages:
    """A thread's imported messages as its `append` event tells them: the range, and the
    messages themselves until their text passes the event cap (then the cap leaves them out)."""

    count: int = 0
    last_id: str = ""
    items: list[tuple[str, str, str, str]] = field(default_factory=list)
    text_bytes: int = 0

    def add(self, message_id: str, role: str, kind: str, content: str, cap: int) -> None:
        self.count += 1
        self.last_id = message_id
        if self.text_bytes <= cap:
            self.items.append((message_id, role, kind, content))
            self.text_bytes += len(content.encode())


def _fail(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line}: {message}", field=f"line {line}")


Check = Callable[[ImportState, R, int], None]
Write = Callable[[ImportState, Connection, R], None]


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    model: type[R]
    write: Write[R]
    check: Optional[Check[R]] = None


RECORD_KINDS: dict[str, RecordKind[Any]] = {}
"""Record `type` -> how to check and write it. The header is handled apart."""


def record_kind(
    name: str, model: type[R], *, check: Optional[Check[R]] = None
) -> Callable[[Write[R]], Write[R]]:
    """Register `write(state, conn, record)` for records of `type` `name`: it runs in the import's
    one SQL transaction, in file order, and writes for `state.tenant_id` only. `check(state,
    record, line)` runs in the check pass (no I/O) and raises `InvalidInput` for a bad record."""

    def register(write: Write[R]) -> Write[R]:
        RECORD_KINDS[name] = RecordKind(model, write, check)
        return write

    return register


# ---- the passes ---------------------------------------------------------------------------------


def _parse(raw: bytes, number: int) -> tuple[str, Record]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise _fail(number, f"not JSON: {reason}") from exc
    if not isinstance(data, dict):
        raise _fail(number, "not a JSON object (a record)")
    kind = data.get("type")
    if kind == "header":
        model: type[Record] = HeaderRecord
    elif isinstance(kind, str) and kind in RECORD_KINDS:
        model = RECORD_KINDS[kind].model
    else:
        known = ", ".join(sorted(RECORD_KINDS))
        raise _fail(number, f"unknown record type {kind!r} (expected one of: {known})")
    try:
        return kind, model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise InvalidInput(
            f"line {number}: {kind} record: {where}: {first['msg']}",
            field=f"line {number}: {where}",
        ) from None


class _Spool:
    """The checked lines, in order: in memory up to `SPOOL_MEMORY_BYTES`, then on disk."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)

    def add(self, number: int, raw: bytes) -> None:
        self._file.write(b"%d\t" % number + raw.strip() + b"\n")

    def records(self) -> Iterator[tuple[int, str, Record]]:
        self._file.seek(0)
        for row in self._file:
            number, raw = row.split(b"\t", 1)
            kind, record = _parse(raw, int(number))
            yield int(number), kind, record

    def close(self) -> None:
        self._file.close()


async def _check_pass(state: ImportState, lines: AsyncIterator[bytes], spool: _Spool) -> None:
    number = 0
    seen_header = False
    async for raw in lines:
        number += 1
        if not raw.strip():
            continue
        kind, record = _parse(raw, number)
        if not seen_header:
            if not isinstance(record, HeaderRecord):
                raise InvalidInput(
                    "the first line must be an agentmem export header", field="line 1"
                )
            if record.version != VERSION:
                raise InvalidInput(
                    f"export version {record.version} is not supported (expected {VERSION})",
                    field=f"line {number}",
                )
            seen_header = True
            continue
        if isinstance(record, HeaderRecord):
            raise _fail(number, "a second header record")
        check = RECORD_KINDS[kind].check
        if check is not None:
            check(state, record, number)
        state.counts[kind] = state.counts.get(kind, 0) + 1
        spool.add(number, raw)
    if not seen_header:
        raise InvalidInput(
            "empty import: expected an agentmem export (first line a header record)",
            field="line 1",
        )
    for number, kind, ref in state.pending_refs:
        if ref not in state.runs:
            raise _fail(number, f"{kind} {ref!r} is not a run of this file")
    for agent_id in state.agents:
        state.agent_refs.pop(agent_id, None)


def _rename_taken(conn: Connection, state: ImportState) -> None:
    """Give threads, messages and runs whose ids are taken on this server ids of their own."""
    for kind, ids, prefix in (
        ("thread", state.threads, THREAD),
        ("message", state.messages, MESSAGE),
        ("run", state.runs, RUN),
    ):
        taken = conversations_sql.taken_ids(conn, kind, sorted(ids))
        if taken:
            state.renamed[kind] = {old: new_id(prefix) for old in sorted(taken)}


def _check_existing(conn: Connection, state: ImportState) -> None:
    """409 for an agent or block the tenant already has (its own keys: no other tenant's); 422
    for a thread or run of an agent neither the file nor the tenant has (as the REST routes
    answer 404 for one)."""
    for agent_id in sorted(state.agents):
        if conversations_sql.get_agent(conn, state.tenant_id, agent_id) is not None:
            raise Conflict(f"agent {agent_id!r} already exists here", field="agent")
    for agent_id, line in sorted(state.agent_refs.items(), key=lambda ref: ref[1]):
        if conversations_sql.get_agent(conn, state.tenant_id, agent_id) is None:
            raise _fail(
                line,
                f"agent {agent_id!r} is neither in this file nor an agent here: "
                "create it first, or add its agent record",
            )
    for block_type, agent_key in sorted(state.blocks):
        if blocks_sql.get_block(conn, state.tenant_id, block_type, agent_key) is not None:
            raise _block_conflict(block_type, agent_key)


def _block_conflict(block_type: str, agent_key: str) -> Conflict:
    where = f"agent {agent_key!r}" if agent_key else "user scope"
    return Conflict(f"a {block_type} block already exists here for {where}", field="block")


@dataclass
class _ArchivalWrite:
    scope: ScopeKey
    write_id: str


class Importer:
    def __init__(
        self,
        sql: SqlStore,
        memory: MemoryService,
        tenant_id: str,
        events: Optional[EventLog] = None,
    ):
        self._sql = sql
        self._memory = memory
        self._index = memory.archival_index
        self._quotas = memory.quotas
        self._events = events
        self.state = ImportState(tenant_id, memory.core_limit_chars, now_micros())
        if events is not None:
            self.state.event_cap_bytes = events.data_cap_bytes
            self.state.recorder = events.record
        self._writes: list[_ArchivalWrite] = []

    async def apply(self, lines: AsyncIterator[bytes]) -> dict[str, Any]:
        spool = _Spool()
        try:
            await _check_pass(self.state, lines, spool)
            await self._sql.run_autocommit(self._before_writing)
            tx_owns_undo = False
            try:
                await self._embed_pass(spool)
                async with self._sql.transaction() as tx:
                    tx.on_failure(self._undo_archival)
                    tx_owns_undo = True
                    await tx.run(self._write_pass, spool)
            except BaseException:
                if not tx_owns_undo:
                    await asyncio.shield(self._undo_archival())
                raise
            if self._events is not None and self.state.recorded:
                self._events.committed(self.state.tenant_id)
        finally:
            spool.close()
            if sum(self.state.archival_lines.values()) > 1000:
                schedule_trim()
        return {"counts": self.state.counts, "renamed": self.state.renamed}

    def _ensure_quotas(self, conn: Connection) -> None:
        if self._quotas is None:
            return
        core = sum(1 for block_type, _ in self.state.blocks if block_type == "core")
        lines = sum(self.state.archival_lines.values())
        for quota, adding in (("agents", len(self.state.agents)), ("core_blocks", core)):
            self._quotas.ensure_room_in(conn, self.state.tenant_id, quota, adding, field=quota)
        self._quotas.ensure_room_in(
            conn, self.state.tenant_id, "archival_lines", lines, field="archival_lines"
        )

    def _before_writing(self, conn: Connection) -> None:
        """Fail fast, before any embedding: conflicts and quotas (checked again when writing)."""
        _check_existing(conn, self.state)
        self._ensure_quotas(conn)

    def _archival_records(self, spool: _Spool) -> Iterator[tuple[ArchivalLinesRecord, int, int]]:
        """(record, first line, batch number) of each archival batch, in file order."""
        next_line: dict[str, int] = defaultdict(lambda: 1)
        batch = 0
        for _, _, record in spool.records():
            if isinstance(record, ArchivalLinesRecord):
                key = agent_key_of(record.agent_id)
                yield record, next_line[key], batch
                next_line[key] += len(record.lines)
                batch += 1

    async def _embed_pass(self, spool: _Spool) -> None:
        group: list[tuple[ArchivalLinesRecord, int, int]] = []
        size = 0
        for item in self._archival_records(spool):
            group.append(item)
            size += len(item[0].lines)
            if size >= EMBED_GROUP_LINES:
                await self._embed_group(group)
                group, size = [], 0
        if group:
            await self._embed_group(group)

    async def _embed_group(self, group: list[tuple[ArchivalLinesRecord, int, int]]) -> None:
        """Embed the group's batches together; store each scope's share as one write."""
        prepared = await asyncio.gather(*(self._index.prepare(r.lines) for r, _, _ in group))
        by_scope: dict[str, list[int]] = defaultdict(list)
        for k, (record, _, _) in enumerate(group):
            by_scope[agent_key_of(record.agent_id)].append(k)
        for agent_key, members in by_scope.items():
            first = group[members[0]][1]
            chunks: list[Chunk] = []
            vectors: list[np.ndarray] = []
            hashes: list[str] = []
            for k in members:
                shift = group[k][1] - first
                chunks.extend(
                    dataclass_replace(
                        c, start_line=c.start_line + shift, end_line=c.end_line + shift
                    )
                    for c in prepared[k].chunks
                )
                vectors.append(prepared[k].vectors)
                hashes.extend(prepared[k].text_hashes)
            # An import writes new blocks, whose index takes the format prepared (so no lines
            # are needed to prepare them again).
            combined = dataclass_replace(
                prepared[members[0]],
                chunks=chunks,
                vectors=np.concatenate(vectors),
                text_hashes=hashes,
                lines=None,
            )
            write = _ArchivalWrite(ScopeKey.from_agent_key(agent_key), new_write_id())
            await self._sql.run_autocommit(
                blocks_sql.begin_archival_write,
                write.write_id,
                self.state.tenant_id,
                agent_key,
                "append",
                now_micros(),
                self._memory.repair.process_id,
            )
            self._writes.append(write)
            ref = BlockRef.of(
                self.state.tenant_id, self.state.archival_block_id(agent_key), agent_key
            )
            await self._index.add(
                ref,
                combined,
                first_line=first,
                written_at=self.state.batch_written_at(group[members[-1]][2]),
                write_id=write.write_id,
            )

    async def _undo_archival(self) -> None:
        """Take back the archival rows of this import (its SQL side did not commit)."""
        ended = []
        for write in self._writes:
            try:
                await self._index.discard_write(self.state.tenant_id, write.scope, write.write_id)
                ended.append(write.write_id)
            except Exception:  # noqa: BLE001 - left in flight, the crash repair discards it
                pass
        if ended:
            await self._sql.run_autocommit(blocks_sql.end_archival_writes, ended)

    def _write_pass(self, conn: Connection, spool: _Spool) -> None:
        state = self.state
        _check_existing(conn, state)
        self._ensure_quotas(conn)
        _rename_taken(conn, state)
        state.archival_lines.clear()
        state.archival_batches = 0
        state.thread_seq.clear()
        state.events.clear()
        state.events_bytes = state.recorded = 0
        state.archival_updated.clear()
        state.thread_rows.clear()
        state.thread_messages = None
        for _, kind, record in spool.records():
            if kind != "message":
                state.end_messages(conn)
            RECORD_KINDS[kind].write(state, conn, record)
        state.end_messages(conn)
        blocks_sql.end_archival_writes(conn, [w.write_id for w in self._writes])
        # Last: recording holds the tenant's event counter locked until the commit.
        if state.recorder is not None:
            state.events.extend(state.closing_events())
            state.flush_events(conn)


async def import_records(
    sql: SqlStore,
    memory: MemoryService,
    tenant_id: str,
    lines: AsyncIterator[bytes],
    events: Optional[EventLog] = None,
) -> dict[str, Any]:
    """Import `lines` (an export) into the tenant, all or nothing: {"counts", "renamed"}. With
    `events`, the change feed gets what the import wrote, in its transaction."""
    return await Importer(sql, memory, tenant_id, events).apply(lines)


# ---- the record kinds ---------------------------------------------------------------------------


def _check_agent(state: ImportState, r: AgentRecord, line: int) -> None:
    if r.id in state.agents:
        raise _fail(line, f"agent {r.id!r} appears twice")
    state.agents.add(r.id)


@record_kind("agent", AgentRecord, check=_check_agent)
def _write_agent(state: ImportState, conn: Connection, r: AgentRecord) -> None:
    agent = conversations_sql.insert_agent(
        conn,
        state.tenant_id,
        r.id,
        instructions=r.instructions,
        model=r.model,
        metadata=r.metadata,
        now_us=now_micros(),
    )
    if agent is None:
        raise Conflict(f"agent {r.id!r} already exists here", field="agent")
    data = {"instructions": agent.instructions, "model": agent.model}
    state.emit(conn, agent_event("create", agent.id, data), len(r.instructions))


def _check_block(state: ImportState, r: BlockRecord, line: int) -> None:
    key = (r.block_type, agent_key_of(r.agent_id))
    if key in state.blocks:
        where = f"agent {r.agent_id!r}" if r.agent_id else "the user scope"
        raise _fail(line, f"a second {r.block_type} block for {where}")
    if r.block_type == "core":
        if r.content is None:
            raise _fail(line, "a core block record needs `content`")
        if len(r.content) > state.core_limit_chars:
            raise PayloadTooLarge(
                f"line {line}: core block content is {len(r.content)} characters; "
                f"the limit is {state.core_limit_chars}",
                field=f"line {line}: content",
                limit=state.core_limit_chars,
            )
    elif r.content is not None:
        raise _fail(line, "an archival block record carries its text in archival_lines records")
    state.blocks.add(key)


@record_kind("block", BlockRecord, check=_check_block)
def _write_block(state: ImportState, conn: Connection, r: BlockRecord) -> None:
    agent_key = agent_key_of(r.agent_id)
    if r.block_type == "core":
        content = r.content or ""
        row = blocks_sql.insert_block_if_missing(
            conn, state.tenant_id, "core", agent_key, content, count_lines(content), now_micros()
        )
    else:
        row = _create_archival_block(state, conn, agent_key)
    if row is None:
        raise _block_conflict(r.block_type, agent_key)
    if r.block_type == "core":
        data = {
            "updated_at": from_micros(row.updated_at).isoformat(),
            "line_count": row.line_count,
            "content": row.content,
        }
        state.emit(conn, block_event("core", "update", agent_key, data), len(row.content))


def _create_archival_block(
    state: ImportState, conn: Connection, agent_key: str
) -> Optional[blocks_sql.BlockRow]:
    state.archival_written.add(agent_key)
    return blocks_sql.insert_block_if_missing(
        conn,
        state.tenant_id,
        "archival",
        agent_key,
        "",
        0,
        state.started_us,
        block_id=state.archival_block_id(agent_key),
    )


def _check_archival_lines(state: ImportState, r: ArchivalLinesRecord, line: int) -> None:
    agent_key = agent_key_of(r.agent_id)
    # Lines without a block record create the block.
    state.blocks.add(("archival", agent_key))
    state.archival_lines[agent_key] += len(r.lines)
    if state.archival_lines[agent_key] > MAX_LINE_NUMBER:
        raise _fail(line, f"a block holds at most {MAX_LINE_NUMBER} lines")


@record_kind("archival_lines", ArchivalLinesRecord, check=_check_archival_lines)
def _write_archival_lines(state: ImportState, conn: Connection, r: ArchivalLinesRecord) -> None:
    agent_key = agent_key_of(r.agent_id)
    if agent_key not in state.archival_written:
        if _create_archival_block(state, conn, agent_key) is None:
            raise _block_conflict("archival", agent_key)
    block_id = state.archival_block_id(agent_key)
    first = state.archival_lines[agent_key] + 1
    written_at = state.batch_written_at(state.archival_batches)
    state.archival_batches += 1
    state.archival_lines[agent_key] += len(r.lines)
    blocks_sql.insert_lines(conn, block_id, first, r.lines, written_at)
    blocks_sql.set_archival_size(conn, block_id, state.archival_lines[agent_key], written_at)
    state.archival_updated[agent_key] = written_at


def _check_thread(state: ImportState, r: ThreadRecord, line: int) -> None:
    if r.id in state.threads:
        raise _fail(line, f"thread {r.id!r} appears twice")
    state.threads[r.id] = r.agent_id or ""
    if r.agent_id:
        state.agent_refs.setdefault(r.agent_id, line)


@record_kind("thread", ThreadRecord, check=_check_thread)
def _write_thread(state: ImportState, conn: Connection, r: ThreadRecord) -> None:
    thread_id = state.new_id("thread", r.id)
    created = conversations_sql.insert_thread_if_missing(
        conn,
        thread_id=thread_id,
        tenant_id=state.tenant_id,
        agent_id=r.agent_id or threads_sql.NO_AGENT,
        created_at=r.created_at,
        title=r.title,
        metadata=r.metadata,
        updated_at=r.updated_at,
    )
    if not created:  # taken since the ids were checked, in this same transaction: a race
        raise Conflict("a thread id was taken while importing; retry the import", field="thread")
    row = ThreadRow(
        thread_id,
        state.tenant_id,
        r.agent_id or threads_sql.NO_AGENT,
        r.created_at,
        r.title,
        r.metadata,
        r.created_at if r.updated_at is None else r.updated_at,
    )
    state.thread_rows[thread_id] = row
    event = thread_event("create", thread_id, row.agent_id, thread_data(row))
    state.emit(conn, event, len(json.dumps(r.metadata)) + len(r.title or ""))


def _check_message(state: ImportState, r: MessageRecord, line: int) -> None:
    if r.thread_id not in state.threads:
        raise _fail(line, f"message {r.id!r} names thread {r.thread_id!r}, not a thread above it")
    if r.id in state.messages:
        raise _fail(line, f"message {r.id!r} appears twice")
    if r.seq <= state.thread_seq.get(r.thread_id, 0):
        raise _fail(line, f"message seq {r.seq} does not follow the thread's previous message")
    state.thread_seq[r.thread_id] = r.seq
    state.messages.add(r.id)
    if r.run_id is not None:
        state.pending_refs.append((line, "run_id", r.run_id))


@record_kind("message", MessageRecord, check=_check_message)
def _write_message(state: ImportState, conn: Connection, r: MessageRecord) -> None:
    seq = state.thread_seq.get(r.thread_id, 0) + 1
    state.thread_seq[r.thread_id] = seq
    message_id = state.new_id("message", r.id)
    thread_id = state.new_id("thread", r.thread_id)
    added = state.messages_into(conn, thread_id)
    added.add(message_id, r.role, r.kind, r.content, state.event_cap_bytes)
    conversations_sql.insert_message(
        conn,
        state.tenant_id,
        conversations_sql.MessageRow(
            id=message_id,
            thread_id=thread_id,
            seq=seq,
            role=r.role,
            content=r.content,
            run_id=state.new_id("run", r.run_id) if r.run_id else None,
            created_at=r.created_at,
            kind=r.kind,
        ),
    )


def _check_run(state: ImportState, r: RunLineRecord, line: int) -> None:
    if r.id in state.runs:
        raise _fail(line, f"run {r.id!r} appears twice")
    if r.thread_id not in state.threads:
        raise _fail(line, f"run {r.id!r} names thread {r.thread_id!r}, not a thread above it")
    try:
        # What `runs.get` and `runs.replay` will read back must read back.
        record = RunRecord.from_json(r.record)
        record.to_run(created_at=from_micros(r.created_at), replay_of=None)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"line {line}: run record: record.{where}: {first['msg']}",
            field=f"line {line}: record.{where}",
        ) from None
    if (record.id, record.agent_id, record.thread_id) != (r.id, r.agent_id, r.thread_id):
        raise _fail(line, "the run's record names another run, agent or thread than its line")
    if state.threads[r.thread_id] != r.agent_id:
        # Runs refuse another agent's thread, and a thread with runs is bound to their agent.
        raise _fail(line, f"run {r.id!r} of agent {r.agent_id!r} is in a thread not of that agent")
    state.runs.add(r.id)
    state.agent_refs.setdefault(r.agent_id, line)
    if r.replay_of is not None:
        state.pending_refs.append((line, "replay_of", r.replay_of))


@record_kind("run", RunLineRecord, check=_check_run)
def _write_run(state: ImportState, conn: Connection, r: RunLineRecord) -> None:
    run_id = state.new_id("run", r.id)
    thread_id = state.new_id("thread", r.thread_id)
    replay_of = state.new_id("run", r.replay_of) if r.replay_of else None
    record = {**r.record, "id": run_id, "thread_id": thread_id}
    if "replay_of" in record:
        record["replay_of"] = replay_of
    conversations_sql.insert_run(
        conn,
        tenant_id=state.tenant_id,
        agent_id=r.agent_id,
        thread_id=thread_id,
        run_id=run_id,
        created_us=r.created_at,
        replay_of=replay_of,
        record=record,
    )


class StateRecord(Record):
    type: Literal["state"]
    namespace: list[str] = Field(max_length=8)
    key: StateKey
    value: StateValue
    created_at: Micros
    updated_at: Micros
    expires_at: Optional[Micros] = None


def _check_state(state: ImportState, r: StateRecord, line: int) -> None:
    problem = namespace_problem(r.namespace)
    if problem is not None:
        raise _fail(line, f"state namespace {problem}")
    size = len(json.dumps(r.value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > STATE_IMPORT_VALUE_MAX_BYTES:
        raise PayloadTooLarge(
            f"line {line}: state value is {size} bytes; the limit is "
            f"{STATE_IMPORT_VALUE_MAX_BYTES}",
            field=f"line {line}: value",
            limit=STATE_IMPORT_VALUE_MAX_BYTES,
        )
    where = (encode_namespace(r.namespace), r.key)
    if where in state.state_keys:
        raise _fail(line, f"state entry {r.key!r} in {r.namespace!r} appears twice")
    state.state_keys.add(where)


STATE_IMPORT_VALUE_MAX_BYTES = 64 * 1024
"""The default `AGENTMEM_STATE_VALUE_MAX_BYTES`: an imported value is held to it."""


@record_kind("state", StateRecord, check=_check_state)
def _write_state(state: ImportState, conn: Connection, r: StateRecord) -> None:
    now = now_micros()
    if r.expires_at is not None and r.expires_at <= now:
        return  # expired since it was exported: as if it were not there
    namespace = encode_namespace(r.namespace)
    size = len(json.dumps(r.value, separators=(",", ":"), ensure_ascii=False).encode())
    state_sql.lock_tenant(conn, state.tenant_id)
    old = state_sql.stored_size(conn, state.tenant_id, namespace, r.key)
    row = state_sql.StateRow(
        namespace, r.key, r.value, size, r.created_at, r.updated_at, r.expires_at
    )
    if not state_sql.import_entry(conn, state.tenant_id, row, now):
        raise Conflict(
            f"state entry {r.key!r} in namespace {r.namespace!r} already exists here",
            field="state",
        )
    more_rows, more_bytes = (1, size) if old is None else (0, size - old)
    state_sql.add_usage(conn, state.tenant_id, more_rows, more_bytes)
    data = {
        "value": r.value,
        "updated_at": from_micros(r.updated_at).isoformat(),
        "expires_at": from_micros(r.expires_at).isoformat() if r.expires_at else None,
    }
    state.emit(conn, state_event("set", namespace, r.key, data), size)


__all__ = [
    "RECORD_KINDS",
    "ImportState",
    "Record",
    "import_records",
    "record_kind",
]
