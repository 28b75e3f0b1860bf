"""SQL for the document store (services/store.py): keyed-state entries under a namespace prefix,
the namespaces in use, and the store's own rows (schema.state_store_index: TTL and vectors).

Namespaces are keyed-state namespaces joined by '/'. "Under `p`" means `p` itself or any
namespace starting with `p + '/'`: a range of the primary key in code point order (SQLite's
BINARY, PostgreSQL's "C" collation), since '0' is the character right after '/'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import ColumnElement, Connection, and_, delete, or_, select, tuple_, update

from .schema import state_entries as entries
from .schema import state_store_index as index


@dataclass(frozen=True)
class EntryRow:
    namespace: str
    key: str
    value: Any
    created_at: int
    updated_at: int
    expires_at: Optional[int]


@dataclass(frozen=True)
class VectorRow:
    namespace: str
    key: str
    vectors: bytes


def _entry_row(r: Any) -> EntryRow:
    return EntryRow(r.namespace, r.key, r.value, r.created_at, r.updated_at, r.expires_at)


def _under(column: Any, prefix: str) -> ColumnElement[bool]:
    return or_(column == prefix, and_(column >= prefix + "/", column < prefix + "0"))


def _live(now: int) -> ColumnElement[bool]:
    return or_(entries.c.expires_at.is_(None), entries.c.expires_at > now)


_ENTRY_COLUMNS = (
    entries.c.namespace,
    entries.c.key,
    entries.c.value,
    entries.c.created_at,
    entries.c.updated_at,
    entries.c.expires_at,
)

# ---- the store's rows ---------------------------------------------------------------------


def put_index(
    conn: Connection,
    tenant_id: str,
    namespace: str,
    key: str,
    *,
    ttl_us: Optional[int],
    model_id: Optional[str],
    vectors: Optional[bytes],
) -> None:
    """Replace the entry's store row (none is kept when it has neither a TTL nor vectors)."""
    drop_index(conn, tenant_id, namespace, key)
    if ttl_us is None and vectors is None:
        return
    conn.execute(
        index.insert().values(
            tenant_id=tenant_id,
            namespace=namespace,
            key=key,
            ttl_us=ttl_us,
            model_id=model_id,
            vectors=vectors,
        )
    )


def drop_index(conn: Connection, tenant_id: str, namespace: str, key: str) -> None:
    conn.execute(
        delete(index).where(
            index.c.tenant_id == tenant_id, index.c.namespace == namespace, index.c.key == key
        )
    )


def refresh_ttls(
    conn: Connection, tenant_id: str, pairs: Sequence[tuple[str, str]], now: int
) -> dict[tuple[str, str], int]:
    """Restart the TTL of the live entries among `pairs` that have one; their new expiries."""
    if not pairs:
        return {}
    rows = conn.execute(
        select(index.c.namespace, index.c.key, index.c.ttl_us).where(
            index.c.tenant_id == tenant_id,
            index.c.ttl_us.is_not(None),
            tuple_(index.c.namespace, index.c.key).in_(list(pairs)),
        )
    ).all()
    expiries: dict[tuple[str, str], int] = {}
    for r in rows:
        expires_at = now + int(r.ttl_us)
        done = conn.execute(
            update(entries)
            .where(
                entries.c.tenant_id == tenant_id,
                entries.c.namespace == r.namespace,
                entries.c.key == r.key,
                _live(now),
            )
            .values(expires_at=expires_at)
        )
        if done.rowcount:
            expiries[(r.namespace, r.key)] = expires_at
    return expiries


# ---- reads ----------------------------------------------------------------------------------


def entries_under(
    conn: Connection,
    tenant_id: str,
    prefix: str,
    now: int,
    *,
    limit: Optional[int] = None,
    offset: int = 0,
) -> list[EntryRow]:
    """Live entries under `prefix`, most recently written first."""
    stmt = (
        select(*_ENTRY_COLUMNS)
        .where(entries.c.tenant_id == tenant_id, _under(entries.c.namespace, prefix), _live(now))
        .order_by(entries.c.updated_at.desc(), entries.c.namespace, entries.c.key)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_entry_row(r) for r in conn.execute(stmt)]


def entries_by_key(
    conn: Connection, tenant_id: str, pairs: Sequence[tuple[str, str]], now: int
) -> dict[tuple[str, str], EntryRow]:
    if not pairs:
        return {}
    rows = conn.execute(
        select(*_ENTRY_COLUMNS).where(
            entries.c.tenant_id == tenant_id,
            tuple_(entries.c.namespace, entries.c.key).in_(list(pairs)),
            _live(now),
        )
    )
    return {(r.namespace, r.key): _entry_row(r) for r in rows}


def vectors_under(
    conn: Connection, tenant_id: str, prefix: str, now: int, model_id: str
) -> list[VectorRow]:
    """The index vectors of the live entries under `prefix` made by `model_id`."""
    rows = conn.execute(
        select(index.c.namespace, index.c.key, index.c.vectors)
        .join(
            entries,
            and_(
                entries.c.tenant_id == index.c.tenant_id,
                entries.c.namespace == index.c.namespace,
                entries.c.key == index.c.key,
            ),
        )
        .where(
            index.c.tenant_id == tenant_id,
            _under(index.c.namespace, prefix),
            index.c.vectors.is_not(None),
            index.c.model_id == model_id,
            _live(now),
        )
    )
    return [VectorRow(r.namespace, r.key, bytes(r.vectors)) for r in rows]


def namespaces_under(conn: Connection, tenant_id: str, root: str, now: int) -> list[str]:
    """Every namespace under `root` holding a live entry, in code point order."""
    rows = conn.execute(
        select(entries.c.namespace)
        .where(entries.c.tenant_id == tenant_id, _under(entries.c.namespace, root), _live(now))
        .distinct()
        .order_by(entries.c.namespace)
    )
    return [r.namespace for r in rows]
