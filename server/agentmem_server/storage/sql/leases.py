"""Leases in SQL: background work that must run in one replica at a time (DESIGN §14).

A lease is a row `(name, owner, expires_at)`. `acquire` takes it when it is free, expired, or
already the caller's (renewing it), in one statement; nobody else can hold it until it expires
or is released. A replica that dies simply stops renewing, and another takes over after
`expires_at`.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, or_
from sqlalchemy.dialects import postgresql, sqlite

from ..base import now_micros
from .schema import maintenance_leases as t
from .uow import UnitOfWork


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


def holder_of(conn: Connection, name: str, now: int) -> str | None:
    """Who holds the lease `name` at `now`; None when it is free."""
    row = conn.execute(t.select().where(t.c.name == name, t.c.expires_at > now)).first()
    return None if row is None else str(row.owner)


class SqlLeases:
    """Leases of one holder (a server process or a CLI run) in the SQL store: the `Leases` of
    storage/base.py, which archival maintenance takes per table (storage/lance/maintenance.py)."""

    def __init__(self, sql: UnitOfWork, *, holder: str):
        self.sql = sql
        self.holder = holder

    async def acquire(self, name: str, *, ttl_s: float) -> bool:
        return await self.sql.run_in_transaction(
            acquire, name, self.holder, now_micros(), int(ttl_s * 1_000_000)
        )

    async def release(self, name: str) -> None:
        await self.sql.run_in_transaction(release, name, self.holder)
