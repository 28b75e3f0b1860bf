"""The change feed: every write's event in the tenant's log, pages of it, live streams, history.

    seq = events.record(conn, tenant_id, NewEvent("core", "update", "core", data=...))  # in a tx
    events.committed(tenant_id)                          # after the commit: wake live streams
    page = await events.list(tenant_id, after=0, limit=100, filter=EventFilter())
    async for item in events.stream(tenant_id, after=41, filter=...): ...   # see `EventHub`

The log is SQL (`storage/sql/events.py`): a write and its event commit or roll back together.
Live delivery is a per-process `EventHub`: one reader per tenant with open streams reads new
events once and hands them to every stream of that tenant, so N streams cost N small queues and
no per-stream polling. What wakes a reader: a commit in this process (at once), a PostgreSQL
NOTIFY from another replica's commit (milliseconds), and a slow poll of the tenants' log heads
(`events_poll_s`), which also covers a notification lost while the listener reconnected.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Optional, Union

from sqlalchemy import Connection

from agentmem.types import EventPage, MemoryEvent

from ..errors import Gone, InvalidInput
from ..storage.base import from_micros, now_micros
from ..storage.sql import events as events_sql
from ..storage.sql.events import EventFilter, EventRow, NewEvent

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore

log = logging.getLogger("agentmem.events")

MAX_PAGE = 1000
"""Most events one page of `GET /v1/events` returns."""
SCAN_WINDOW = 10_000
"""Seqs one query of a page looks through."""
MAX_SCAN = 100_000
"""Seqs one page looks through at most: a filter matching few events still answers promptly."""
PUMP_BATCH = 500
"""Events a tenant's reader fetches per query."""

__all__ = [
    "EventFilter",
    "EventHub",
    "EventLog",
    "Heartbeat",
    "NewEvent",
    "Overflow",
    "Ready",
    "StreamItem",
    "Subscription",
    "to_model",
]


def to_model(row: EventRow) -> MemoryEvent:
    stored = row.data if isinstance(row.data, dict) else {}
    updated_at = stored.get("updated_at")
    # State events carry the value itself as `data` (seed 002's `event.data`); the log keeps it
    # beside the entry's times.
    data = stored.get("value") if row.kind == "state" else row.data
    return MemoryEvent(
        updated_at=datetime.fromisoformat(updated_at) if isinstance(updated_at, str) else None,
        seq=row.seq,
        at=from_micros(row.at),
        kind=row.kind,
        action=row.action,
        namespace=list(row.namespace),
        scope=row.scope,  # type: ignore[arg-type]
        agent_id=row.agent_id,
        key=row.key,
        data=data,
        truncated=row.truncated,
    )


def check_after(after: int, bounds: events_sql.LogBounds) -> None:
    """410 when events after `after` were removed by retention (the caller would miss them)."""
    if after < bounds.pruned_through:
        raise Gone(
            f"events up to seq {bounds.pruned_through} were removed by retention; the oldest "
            f"kept is {bounds.pruned_through + 1}: resume from there (after="
            f"{bounds.pruned_through}) or re-read current state",
            field="after",
            oldest_seq=bounds.pruned_through + 1,
        )


# ---- live streams -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """First item of a stream: it delivers events after `after`."""

    after: int


@dataclass(frozen=True)
class Heartbeat:
    """Nothing happened for a while; the connection is alive."""


@dataclass(frozen=True)
class Overflow:
    """The subscriber fell too far behind: the stream ends; resume after `resume_after`."""

    resume_after: int


StreamItem = Union[Ready, MemoryEvent, Heartbeat, Overflow]


class Subscription:
    """One open stream's place in its tenant's channel: a bounded queue and a wake-up."""

    def __init__(self, tenant_id: str, filter: EventFilter, limit: int):
        self.tenant_id = tenant_id
        self.filter = filter
        self.limit = limit
        self.pending: deque[MemoryEvent] = deque()
        self.ready = asyncio.Event()
        self.overflowed = False
        self.catching_up = True
        """While the stream reads its backlog from SQL, live events are not queued: the
        backlog reads cover them (see `EventHub.stream`)."""

    def deliver(self, row: EventRow, event: MemoryEvent) -> None:
        if self.catching_up or self.overflowed or not self.filter.matches(row):
            return
        if len(self.pending) >= self.limit:
            self.overflowed = True
            self.pending.clear()
        else:
            self.pending.append(event)
        self.ready.set()


class _Channel:
    """A tenant's open streams and the one reader that feeds them."""

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.subs: set[Subscription] = set()
        self.cursor = 0
        self.wake = asyncio.Event()
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: Optional[asyncio.Task[None]] = None


