"""SQL for the change feed: append an event inside a write's transaction, read pages of the log.

    seq = append_event(conn, tenant_id, NewEvent("core", "update", "core", data={...}), ...)
    rows = read_events(conn, tenant_id, after=41, limit=100, filter=EventFilter(kinds=("core",)))

`append_event` bumps the tenant's counter row (an upsert whose row lock lasts to the commit), so
per tenant, events commit in `seq` order and no two writers ever take the same number, across
replicas too. Call it as the last step of a transaction: the lock is held from there to COMMIT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Optional

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite

from .schema import event_counters, memory_events

NOTIFY_CHANNEL = "agentmem_events"
"""PostgreSQL NOTIFY channel: the payload is the tenant id, sent when its write commits."""

CAPPED_FIELDS = ("value", "content", "messages")
"""The fields of `data` left out (and `truncated` set) when the event would pass the cap."""


@dataclass(frozen=True)
class NewEvent:
    kind: str
    action: str
    key: str
    namespace: tuple[str, ...] = ()
    scope: Optional[str] = None
    agent_id: Optional[str] = None
    data: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class EventRow:
    tenant_id: str
    seq: int
    at: int
    kind: str
    action: str
    namespace: tuple[str, ...]
    scope: Optional[str]
    agent_id: Optional[str]
    key: str
    data: Optional[dict[str, Any]]
    truncated: bool


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants. Empty means any."""

    kinds: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    """Shell globs (`fnmatch`, case-sensitive) on `key`; an event matching any one passes."""
    namespace: tuple[str, ...] = ()
    """A namespace prefix: `("agent",)` passes every agent's events."""
    _like: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_like", tuple(glob_to_like(p) for p in self.patterns))

    def matches(self, row: EventRow) -> bool:
        if self.kinds and row.kind not in self.kinds:
            return False
        if self.namespace and row.namespace[: len(self.namespace)] != self.namespace:
            return False
        # A namespace cleared concerns every key in it: patterns pass it.
        if self.patterns and is_clear(row.kind, row.action):
            return True
        return not self.patterns or any(fnmatchcase(row.key, p) for p in self.patterns)

    def where(self) -> list[ColumnElement[bool]]:
        """SQL conditions passing at least what `matches` passes (LIKE stands in for globs:
        case-insensitive on SQLite, one character for a `[...]` class); `matches` decides."""
        conditions: list[ColumnElement[bool]] = []
        if self.kinds:
            conditions.append(memory_events.c.kind.in_(self.kinds))
        if self.namespace:
            prefix = encode_namespace(self.namespace)
            conditions.append(func.substr(memory_events.c.namespace, 1, len(prefix)) == prefix)
        if self._like:
            clear = and_(memory_events.c.kind == "state", memory_events.c.action == "clear")
            likes = (memory_events.c.key.like(p, escape="\\") for p in self._like)
            conditions.append(or_(clear, *likes))
        return conditions


def is_clear(kind: str, action: str) -> bool:
    """A state `clear`: every key of its namespace went (its own `key` is empty)."""
    return kind == "state" and action == "clear"


def encode_namespace(namespace: Sequence[str]) -> str:
    return "".join(f"{segment}/" for segment in namespace)


def decode_namespace(encoded: str) -> tuple[str, ...]:
    return tuple(encoded.split("/")[:-1]) if encoded else ()


def glob_to_like(pattern: str) -> str:
    """A LIKE pattern (escape `\\`) matching every string the glob matches, maybe more."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c == "[" and (end := _class_end(pattern, i)) is not None:
            out.append("_")
            i = end
        elif c in "%_\\":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> Optional[int]:
    """Index of the `]` closing the class opened at `start`, as fnmatch reads it; None if open."""
    j = start + 1
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    end = pattern.find("]", j)
    return end if end >= 0 else None


def _encode_data(data: Optional[dict[str, Any]], cap_bytes: int) -> tuple[Optional[str], bool]:
    if data is None:
        return None, False
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode()) <= cap_bytes:
        return encoded, False
    kept = {k: v for k, v in data.items() if k not in CAPPED_FIELDS}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")), True


def append_event(
    conn: Connection, tenant_id: str, event: NewEvent, *, at_us: int, data_cap_bytes: int
) -> int:
    """Record `event` in the caller's transaction; returns its `seq`."""
    data, truncated = _encode_data(event.data, data_cap_bytes)
    values = {
        "tenant_id": tenant_id,
        "at": at_us,
        "kind": event.kind,
        "action": event.action,
        "namespace": encode_namespace(event.namespace),
        "scope": event.scope,
        "agent_id": event.agent_id,
        "key": event.key,
        "data": data,
        "truncated": truncated,
    }
    if conn.dialect.name == "postgresql":
        # One round trip instead of three (a core write's whole cost is a few of them).
        return int(conn.execute(_PG_APPEND, {**values, "channel": NOTIFY_CHANNEL}).scalar_one())
    bump = {"tenant_id": tenant_id, "last_seq": 1, "pruned_through": 0}
    seq = int(conn.execute(_SQLITE_BUMP, bump).scalar_one())
    conn.execute(_INSERT_EVENT, {"seq": seq, **values})
    return seq


