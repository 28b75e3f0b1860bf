"""Keyed state (DESIGN §10): exact JSON values under `(namespace, key)`, per tenant.

Each write path is one method running one SQL function in one transaction (`_write_*`,
`delete`, `clear`, ...): anything that must commit with a write (a change-feed event) goes
into that function, on the same connection.

Time comes from `clock` (UTC microseconds), so tests can stand exactly at an expiry.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import Connection

from agentmem.types.state import (
    NAMESPACE_MAX_SEGMENTS,
    STATE_KEY_MAX_LENGTH,
    STATE_LIST_MAX,
    TTL_MAX_S,
    StateEntry,
    StateList,
    StateListItem,
    decode_namespace,
    encode_namespace,
    key_problem,
    namespace_problem,
)

from ..errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from ..storage.base import from_micros, now_micros, to_micros
from ..storage.sql import state as state_sql
from ..storage.sql.events import NewEvent
from ..storage.sql.store import SqlStore

if TYPE_CHECKING:
    from .events import EventLog
    from .limits import Quotas

Namespace = tuple[str, ...]

DEFAULT_VALUE_MAX_BYTES = 64 * 1024
SWEEP_BATCH = 1000
"""Rows one sweep statement removes at most, so no sweep holds the write lock for long."""


def check_namespace(namespace: Sequence[str], field: str = "namespace") -> Namespace:
    problem = namespace_problem(list(namespace))
    if problem is not None:
        limit = NAMESPACE_MAX_SEGMENTS if "segments;" in problem else None
        raise InvalidInput(f"{field} {problem}", field=field, limit=limit)
    return tuple(namespace)


def check_key(key: str, field: str = "key") -> str:
    problem = key_problem(key)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}", field=field, limit=STATE_KEY_MAX_LENGTH)
    return key


def parse_namespace(text: str, field: str = "namespace") -> Namespace:
    """A namespace from its URL form (`session/u1`; `""` is the root)."""
    return check_namespace(text.split("/") if text else (), field)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "cursor is not one a list answer gave (pass next_cursor as is)", field="cursor"
        ) from None
    if key_problem(key) is not None:
        raise InvalidInput("cursor is not one a list answer gave", field="cursor")
    return key


def to_entry(row: state_sql.StateRow) -> StateEntry:
    return StateEntry(
        namespace=row.namespace.split("/") if row.namespace else [],
        key=row.key,
        value=row.value,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
        expires_at=from_micros(row.expires_at) if row.expires_at is not None else None,
    )


def lookup_chain(
    *,
    workflow_id: Optional[str] = None,
    session_id: Optional[str] = None,
    agent_id: Optional[str] = None,
) -> list[Namespace]:
    """The namespaces a lookup searches, most specific first: workflow, session, agent, tenant
    (only the levels whose id is given, and always the tenant)."""
    chain: list[Namespace] = []
    for level, ident in (("workflow", workflow_id), ("session", session_id), ("agent", agent_id)):
        if ident is not None:
            chain.append(check_namespace((level, ident), f"{level}_id"))
    chain.append(())
    return chain


@dataclass(frozen=True)
class _Write:
    """A validated write: what every write path stores."""

    namespace: str
    key: str
    value: Any
    value_bytes: int
    expires_at: Optional[int]
    now: int


class StateService:
    def __init__(
        self,
        sql: SqlStore,
        *,
        value_max_bytes: int = DEFAULT_VALUE_MAX_BYTES,
        quotas: Optional[Quotas] = None,
        clock: Callable[[], int] = now_micros,
        events: Optional[EventLog] = None,
    ):
        self._sql = sql
        self.value_max_bytes = value_max_bytes
        self._quotas = quotas
        self._events = events
        """The change feed: each write records its event in the write's own transaction."""
        self.clock = clock
        """UTC microseconds now; replaced by tests to stand at an expiry."""

    # ---- reads ------------------------------------------------------------------------------

    async def get(self, tenant_id: str, namespace: Sequence[str], key: str) -> StateEntry:
        ns = encode_namespace(check_namespace(namespace))
        row = await self._sql.run_autocommit(
            state_sql.get_entry, tenant_id, ns, check_key(key), self.clock()
        )
        if row is None:
            raise NotFound(f"no state entry {key!r} in namespace {_show(namespace)}")
        return to_entry(row)

    async def lookup(
        self,
        tenant_id: str,
        key: str,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
    ) -> StateEntry:
        """The first entry for `key` along workflow -> session -> agent -> tenant (the levels
        whose id is given); `namespace` on the answer says where it was found."""
        chain = lookup_chain(workflow_id=workflow_id, session_id=session_id, agent_id=agent_id)
        row = await self._sql.run_autocommit(
            state_sql.lookup_entry,
            tenant_id,
            [encode_namespace(ns) for ns in chain],
            check_key(key),
            self.clock(),
        )
        if row is None:
            searched = ", ".join(_show(ns) for ns in chain)
            raise NotFound(f"no state entry {key!r} in {searched}")
        return to_entry(row)

    async def list(
        self,
        tenant_id: str,
        namespace: Sequence[str],
        *,
        prefix: str = "",
        limit: int = 100,
        cursor: Optional[str] = None,
    ) -> StateList:
        ns = encode_namespace(check_namespace(namespace))
        if not 1 <= limit <= STATE_LIST_MAX:
            raise InvalidInput(
                f"limit must be 1-{STATE_LIST_MAX}; got {limit}",
                field="limit",
                limit=STATE_LIST_MAX,
            )
        if len(prefix) > STATE_KEY_MAX_LENGTH:
            raise InvalidInput(
                f"prefix is {len(prefix)} characters; keys have at most {STATE_KEY_MAX_LENGTH}",
                field="prefix",
                limit=STATE_KEY_MAX_LENGTH,
            )
        after = decode_cursor(cursor) if cursor else None
        # One more than asked: whether another page exists, without a second query.
        rows = await self._sql.run_autocommit(
            state_sql.list_keys,
            tenant_id,
            ns,
            prefix=prefix,
            after=after,
            limit=limit + 1,
            now=self.clock(),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return StateList(
            items=[
                StateListItem(
                    key=r.key,
                    updated_at=from_micros(r.updated_at),
                    expires_at=from_micros(r.expires_at) if r.expires_at is not None else None,
                )
                for r in rows
            ],
            next_cursor=encode_cursor(rows[-1].key) if more else None,
        )

    # ---- writes -----------------------------------------------------------------------------

    def _record(self, conn: Connection, tenant_id: str, event: NewEvent) -> None:
        if self._events is not None:
            self._events.record(conn, tenant_id, event)

    def _committed(self, tenant_id: str) -> None:
        if self._events is not None:
            self._events.committed(tenant_id)

    def _record_set(self, conn: Connection, tenant_id: str, row: state_sql.StateRow) -> None:
        data = {
            "value": row.value,
            "updated_at": from_micros(row.updated_at).isoformat(),
            "expires_at": from_micros(row.expires_at).isoformat() if row.expires_at else None,
        }
        self._record(conn, tenant_id, state_event("set", row.namespace, row.key, data))

    async def set(
        self,
        tenant_id: str,
        namespace: Sequence[str],
        key: str,
        value: Any,
        *,
        ttl: Optional[float] = None,
        guarded: bool = False,
        expected_updated_at: Optional[datetime] = None,
    ) -> StateEntry:
        """Last write wins unless `guarded`: then `expected_updated_at=None` creates only, and a
        time replaces only the entry last written at that time (409 with the current entry)."""
        write = self._prepare(namespace, key, value, ttl)
        if not guarded:
            row = await self._write_lww(tenant_id, write)
        elif expected_updated_at is None:
            row = await self._write_create(tenant_id, write)
        else:
            row = await self._write_replace(tenant_id, write, to_micros(expected_updated_at))
        self._committed(tenant_id)
        return to_entry(row)

    def _prepare(
        self, namespace: Sequence[str], key: str, value: Any, ttl: Optional[float]
    ) -> _Write:
        ns = encode_namespace(check_namespace(namespace))
        check_key(key)
        try:
            encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"value must be JSON: {exc}", field="value") from None
        size = len(encoded.encode())
        if size > self.value_max_bytes:
            raise PayloadTooLarge(
                f"value is {size} bytes as JSON; the limit is {self.value_max_bytes}",
                field="value",
                limit=self.value_max_bytes,
            )
        if ttl is not None and not 0 < ttl <= TTL_MAX_S:
            raise InvalidInput(
                f"ttl must be more than 0 and at most {TTL_MAX_S} seconds; got {ttl}",
                field="ttl",
                limit=TTL_MAX_S,
            )
        now = self.clock()
        expires_at = now + max(1, round(ttl * 1_000_000)) if ttl is not None else None
        return _Write(ns, key, value, size, expires_at, now)

    async def _write_lww(self, tenant_id: str, w: _Write) -> state_sql.StateRow:
        def write(conn: Connection) -> state_sql.StateRow:
            row = state_sql.upsert_entry(
                conn, tenant_id, w.namespace, w.key, w.value, w.value_bytes, w.expires_at, w.now
            )
            self._record_set(conn, tenant_id, row)
            return row

        return await self._sql.run_in_transaction(write)

    async def _write_create(self, tenant_id: str, w: _Write) -> state_sql.StateRow:
        def write(
            conn: Connection,
        ) -> tuple[Optional[state_sql.StateRow], Optional[state_sql.StateRow]]:
            row = state_sql.create_entry(
                conn, tenant_id, w.namespace, w.key, w.value, w.value_bytes, w.expires_at, w.now
            )
            if row is not None:
                self._record_set(conn, tenant_id, row)
                return row, None
            return None, state_sql.get_entry(conn, tenant_id, w.namespace, w.key, w.now)

        row, current = await self._sql.run_in_transaction(write)
        if row is None:
            raise _conflict(current, None)
        return row

    async def _write_replace(self, tenant_id: str, w: _Write, expected: int) -> state_sql.StateRow:
        def write(
            conn: Connection,
        ) -> tuple[Optional[state_sql.StateRow], Optional[state_sql.StateRow]]:
            row = state_sql.replace_entry(
                conn,
                tenant_id,
                w.namespace,
                w.key,
                w.value,
                w.value_bytes,
                w.expires_at,
                expected_updated_at=expected,
                now=w.now,
            )
            if row is not None:
                self._record_set(conn, tenant_id, row)
                return row, None
            return None, state_sql.get_entry(conn, tenant_id, w.namespace, w.key, w.now)

        row, current = await self._sql.run_in_transaction(write)
        if row is None:
            raise _conflict(current, expected)
        return row

    async def delete(self, tenant_id: str, namespace: Sequence[str], key: str) -> bool:
        """Idempotent; whether a (visible) entry was deleted."""
        ns = encode_namespace(check_namespace(namespace))
        check_key(key)
        now = self.clock()

        def write(conn: Connection) -> bool:
            if state_sql.delete_entry(conn, tenant_id, ns, key, now) is None:
                return False
            self._record(conn, tenant_id, state_event("delete", ns, key))
            return True

        deleted = await self._sql.run_in_transaction(write)
        if deleted:
            self._committed(tenant_id)
        return deleted

    async def clear(self, tenant_id: str, namespace: Sequence[str]) -> int:
        """Delete every entry of the namespace (not those of namespaces below it); how many."""
        ns = encode_namespace(check_namespace(namespace))
        now = self.clock()

        def write(conn: Connection) -> int:
            cleared = state_sql.clear_namespace(conn, tenant_id, ns, now)
            if cleared:
                self._record(conn, tenant_id, state_event("clear", ns, "", {"deleted": cleared}))
            return cleared

        cleared = await self._sql.run_in_transaction(write)
        if cleared:
            self._committed(tenant_id)
        return cleared

    async def delete_agent_namespace(self, tenant_id: str, agent_id: str) -> int:
        """Delete `("agent", agent_id)` and every namespace below it (agents.delete)."""
        ns = encode_namespace(check_namespace(("agent", agent_id), "agent_id"))

        def write(conn: Connection) -> int:
            gone = state_sql.delete_namespace_tree(conn, tenant_id, ns)
            if gone:
                data = {"deleted": gone, "below": True}
                self._record(conn, tenant_id, state_event("clear", ns, "", data))
            return gone

        gone = await self._sql.run_in_transaction(write)
        if gone:
            self._committed(tenant_id)
        return gone

    async def sweep(self) -> int:
        """Remove every expired row (all tenants), a batch per transaction; how many."""
        removed = 0
        while True:
            expired = await self._sql.run_in_transaction(self._sweep_batch, self.clock())
            removed += len(expired)
            for tenant_id in {tenant_id for tenant_id, _, _ in expired}:
                self._committed(tenant_id)
            if len(expired) < SWEEP_BATCH:
                return removed

    def _sweep_batch(self, conn: Connection, now: int) -> builtins.list[tuple[str, str, str]]:
        expired = state_sql.delete_expired_keys(conn, now, SWEEP_BATCH)
        for tenant_id, namespace, key in expired:
            self._record(conn, tenant_id, state_event("expire", namespace, key))
        return expired


def state_event(
    action: str, namespace: str, key: str, data: Optional[dict[str, Any]] = None
) -> NewEvent:
    """The change-feed event of a state write (`namespace` in its stored form)."""
    return NewEvent(
        kind="state", action=action, key=key, namespace=decode_namespace(namespace), data=data
    )


def _show(namespace: Sequence[str]) -> str:
    return repr(tuple(namespace)) if namespace else "the tenant's root ()"


def _conflict(current: Optional[state_sql.StateRow], expected: Optional[int]) -> Conflict:
    if current is None:
        message = (
            "state entry does not exist (or expired); pass expected_updated_at=None to create it"
            if expected is not None
            else "state entry was written concurrently; read it and retry"
        )
        return Conflict(message, field="expected_updated_at", current_updated_at=None, current=None)
    entry = to_entry(current)
    at = entry.updated_at.isoformat()
    if expected is None:
        message = f"state entry exists (updated_at={at}); pass its updated_at to replace it"
    else:
        message = (
            f"state entry changed since {from_micros(expected).isoformat()}; current updated_at "
            f"is {at}"
        )
    return Conflict(
        message,
        field="expected_updated_at",
        current_updated_at=at,
        current=entry.model_dump(mode="json"),
    )
