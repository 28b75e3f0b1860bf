"""SQL for keyed state (schema.state_entries, schema.state_tenants). Each read is one statement.

An entry whose `expires_at` has passed is invisible to every function here at once, whether or
not the sweeper (`delete_expired`) has removed its row yet: reads filter it out, and a write
over it creates the entry anew. `now` is always the caller's (an injectable clock).

A write is a few statements in one transaction (services/state.py): `lock_tenant`, the entry's
`stored_size`, the write itself, `add_usage`. Those and `get_entry` are built once, with named
parameters (`p_*`), so SQLAlchemy takes them from its compiled cache without building a statement
tree per call (storage/sql/blocks.py says what that saves).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from agentmem.types.state import NAMESPACE_SEPARATOR

from .schema import state_entries as t
from .schema import state_tenants as st


@dataclass(frozen=True)
class StateRow:
    namespace: str
    """The segments joined by '/', '' for the root."""
    key: str
    value: Any
    value_bytes: int
    created_at: int
    updated_at: int
    expires_at: Optional[int]


@dataclass(frozen=True)
class StateKeyRow:
    key: str
    updated_at: int
    expires_at: Optional[int]


def _row(r: Row[Any]) -> StateRow:
    return StateRow(
        namespace=r.namespace,
        key=r.key,
        value=r.value,
        value_bytes=r.value_bytes,
        created_at=r.created_at,
        updated_at=r.updated_at,
        expires_at=r.expires_at,
    )


def _visible(now: int) -> ColumnElement[bool]:
    return or_(t.c.expires_at.is_(None), t.c.expires_at > now)


def _expired(now: int) -> ColumnElement[bool]:
    return and_(t.c.expires_at.is_not(None), t.c.expires_at <= now)


def _entry(tenant_id: str, namespace: str, key: str) -> ColumnElement[bool]:
    return and_(t.c.tenant_id == tenant_id, t.c.namespace == namespace, t.c.key == key)


def _next_updated_at(now: int) -> ColumnElement[int]:
    # Strictly increasing even when two writes land in one microsecond (or the clock steps back).
    return case((literal(now) > t.c.updated_at, literal(now)), else_=t.c.updated_at + 1)


def successor(prefix: str) -> Optional[str]:
    """The least string greater than every string starting with `prefix` (None: there is none).

    In code point order, which is UTF-8 byte order: SQLite's BINARY and PostgreSQL's "C"."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are not characters UTF-8 can hold
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


# ---- statements built once (see the module doc) ------------------------------------------
# A bind parameter may not share a column's name in an UPDATE (SQLAlchemy keeps those for SET).

_P_NOW = bindparam("p_now", type_=BigInteger)
_P_ENTRY = and_(
    t.c.tenant_id == bindparam("p_tenant"),
    t.c.namespace == bindparam("p_namespace"),
    t.c.key == bindparam("p_key"),
)
_P_VISIBLE = or_(t.c.expires_at.is_(None), t.c.expires_at > _P_NOW)
_P_EXPIRED = and_(t.c.expires_at.is_not(None), t.c.expires_at <= _P_NOW)
_P_NEXT_UPDATED_AT = case((_P_NOW > t.c.updated_at, _P_NOW), else_=t.c.updated_at + 1)

_GET_ENTRY = select(t).where(_P_ENTRY, _P_VISIBLE)
_STORED_SIZE = select(t.c.value_bytes).where(_P_ENTRY)
_REPLACE_ENTRY = (
    update(t)
    .where(_P_ENTRY, t.c.updated_at == bindparam("p_expected", type_=BigInteger), _P_VISIBLE)
    .values(
        value=bindparam("p_value"),
        value_bytes=bindparam("p_value_bytes"),
        expires_at=bindparam("p_expires_at"),
        updated_at=_P_NEXT_UPDATED_AT,
    )
    .returning(*t.c)
)
_ADD_USAGE = (
    update(st)
    .where(st.c.tenant_id == bindparam("p_tenant"))
    .values(
        entries=st.c.entries + bindparam("p_entries", type_=BigInteger),
        bytes=st.c.bytes + bindparam("p_bytes", type_=BigInteger),
    )
)


def _dialect_name(conn: Connection) -> str:
    return "postgresql" if conn.dialect.name == "postgresql" else "sqlite"


