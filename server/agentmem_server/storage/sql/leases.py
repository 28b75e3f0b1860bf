"""Leases in SQL: background work that must run in one replica at a time (DESIGN §14).

A lease is a row `(name, owner, expires_at)`. `acquire` takes it when it is free, expired, or
already the caller's (renewing it), in one statement; nobody else can hold it until it expires
or is released. A replica that dies simply stops renewing, and another takes over after
`expires_at`.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, or_
from sqlalchemy.dialects import postgresql, sqlite

from .schema import maintenance_leases as t


def acquire(conn: Connection, name: str, owner: str, now: int, duration_us: int) -> bool:
    """Take or renew the lease `name` for `owner` until `now + duration_us`; whether it holds."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t).values(name=name, owner=owner, expires_at=now + duration_us)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.name],
        set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
        where=or_(t.c.expires_at <= now, t.c.owner == owner),
    ).returning(t.c.owner)
    return conn.execute(stmt).first() is not None


def release(conn: Connection, name: str, owner: str) -> None:
    """Give the lease up now, if `owner` holds it."""
    conn.execute(delete(t).where(t.c.name == name, t.c.owner == owner))