class EventHub:
    """Fans each tenant's new events out to its open streams (one per process)."""

    def __init__(
        self,
        log_: EventLog,
        *,
        queue_size: int,
        heartbeat_s: float,
        poll_s: float,
        listen_url: Optional[str] = None,
    ):
        self._log = log_
        self._sql = log_.sql
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self._listen_url = listen_url
        self._channels: dict[str, _Channel] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.listening = False
        """True while a PostgreSQL LISTEN connection is up (cross-replica wake-ups in ms)."""

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll(), name="agentmem-events-poll"))
        if self._listen_url is not None:
            self._tasks.append(loop.create_task(self._listen(), name="agentmem-events-listen"))

    def end_streams(self) -> None:
        """Make every open stream end now (server shutdown): uvicorn waits for open responses
        before it runs the lifespan's shutdown."""
        self._closing.set()
        for channel in self._channels.values():
            for sub in channel.subs:
                sub.ready.set()

    async def close(self) -> None:
        self.end_streams()
        tasks = self._tasks + [c.task for c in self._channels.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def stats(self) -> dict[str, int]:
        """Open channels (tenants with streams), streams, and events queued in all of them.
        Callable from any thread: `list()` copies a dict's values or a set in one step."""
        channels = list(self._channels.values())
        subs = [s for c in channels for s in list(c.subs)]
        return {
            "channels": len(channels),
            "streams": len(subs),
            "queued": sum(len(s.pending) for s in subs),
            "readers": sum(1 for c in channels if c.task and not c.task.done()),
        }

    # ---- waking -----------------------------------------------------------------------------

    def wake(self, tenant_id: str) -> None:
        channel = self._channels.get(tenant_id)
        if channel is not None:
            channel.wake.set()

    def wake_all(self) -> None:
        for channel in self._channels.values():
            channel.wake.set()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if not self._channels:
                continue
            try:
                heads = await self._sql.run_autocommit(events_sql.heads, list(self._channels))
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("polling the event log heads failed")
                continue
            for tenant_id, head in heads.items():
                channel = self._channels.get(tenant_id)
                if channel is not None and head > channel.cursor:
                    channel.wake.set()

    async def _listen(self) -> None:
        import psycopg

        assert self._listen_url is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._listen_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {events_sql.NOTIFY_CHANNEL}")
                    self.listening = True
                    self.wake_all()  # whatever was sent while we were not listening
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; the poll covers the gap
                log.warning("event listener connection lost (%s); reconnecting", exc)
            finally:
                self.listening = False
            await asyncio.sleep(1.0)

    # ---- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, tenant_id: str, filter: EventFilter) -> Subscription:
        sub = Subscription(tenant_id, filter, self.queue_size)
        channel = self._channels.get(tenant_id)
        if channel is None:
            channel = self._channels[tenant_id] = _Channel(tenant_id)
            channel.subs.add(sub)
            try:
                bounds = await self._sql.run_autocommit(events_sql.log_bounds, tenant_id)
            except BaseException as exc:
                self._drop(sub)
                if not channel.started.done():
                    channel.started.set_exception(exc)
                    channel.started.exception()  # retrieved: later waiters get their own
                raise
            channel.cursor = bounds.last_seq
            channel.task = asyncio.get_running_loop().create_task(
                self._pump(channel), name=f"agentmem-events-{tenant_id}"
            )
            channel.started.set_result(None)
        else:
            channel.subs.add(sub)
            try:
                await asyncio.shield(channel.started)
            except BaseException:
                self._drop(sub)
                raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        channel = self._channels.get(sub.tenant_id)
        if channel is None:
            return
        channel.subs.discard(sub)
        if not channel.subs:
            del self._channels[sub.tenant_id]
            if channel.task is not None:
                channel.task.cancel()

    async def _pump(self, channel: _Channel) -> None:
        while True:
            await channel.wake.wait()
            channel.wake.clear()
            try:
                while True:
                    rows = await self._sql.run_autocommit(
                        events_sql.read_events,
                        channel.tenant_id,
                        after=channel.cursor,
                        through=2**62,
                        limit=PUMP_BATCH,
                    )
                    for row in rows:
                        event = to_model(row)
                        for sub in list(channel.subs):
                            sub.deliver(row, event)
                    if rows:
                        channel.cursor = rows[-1].seq
                    if len(rows) < PUMP_BATCH:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next wake-up (or poll) reads again
                log.exception("reading new events for tenant %s failed", channel.tenant_id)

    async def stream(
        self, tenant_id: str, *, after: Optional[int], filter: EventFilter
    ) -> AsyncIterator[StreamItem]:
        """`Ready`, then every matching event after `after` (None: from now) in seq order,
        with `Heartbeat`s when idle; ends with `Overflow` if the reader falls behind by more
        than `queue_size` events, or quietly at shutdown."""
        sub = await self.subscribe(tenant_id, filter)
        try:
            bounds = await self._sql.run_autocommit(events_sql.log_bounds, tenant_id)
            if after is None:
                after = bounds.last_seq
            else:
                check_after(after, bounds)
            yield Ready(after)
            last = after
            # The backlog, from SQL, while live events are not queued; then once more after
            # queueing starts, for events handed out between the last read and that moment.
            for final in (False, True):
                if final:
                    sub.catching_up = False
                while True:
                    page = await self._log.list(
                        tenant_id, after=last, limit=MAX_PAGE, filter=filter
                    )
                    for event in page.events:
                        yield event
                    last = page.next_after
                    if not page.has_more:
                        break
            while True:
                if not sub.pending and not sub.overflowed:
                    try:
                        await asyncio.wait_for(sub.ready.wait(), self.heartbeat_s)
                    except TimeoutError:
                        yield Heartbeat()
                        continue
                sub.ready.clear()
                if self._closing.is_set():
                    return
                if sub.overflowed:
                    yield Overflow(last)
                    return
                while sub.pending:
                    event = sub.pending.popleft()
                    if event.seq > last:
                        last = event.seq
                        yield event
        finally:
            self.unsubscribe(sub)


# ---- the log ----------------------------------------------------------------------------------


class EventLog:
    """Records events inside writes' transactions and reads the log back."""

    def __init__(self, sql: SqlStore, *, data_cap_bytes: int = 64 * 1024):
        self.sql = sql
        self.data_cap_bytes = data_cap_bytes
        self.hub: Optional[EventHub] = None
        """Set when the server streams events; `committed` wakes it."""

    def record(self, conn: Connection, tenant_id: str, event: NewEvent) -> int:
        """Append `event` in the transaction `conn` is in (call it as the transaction's last
        step: the tenant's counter stays locked until the commit). Returns its seq."""
        return events_sql.append_event(
            conn, tenant_id, event, at_us=now_micros(), data_cap_bytes=self.data_cap_bytes
        )

    def committed(self, tenant_id: str) -> None:
        """A transaction that recorded events for the tenant committed: wake its streams."""
        if self.hub is not None:
            self.hub.wake(tenant_id)

    async def list(
        self, tenant_id: str, *, after: int, limit: int, filter: EventFilter
    ) -> EventPage:
        if after < 0:
            raise InvalidInput("after must be >= 0", field="after", limit=0)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_PAGE}, not {limit}",
                field="limit",
                limit=MAX_PAGE,
            )

        def read(conn: Connection) -> EventPage:
            bounds = events_sql.log_bounds(conn, tenant_id)
            check_after(after, bounds)
            # Everything up to `last_seq` has committed (seqs commit in order), so a page never
            # steps over an event that commits later.
            head = bounds.last_seq
            found: list[MemoryEvent] = []
            cursor = after
            while cursor < head and len(found) < limit:
                through = min(head, cursor + SCAN_WINDOW)
                want = limit - len(found)
                rows = events_sql.read_events(
                    conn,
                    tenant_id,
                    after=cursor,
                    through=through,
                    limit=want,
                    filter=filter,
                )
                found.extend(to_model(r) for r in rows if filter.matches(r))
                # A full batch may stop short of `through`: go on after its last row.
                cursor = rows[-1].seq if len(rows) == want else through
                if cursor - after >= MAX_SCAN:
                    break
            return EventPage(events=found, next_after=cursor, has_more=cursor < head)

        return await self.sql.run_autocommit(read)

    async def history(
        self,
        tenant_id: str,
        *,
        kinds: tuple[str, ...],
        key: str,
        namespace: tuple[str, ...],
        limit: int,
    ) -> builtins.list[EventRow]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_PAGE}, not {limit}",
                field="limit",
                limit=MAX_PAGE,
            )
        return await self.sql.run_autocommit(
            events_sql.read_history,
            tenant_id,
            kinds=kinds,
            key=key,
            namespace=namespace,
            limit=limit,
        )

    async def prune(self, retention_s: float) -> int:
        """Remove events older than `retention_s` (every tenant); returns how many went."""
        cutoff = now_micros() - int(retention_s * 1_000_000)
        return await self.sql.run_in_transaction(events_sql.prune_before, cutoff)