def _build_writes(dialect: Any) -> dict[str, Any]:
    """A dialect's upserts; the row's values come as the execution's parameters, with `p_now`."""
    insert = dialect.insert(t)
    conflict = [t.c.tenant_id, t.c.namespace, t.c.key]
    written = {
        "value": insert.excluded.value,
        "value_bytes": insert.excluded.value_bytes,
        "expires_at": insert.excluded.expires_at,
        "updated_at": _P_NEXT_UPDATED_AT,
    }
    return {
        "upsert": insert.on_conflict_do_update(
            index_elements=conflict,
            set_={
                **written,
                # An expired entry is gone as far as anyone can tell: this write creates it anew.
                "created_at": case((_P_EXPIRED, _P_NOW), else_=t.c.created_at),
            },
        ).returning(*t.c),
        "create": insert.on_conflict_do_update(
            index_elements=conflict,
            set_={**written, "created_at": _P_NOW},
            where=_P_EXPIRED,
        ).returning(*t.c),
        "lock_tenant": dialect.insert(st)
        .on_conflict_do_update(index_elements=[st.c.tenant_id], set_={"entries": st.c.entries})
        .returning(st.c.entries, st.c.bytes, st.c.default_ttl_us),
    }


_WRITES = {"postgresql": _build_writes(postgresql), "sqlite": _build_writes(sqlite)}


def _entry_params(tenant_id: str, namespace: str, key: str) -> dict[str, Any]:
    return {"p_tenant": tenant_id, "p_namespace": namespace, "p_key": key}


# ---- reads ----------------------------------------------------------------------------------


def get_entry(
    conn: Connection, tenant_id: str, namespace: str, key: str, now: int
) -> Optional[StateRow]:
    r = conn.execute(_GET_ENTRY, {**_entry_params(tenant_id, namespace, key), "p_now": now}).first()
    return _row(r) if r else None


def lookup_entry(
    conn: Connection, tenant_id: str, namespaces: Sequence[str], key: str, now: int
) -> Optional[StateRow]:
    """The entry in the first of `namespaces` that holds `key`: one statement, one index probe
    per namespace (the primary key, `namespace IN (...)`)."""
    order = case({ns: i for i, ns in enumerate(namespaces)}, value=t.c.namespace)
    stmt = (
        select(t)
        .where(
            t.c.tenant_id == tenant_id,
            t.c.namespace.in_(list(namespaces)),
            t.c.key == key,
            _visible(now),
        )
        .order_by(order)
        .limit(1)
    )
    r = conn.execute(stmt).first()
    return _row(r) if r else None


def list_keys(
    conn: Connection,
    tenant_id: str,
    namespace: str,
    *,
    prefix: str,
    after: Optional[str],
    limit: int,
    now: int,
) -> list[StateKeyRow]:
    """Up to `limit` visible keys starting with `prefix`, after `after`, in key order: a range
    scan of the primary key."""
    stmt = select(t.c.key, t.c.updated_at, t.c.expires_at).where(
        t.c.tenant_id == tenant_id, t.c.namespace == namespace, _visible(now)
    )
    if prefix:
        stmt = stmt.where(t.c.key >= prefix)
        upper = successor(prefix)
        if upper is not None:
            stmt = stmt.where(t.c.key < upper)
    if after is not None:
        stmt = stmt.where(t.c.key > after)
    rows = conn.execute(stmt.order_by(t.c.key).limit(limit)).all()
    return [StateKeyRow(r.key, r.updated_at, r.expires_at) for r in rows]


def list_namespace_entries(
    conn: Connection, tenant_id: str, namespace: str, *, after: Optional[str], limit: int, now: int
) -> list[StateRow]:
    """Whole visible entries of a namespace in key order, a page at a time (export, tools)."""
    stmt = select(t).where(t.c.tenant_id == tenant_id, t.c.namespace == namespace, _visible(now))
    if after is not None:
        stmt = stmt.where(t.c.key > after)
    return [_row(r) for r in conn.execute(stmt.order_by(t.c.key).limit(limit))]


def iter_tenant_entries(
    conn: Connection, tenant_id: str, now: int, page: int = 1000
) -> Iterator[StateRow]:
    """Every visible entry of the tenant, by namespace then key, a page at a time (export)."""
    after: Optional[tuple[str, str]] = None
    while True:
        stmt = select(t).where(t.c.tenant_id == tenant_id, _visible(now))
        if after is not None:
            stmt = stmt.where(tuple_(t.c.namespace, t.c.key) > tuple_(*map(literal, after)))
        rows = conn.execute(stmt.order_by(t.c.namespace, t.c.key).limit(page)).all()
        if not rows:
            return
        for r in rows:
            yield _row(r)
        after = (rows[-1].namespace, rows[-1].key)