# Built once: SQLAlchemy then takes them from its compiled cache without building a statement
# tree per write (storage/sql/blocks.py says what that saves). Values come as parameters.
_SQLITE_BUMP = (
    sqlite.insert(event_counters)
    .on_conflict_do_update(
        index_elements=["tenant_id"], set_={"last_seq": event_counters.c.last_seq + 1}
    )
    .returning(event_counters.c.last_seq)
)
_INSERT_EVENT = insert(memory_events)


# The counter bump, the event and the notification in one statement. NOTIFY is delivered to every
# listening replica when (and only if) the transaction commits.
_PG_APPEND = text(
    """
    WITH bumped AS (
        INSERT INTO event_counters (tenant_id, last_seq, pruned_through)
        VALUES (:tenant_id, 1, 0)
        ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_counters.last_seq + 1
        RETURNING last_seq
    ), added AS (
        INSERT INTO memory_events
            (tenant_id, seq, at, kind, action, namespace, scope, agent_id, key, data, truncated)
        SELECT :tenant_id, bumped.last_seq, CAST(:at AS BIGINT), :kind, :action, :namespace,
               CAST(:scope AS VARCHAR), CAST(:agent_id AS VARCHAR), :key, CAST(:data AS TEXT),
               CAST(:truncated AS BOOLEAN)
        FROM bumped
        RETURNING seq
    )
    SELECT added.seq, pg_notify(:channel, :tenant_id) FROM added
    """
)


def _row(r: Any) -> EventRow:
    return EventRow(
        tenant_id=r.tenant_id,
        seq=r.seq,
        at=r.at,
        kind=r.kind,
        action=r.action,
        namespace=decode_namespace(r.namespace),
        scope=r.scope,
        agent_id=r.agent_id,
        key=r.key,
        data=json.loads(r.data) if r.data is not None else None,
        truncated=bool(r.truncated),
    )


@dataclass(frozen=True)
class LogBounds:
    last_seq: int
    """The newest committed seq (0 for an empty log)."""
    pruned_through: int
    """Retention removed every event up to this seq."""


def log_bounds(conn: Connection, tenant_id: str) -> LogBounds:
    r = conn.execute(
        select(event_counters.c.last_seq, event_counters.c.pruned_through).where(
            event_counters.c.tenant_id == tenant_id
        )
    ).first()
    return LogBounds(r.last_seq, r.pruned_through) if r else LogBounds(0, 0)


def heads(conn: Connection, tenant_ids: Sequence[str]) -> dict[str, int]:
    """The newest seq of each tenant that has one."""
    rows = conn.execute(
        select(event_counters.c.tenant_id, event_counters.c.last_seq).where(
            event_counters.c.tenant_id.in_(list(tenant_ids))
        )
    ).all()
    return {r.tenant_id: int(r.last_seq) for r in rows}


def read_events(
    conn: Connection,
    tenant_id: str,
    *,
    after: int,
    through: int,
    limit: int,
    filter: EventFilter = EventFilter(),
) -> list[EventRow]:
    """Up to `limit` events with `after < seq <= through` passing the filter's SQL conditions,
    in seq order (callers apply `filter.matches` for the exact answer)."""
    stmt = (
        select(memory_events)
        .where(
            memory_events.c.tenant_id == tenant_id,
            memory_events.c.seq > after,
            memory_events.c.seq <= through,
            *filter.where(),
        )
        .order_by(memory_events.c.seq)
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(stmt).all()]


def read_history(
    conn: Connection,
    tenant_id: str,
    *,
    kinds: Sequence[str],
    key: str,
    namespace: Sequence[str],
    limit: int,
    before: Optional[int] = None,
) -> list[EventRow]:
    """The newest `limit` events of one key in one namespace, newest first (for state, with
    the clears of that namespace)."""
    same_key = memory_events.c.key == key
    if "state" in kinds:  # a clear of the namespace ended the entry too
        same_key = or_(same_key, memory_events.c.action == "clear")
    conditions = [
        memory_events.c.tenant_id == tenant_id,
        same_key,
        memory_events.c.kind.in_(list(kinds)),
        memory_events.c.namespace == encode_namespace(namespace),
    ]
    if before is not None:
        conditions.append(memory_events.c.seq < before)
    stmt = (
        select(memory_events)
        .where(and_(*conditions))
        .order_by(memory_events.c.seq.desc())
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(stmt).all()]


def prune_before(conn: Connection, cutoff_us: int) -> int:
    """Delete every tenant's events written before `cutoff_us`, oldest first by seq: each
    tenant loses a prefix of its log (up to its newest event older than the cutoff), and
    `pruned_through` records where that prefix ends. Returns how many events went."""
    ends = conn.execute(
        select(memory_events.c.tenant_id, func.max(memory_events.c.seq).label("upto"))
        .where(memory_events.c.at < cutoff_us)
        .group_by(memory_events.c.tenant_id)
    ).all()
    removed = 0
    for tenant_id, upto in ends:
        gone = conn.execute(
            delete(memory_events).where(
                memory_events.c.tenant_id == tenant_id, memory_events.c.seq <= upto
            )
        )
        removed += max(gone.rowcount, 0)
        conn.execute(
            update(event_counters)
            .where(event_counters.c.tenant_id == tenant_id)
            .values(pruned_through=func.max(event_counters.c.pruned_through, upto))
            if conn.dialect.name == "sqlite"
            else update(event_counters)
            .where(event_counters.c.tenant_id == tenant_id)
            .values(pruned_through=func.greatest(event_counters.c.pruned_through, upto))
        )
    return removed
