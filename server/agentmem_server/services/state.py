"""Keyed state (DESIGN §10): exact JSON values under `(namespace, key)`, per tenant.

Each write path is one method running one SQL function in one transaction (`_write_*`,
`delete`, `clear`, ...): anything that must commit with a write (a change-feed event) goes
into that function, on the same connection.

Time comes from `clock` (UTC microseconds), so tests can stand exactly at an expiry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import Connection

from agentmem.types.events import StateVersion
from agentmem.types.state import (
    NAMESPACE_MAX_SEGMENTS,
    STATE_KEY_MAX_LENGTH,
    STATE_LIST_MAX,
    TTL_MAX_S,
    StateEntry,
    StateList,
    StateListItem,
    StateTenantSettings,
    decode_namespace,
    encode_namespace,
    key_problem,
    namespace_problem,
)

from ..errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from ..storage.base import from_micros, now_micros, to_micros
from ..storage.sql import leases as leases_sql
from ..storage.sql import state as state_sql
from ..storage.sql.events import EventRow, NewEvent
from ..storage.sql.store import SqlStore

if TYPE_CHECKING:
    from .events import EventLog
    from .limits import Quotas

log = logging.getLogger("agentmem.state")

Namespace = tuple[str, ...]

DEFAULT_VALUE_MAX_BYTES = 64 * 1024
SWEEP_BATCH = 1000
"""Rows one sweep statement removes at most, so no sweep holds the write lock for long."""
SWEEP_LEASE = "state-sweep"
SWEEP_LEASE_DEFAULT_US = 180_000_000
"""How long a replica holds the sweep lease unless it renews it (`start_sweeping` sets it to
three sweep intervals, at least 30 s)."""


def ttl_micros(ttl: float) -> int:
    if not 0 < ttl <= TTL_MAX_S:
        raise InvalidInput(
            f"ttl must be more than 0 and at most {TTL_MAX_S} seconds; got {ttl}",
            field="ttl",
            limit=TTL_MAX_S,
        )
    return max(1, round(ttl * 1_000_000))


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
    ttl_us: Optional[int]
    """The entry's own TTL; None: the tenant's default (if it has one)."""
    now: int

    def expires_at(self, tenant: state_sql.TenantState) -> Optional[int]:
        ttl = self.ttl_us if self.ttl_us is not None else tenant.default_ttl_us
        return self.now + ttl if ttl is not None else None


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
        self.replica_id = "rep_" + secrets.token_hex(8)
        """Who holds the sweep lease when this replica sweeps."""
        self.lease_us = SWEEP_LEASE_DEFAULT_US
        self._sweeper: Optional[asyncio.Task[None]] = None
        self._stop_sweeping = asyncio.Event()

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

    async def history(
        self, tenant_id: str, namespace: Sequence[str], key: str, *, limit: int = 20
    ) -> builtins.list[StateVersion]:
        """The entry's versions from the change feed, newest first."""
        ns = check_namespace(namespace)
        check_key(key)
        if self._events is None:
            return []
        rows = await self._events.history(
            tenant_id, kinds=("state",), key=key, namespace=ns, limit=limit
        )
        return [_version(row, key) for row in rows]

    # ---- writes -----------------------------------------------------------------------------

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
        ttl_us = ttl_micros(ttl) if ttl is not None else None
        return _Write(ns, key, value, size, ttl_us, self.clock())

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

    # Every write path below is one function in one transaction: it locks the tenant's
    # bookkeeping row, checks the quotas, writes, and counts what changed.

    def _begin(self, conn: Connection, tenant_id: str, w: _Write) -> tuple[Optional[int], int, int]:
        """Lock the tenant and check its quotas for this write: (expires_at, and the rows and
        bytes the tenant holds more after it)."""
        tenant = state_sql.lock_tenant(conn, tenant_id)
        old = state_sql.stored_size(conn, tenant_id, w.namespace, w.key)
        more_rows, more_bytes = (1, w.value_bytes) if old is None else (0, w.value_bytes - old)
        if self._quotas is not None:
            self._quotas.check("state_entries", tenant.entries, more_rows, field="key")
            self._quotas.check("state_bytes", tenant.bytes, more_bytes, field="value")
        return w.expires_at(tenant), more_rows, more_bytes

    async def _write_lww(self, tenant_id: str, w: _Write) -> state_sql.StateRow:
        def write(conn: Connection) -> state_sql.StateRow:
            expires_at, rows, size = self._begin(conn, tenant_id, w)
            row = state_sql.upsert_entry(
                conn, tenant_id, w.namespace, w.key, w.value, w.value_bytes, expires_at, w.now
            )
            state_sql.add_usage(conn, tenant_id, rows, size)
            self._record_set(conn, tenant_id, row)
            return row

        return await self._sql.run_in_transaction(write)

    async def _write_create(self, tenant_id: str, w: _Write) -> state_sql.StateRow:
        def write(
            conn: Connection,
        ) -> tuple[Optional[state_sql.StateRow], Optional[state_sql.StateRow]]:
            expires_at, rows, size = self._begin(conn, tenant_id, w)
            row = state_sql.create_entry(
                conn, tenant_id, w.namespace, w.key, w.value, w.value_bytes, expires_at, w.now
            )
            if row is None:
                return None, state_sql.get_entry(conn, tenant_id, w.namespace, w.key, w.now)
            state_sql.add_usage(conn, tenant_id, rows, size)
            self._record_set(conn, tenant_id, row)
            return row, None

        row, current = await self._sql.run_in_transaction(write)
        if row is None:
            raise _conflict(current, None)
        return row

    async def _write_replace(self, tenant_id: str, w: _Write, expected: int) -> state_sql.StateRow:
        def write(
            conn: Connection,
        ) -> tuple[Optional[state_sql.StateRow], Optional[state_sql.StateRow]]:
            expires_at, rows, size = self._begin(conn, tenant_id, w)
            row = state_sql.replace_entry(
                conn,
                tenant_id,
                w.namespace,
                w.key,
                w.value,
                w.value_bytes,
                expires_at,
                expected_updated_at=expected,
                now=w.now,
            )
            if row is None:
                return None, state_sql.get_entry(conn, tenant_id, w.namespace, w.key, w.now)
            state_sql.add_usage(conn, tenant_id, rows, size)
            self._record_set(conn, tenant_id, row)
            return row, None

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
            state_sql.lock_tenant(conn, tenant_id)
            row = state_sql.delete_entry(conn, tenant_id, ns, key)
            if row is None:
                return False
            state_sql.add_usage(conn, tenant_id, -1, -row.value_bytes)
            visible = row.expires_at is None or row.expires_at > now
            if visible:
                self._record(conn, tenant_id, state_event("delete", ns, key))
            return visible

        deleted = await self._sql.run_in_transaction(write)
        if deleted:
            self._committed(tenant_id)
        return deleted

    async def clear(self, tenant_id: str, namespace: Sequence[str]) -> int:
        """Delete every entry of the namespace (not those of namespaces below it); how many."""
        ns = encode_namespace(check_namespace(namespace))
        now = self.clock()

        def write(conn: Connection) -> int:
            state_sql.lock_tenant(conn, tenant_id)
            removed = state_sql.clear_namespace(conn, tenant_id, ns, now)
            state_sql.add_usage(conn, tenant_id, -removed.rows, -removed.bytes)
            if removed.visible:
                data = {"deleted": removed.visible}
                self._record(conn, tenant_id, state_event("clear", ns, "", data))
            return removed.visible

        cleared = await self._sql.run_in_transaction(write)
        if cleared:
            self._committed(tenant_id)
        return cleared

    async def delete_agent_namespace(self, tenant_id: str, agent_id: str) -> int:
        """Delete `("agent", agent_id)` and every namespace below it (agents.delete)."""
        ns = encode_namespace(check_namespace(("agent", agent_id), "agent_id"))
        now = self.clock()

        def write(conn: Connection) -> int:
            state_sql.lock_tenant(conn, tenant_id)
            removed = state_sql.delete_namespace_tree(conn, tenant_id, ns, now)
            state_sql.add_usage(conn, tenant_id, -removed.rows, -removed.bytes)
            if removed.rows:
                data = {"deleted": removed.visible, "below": True}
                self._record(conn, tenant_id, state_event("clear", ns, "", data))
            return removed.visible

        gone = await self._sql.run_in_transaction(write)
        if gone:
            self._committed(tenant_id)
        return gone

    # ---- expiry -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Remove every row expired by now (all tenants), a batch at a time, one transaction per
        tenant of a batch; how many."""
        removed = 0
        while True:
            now = self.clock()
            batch = await self._sql.run_autocommit(state_sql.expired_batch, now, SWEEP_BATCH)
            by_tenant: dict[str, builtins.list[tuple[str, str]]] = {}
            for tenant_id, ns, key in batch:
                by_tenant.setdefault(tenant_id, []).append((ns, key))
            swept = 0
            for tenant_id, keys in sorted(by_tenant.items()):
                removed_here = await self._sql.run_in_transaction(
                    self._sweep_tenant, tenant_id, keys, now
                )
                if removed_here:
                    self._committed(tenant_id)
                swept += removed_here
            removed += swept
            # A short batch was the last; a full one that removed nothing was all set again.
            if len(batch) < SWEEP_BATCH or swept == 0:
                return removed

    def _sweep_tenant(
        self, conn: Connection, tenant_id: str, keys: Sequence[tuple[str, str]], now: int
    ) -> int:
        state_sql.lock_tenant(conn, tenant_id)
        removed, gone = state_sql.delete_expired(conn, tenant_id, keys, now)
        state_sql.add_usage(conn, tenant_id, -removed.rows, -removed.bytes)
        for namespace, key in gone:
            self._record(conn, tenant_id, state_event("expire", namespace, key))
        return removed.rows

    async def sweep_if_leader(self) -> Optional[int]:
        """`sweep()` if this replica holds (or takes) the sweep lease, else None: one replica
        sweeps at a time; another takes over once the holder stops renewing."""
        held = await self._sql.run_autocommit(
            leases_sql.acquire, SWEEP_LEASE, self.replica_id, now_micros(), self.lease_us
        )
        return await self.sweep() if held else None

    def start_sweeping(self, interval_s: float) -> None:
        """Sweep every `interval_s` in the background while this replica leads."""
        self.lease_us = int(max(3 * interval_s, 30.0) * 1_000_000)
        stop = self._stop_sweeping = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                try:
                    removed = await self.sweep_if_leader()
                    if removed:
                        log.info("swept %d expired state entries", removed)
                except Exception:  # noqa: BLE001 - retried on the next pass
                    log.exception("sweeping expired state entries failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)

        self._sweeper = asyncio.get_running_loop().create_task(loop(), name="agentmem-state-sweep")

    async def close(self) -> None:
        # Stopped rather than cancelled: a sweep cut off mid-statement would leave its SQL
        # connection checked out of a pool that is about to be disposed.
        if self._sweeper is not None:
            self._stop_sweeping.set()
            await self._sweeper
            self._sweeper = None
        with contextlib.suppress(Exception):
            await self._sql.run_autocommit(leases_sql.release, SWEEP_LEASE, self.replica_id)

    # ---- per-tenant settings (admin) ------------------------------------------------------------

    async def tenant_settings(self, tenant_id: str) -> StateTenantSettings:
        tenant = await self._sql.run_autocommit(state_sql.tenant_state, tenant_id)
        return _settings(tenant)

    async def set_default_ttl(self, tenant_id: str, ttl: Optional[float]) -> StateTenantSettings:
        """Entries set without a `ttl` from now on expire after `ttl` seconds (None: never);
        entries already stored keep their expiry."""
        ttl_us = ttl_micros(ttl) if ttl is not None else None
        tenant = await self._sql.run_in_transaction(state_sql.set_default_ttl, tenant_id, ttl_us)
        return _settings(tenant)


def _version(row: EventRow, key: str) -> StateVersion:
    data = row.data if isinstance(row.data, dict) else {}
    updated, expires = data.get("updated_at"), data.get("expires_at")
    return StateVersion(
        seq=row.seq,
        at=from_micros(row.at),
        action=row.action,
        namespace=list(row.namespace),
        key=key,
        value=data.get("value"),
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
        expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
        truncated=row.truncated,
    )


def state_event(
    action: str, namespace: str, key: str, data: Optional[dict[str, Any]] = None
) -> NewEvent:
    """The change-feed event of a state write (`namespace` in its stored form)."""
    return NewEvent(
        kind="state", action=action, key=key, namespace=decode_namespace(namespace), data=data
    )


def _settings(tenant: state_sql.TenantState) -> StateTenantSettings:
    ttl = tenant.default_ttl_us
    return StateTenantSettings(
        default_ttl=ttl / 1_000_000 if ttl is not None else None,
        entries=tenant.entries,
        bytes=tenant.bytes,
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