# ---- writes ---------------------------------------------------------------------------------


def _insert(conn: Connection, values: dict[str, Any]) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(t).values(**values)


def _values(
    tenant_id: str,
    namespace: str,
    key: str,
    value: Any,
    value_bytes: int,
    expires_at: Optional[int],
    now: int,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "namespace": namespace,
        "key": key,
        "value": value,
        "value_bytes": value_bytes,
        "created_at": now,
        "updated_at": now,
        "expires_at": expires_at,
    }


def upsert_entry(
    conn: Connection,
    tenant_id: str,
    namespace: str,
    key: str,
    value: Any,
    value_bytes: int,
    expires_at: Optional[int],
    now: int,
) -> StateRow:
    """Last write wins: insert, or replace whatever is there, in one statement."""
    params = _values(tenant_id, namespace, key, value, value_bytes, expires_at, now)
    params["p_now"] = now
    return _row(conn.execute(_WRITES[_dialect_name(conn)]["upsert"], params).one())


def create_entry(
    conn: Connection,
    tenant_id: str,
    namespace: str,
    key: str,
    value: Any,
    value_bytes: int,
    expires_at: Optional[int],
    now: int,
) -> Optional[StateRow]:
    """Create only: None when a visible entry exists (an expired one is replaced)."""
    params = _values(tenant_id, namespace, key, value, value_bytes, expires_at, now)
    params["p_now"] = now
    # RETURNING rather than rowcount: psycopg reports rowcount -1 for an upsert.
    r = conn.execute(_WRITES[_dialect_name(conn)]["create"], params).first()
    return _row(r) if r else None


def import_entry(
    conn: Connection,
    tenant_id: str,
    row: StateRow,
    now: int,
) -> bool:
    """Create an entry with the times it had where it was exported; False when a visible entry
    holds its key (an expired one is replaced)."""
    values = _values(
        tenant_id, row.namespace, row.key, row.value, row.value_bytes, row.expires_at, now
    )
    values.update(created_at=row.created_at, updated_at=row.updated_at)
    stmt = _insert(conn, values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.namespace, t.c.key],
        set_={
            "value": stmt.excluded.value,
            "value_bytes": stmt.excluded.value_bytes,
            "expires_at": stmt.excluded.expires_at,
            "created_at": stmt.excluded.created_at,
            "updated_at": stmt.excluded.updated_at,
        },
        where=_expired(now),
    ).returning(t.c.key)
    return conn.execute(stmt).first() is not None


def replace_entry(
    conn: Connection,
    tenant_id: str,
    namespace: str,
    key: str,
    value: Any,
    value_bytes: int,
    expires_at: Optional[int],
    *,
    expected_updated_at: int,
    now: int,
) -> Optional[StateRow]:
    """Compare-and-set on `updated_at`: None when it differs or the entry is gone or expired."""
    params = {
        **_entry_params(tenant_id, namespace, key),
        "p_expected": expected_updated_at,
        "p_now": now,
        "p_value": value,
        "p_value_bytes": value_bytes,
        "p_expires_at": expires_at,
    }
    r = conn.execute(_REPLACE_ENTRY, params).first()
    return _row(r) if r else None


def delete_entry(conn: Connection, tenant_id: str, namespace: str, key: str) -> Optional[StateRow]:
    """Delete the entry's row; the row removed (expired or not), None if there was none."""
    r = conn.execute(delete(t).where(_entry(tenant_id, namespace, key)).returning(*t.c)).first()
    return _row(r) if r else None


@dataclass(frozen=True)
class Removed:
    """Rows a bulk delete removed: how many, the bytes their values held, how many were visible."""

    rows: int
    bytes: int
    visible: int


def _removed(rows: Sequence[Any], now: Optional[int]) -> Removed:
    visible = sum(
        1 for r in rows if r.expires_at is None or (now is not None and r.expires_at > now)
    )
    return Removed(len(rows), sum(r.value_bytes for r in rows), visible)


def clear_namespace(conn: Connection, tenant_id: str, namespace: str, now: int) -> Removed:
    """Delete every entry of one namespace (not of the namespaces below it)."""
    rows = conn.execute(
        delete(t)
        .where(t.c.tenant_id == tenant_id, t.c.namespace == namespace)
        .returning(t.c.expires_at, t.c.value_bytes)
    ).all()
    return _removed(rows, now)


