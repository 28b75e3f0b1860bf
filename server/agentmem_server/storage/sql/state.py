"""SQL for keyed state (schema.state_entries). Every read and write is one statement.

An entry whose `expires_at` has passed is invisible to every function here at once, whether or
not the sweeper (`delete_expired`) has removed its row yet: reads filter it out, and a write
over it creates the entry anew. `now` is always the caller's (an injectable clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
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

from .schema import state_entries as t

NAMESPACE_SEPARATOR = "/"


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


# ---- reads ----------------------------------------------------------------------------------


def get_entry(
    conn: Connection, tenant_id: str, namespace: str, key: str, now: int
) -> Optional[StateRow]:
    r = conn.execute(select(t).where(_entry(tenant_id, namespace, key), _visible(now))).first()
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
    stmt = _insert(conn, _values(tenant_id, namespace, key, value, value_bytes, expires_at, now))
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.namespace, t.c.key],
        set_={
            "value": stmt.excluded.value,
            "value_bytes": stmt.excluded.value_bytes,
            "expires_at": stmt.excluded.expires_at,
            # An expired entry is gone as far as anyone can tell: this write creates it anew.
            "created_at": case((_expired(now), literal(now)), else_=t.c.created_at),
            "updated_at": _next_updated_at(now),
        },
    ).returning(*t.c)
    return _row(conn.execute(stmt).one())


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
    stmt = _insert(conn, _values(tenant_id, namespace, key, value, value_bytes, expires_at, now))
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.namespace, t.c.key],
        set_={
            "value": stmt.excluded.value,
            "value_bytes": stmt.excluded.value_bytes,
            "expires_at": stmt.excluded.expires_at,
            "created_at": literal(now),
            "updated_at": _next_updated_at(now),
        },
        where=_expired(now),
    ).returning(*t.c)
    # RETURNING rather than rowcount: psycopg reports rowcount -1 for an upsert.
    r = conn.execute(stmt).first()
    return _row(r) if r else None


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
    stmt = (
        update(t)
        .where(
            _entry(tenant_id, namespace, key),
            t.c.updated_at == expected_updated_at,
            _visible(now),
        )
        .values(
            value=value,
            value_bytes=value_bytes,
            expires_at=expires_at,
            updated_at=_next_updated_at(now),
        )
        .returning(*t.c)
    )
    r = conn.execute(stmt).first()
    return _row(r) if r else None


def delete_entry(
    conn: Connection, tenant_id: str, namespace: str, key: str, now: int
) -> Optional[StateRow]:
    """Delete the entry's row; the entry it held if that was visible (else None)."""
    r = conn.execute(delete(t).where(_entry(tenant_id, namespace, key)).returning(*t.c)).first()
    if r is None:
        return None
    row = _row(r)
    return row if row.expires_at is None or row.expires_at > now else None


def clear_namespace(conn: Connection, tenant_id: str, namespace: str, now: int) -> int:
    """Delete every entry of one namespace (not of the namespaces below it); how many were
    visible."""
    rows = conn.execute(
        delete(t)
        .where(t.c.tenant_id == tenant_id, t.c.namespace == namespace)
        .returning(t.c.expires_at)
    ).all()
    return sum(1 for r in rows if r.expires_at is None or r.expires_at > now)


def delete_namespace_tree(conn: Connection, tenant_id: str, namespace: str) -> int:
    """Delete a namespace and every namespace below it (an agent's: `agent/ID`, `agent/ID/...`);
    how many rows went."""
    below = namespace + NAMESPACE_SEPARATOR
    upper = successor(below)
    assert upper is not None  # '/' has a successor
    stmt = delete(t).where(
        t.c.tenant_id == tenant_id,
        or_(t.c.namespace == namespace, and_(t.c.namespace >= below, t.c.namespace < upper)),
    )
    return int(conn.execute(stmt).rowcount or 0)


def delete_expired(conn: Connection, now: int, limit: int) -> int:
    """Remove up to `limit` rows expired by `now` (every tenant's), oldest first; how many."""
    return len(delete_expired_keys(conn, now, limit))


def delete_expired_keys(conn: Connection, now: int, limit: int) -> list[tuple[str, str, str]]:
    """Remove up to `limit` rows expired by `now` (every tenant's), oldest first; the
    `(tenant_id, namespace, key)` of each row removed."""
    batch = (
        select(t.c.tenant_id, t.c.namespace, t.c.key)
        .where(t.c.expires_at.is_not(None), t.c.expires_at <= now)
        .order_by(t.c.expires_at)
        .limit(limit)
    )
    keys = [tuple(r) for r in conn.execute(batch)]
    if not keys:
        return []
    # Expiry re-checked: an entry may have been set again since the batch was read.
    stmt = (
        delete(t)
        .where(tuple_(t.c.tenant_id, t.c.namespace, t.c.key).in_(keys), _expired(now))
        .returning(t.c.tenant_id, t.c.namespace, t.c.key)
    )
    return [(r.tenant_id, r.namespace, r.key) for r in conn.execute(stmt)]


def count_entries(conn: Connection, tenant_id: str) -> tuple[int, int]:
    """(entries, bytes of values) the tenant's rows hold, expired ones included until swept."""
    r = conn.execute(
        select(func.count(), func.coalesce(func.sum(t.c.value_bytes), 0)).where(
            t.c.tenant_id == tenant_id
        )
    ).one()
    return int(r[0]), int(r[1])