def delete_namespace_tree(conn: Connection, tenant_id: str, namespace: str, now: int) -> Removed:
    """Delete a namespace and every namespace below it (an agent's: `agent/ID`, `agent/ID/...`)."""
    below = namespace + NAMESPACE_SEPARATOR
    upper = successor(below)
    assert upper is not None  # '/' has a successor
    stmt = (
        delete(t)
        .where(
            t.c.tenant_id == tenant_id,
            or_(t.c.namespace == namespace, and_(t.c.namespace >= below, t.c.namespace < upper)),
        )
        .returning(t.c.expires_at, t.c.value_bytes)
    )
    return _removed(conn.execute(stmt).all(), now)


def expired_batch(conn: Connection, now: int, limit: int) -> list[tuple[str, str, str]]:
    """Up to `limit` (tenant, namespace, key) of rows expired by `now`, every tenant's, oldest
    first (the `expires_at` index)."""
    stmt = (
        select(t.c.tenant_id, t.c.namespace, t.c.key)
        .where(t.c.expires_at.is_not(None), t.c.expires_at <= now)
        .order_by(t.c.expires_at)
        .limit(limit)
    )
    return [(r.tenant_id, r.namespace, r.key) for r in conn.execute(stmt)]


def delete_expired(
    conn: Connection, tenant_id: str, keys: Sequence[tuple[str, str]], now: int
) -> tuple[Removed, list[tuple[str, str]]]:
    """Delete those of the tenant's `(namespace, key)` rows that are still expired by `now`
    (one may have been set again since the batch was read): what went, and which."""
    stmt = (
        delete(t)
        .where(
            t.c.tenant_id == tenant_id,
            tuple_(t.c.namespace, t.c.key).in_(list(keys)),
            _expired(now),
        )
        .returning(t.c.namespace, t.c.key, t.c.expires_at, t.c.value_bytes)
    )
    rows = conn.execute(stmt).all()
    return _removed(rows, None), [(r.namespace, r.key) for r in rows]


def count_entries(conn: Connection, tenant_id: str) -> tuple[int, int]:
    """(rows, bytes of values) the tenant's entries hold, counted over the rows themselves
    (expired ones included until swept): what `state_tenants` must agree with."""
    r = conn.execute(
        select(func.count(), func.coalesce(func.sum(t.c.value_bytes), 0)).where(
            t.c.tenant_id == tenant_id
        )
    ).one()
    return int(r[0]), int(r[1])


def stored_size(conn: Connection, tenant_id: str, namespace: str, key: str) -> Optional[int]:
    """The value bytes of the entry's row, expired or not; None when there is no row."""
    size = conn.execute(_STORED_SIZE, _entry_params(tenant_id, namespace, key)).scalar()
    return None if size is None else int(size)


# ---- per-tenant bookkeeping (schema.state_tenants) --------------------------------------------


@dataclass(frozen=True)
class TenantState:
    entries: int
    """Rows the tenant holds (expired ones until swept)."""
    bytes: int
    """Bytes of their values (compact UTF-8 JSON)."""
    default_ttl_us: Optional[int]
    """The TTL of entries set without one, or None."""


def lock_tenant(conn: Connection, tenant_id: str) -> TenantState:
    """Lock the tenant's bookkeeping row (creating it) until the transaction ends, and read it.

    Every state write takes this lock first: writes of one tenant run one after another through
    their bookkeeping, always in the same lock order (this row, then entries)."""
    stmt = _WRITES[_dialect_name(conn)]["lock_tenant"]
    r = conn.execute(stmt, {"tenant_id": tenant_id, "entries": 0, "bytes": 0}).one()
    return TenantState(int(r.entries), int(r.bytes), r.default_ttl_us)


def tenant_state(conn: Connection, tenant_id: str) -> TenantState:
    """The tenant's bookkeeping, read without a lock."""
    r = conn.execute(select(st).where(st.c.tenant_id == tenant_id)).first()
    if r is None:
        return TenantState(0, 0, None)
    return TenantState(int(r.entries), int(r.bytes), r.default_ttl_us)


def add_usage(conn: Connection, tenant_id: str, entries: int, size: int) -> None:
    """Count `entries` more rows and `size` more bytes (negative: fewer); the row is locked."""
    if entries or size:
        conn.execute(_ADD_USAGE, {"p_tenant": tenant_id, "p_entries": entries, "p_bytes": size})


def set_default_ttl(conn: Connection, tenant_id: str, default_ttl_us: Optional[int]) -> TenantState:
    lock_tenant(conn, tenant_id)
    conn.execute(
        update(st).where(st.c.tenant_id == tenant_id).values(default_ttl_us=default_ttl_us)
    )
    return tenant_state(conn, tenant_id)
