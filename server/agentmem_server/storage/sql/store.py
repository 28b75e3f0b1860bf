"""The SQL store: the engine (SQLite by default, in WAL mode, or PostgreSQL) and its unit of work.

The SQL functions of this package are synchronous SQLAlchemy Core taking a Connection. Services
run them through the store's unit of work (`uow.py`: `transaction()`, `run_in_transaction`,
`run_autocommit`), on the store's own threads; synchronous callers (the CLI) use `begin()`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from .migrations import upgrade
from .schema import metadata
from .uow import SQL_THREADS, UnitOfWork

log = logging.getLogger("agentmem.sql")

# Any fixed 64-bit number works; it only has to be the same in every replica.
_SCHEMA_LOCK_ID = 0x61676D656D


class SqlStore(UnitOfWork):
    """Owns the engine and the threads SQL runs on. `SqlStore.open(url)` creates missing tables
    and adds missing columns and indexes (migrations.py)."""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    def open(cls, url: str, *, threads: int = SQL_THREADS) -> SqlStore:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # A pooled connection per SQL thread: with 8 for 16 threads, connections were
            # opened and closed (six PRAGMAs each) all the time under load.
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=max(threads, 8),
                max_overflow=8,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        store = cls(engine, threads=threads)
        store.create_schema()
        return store

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Replicas starting together would otherwise race on CREATE TABLE.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_ID})
            metadata.create_all(conn)
            # Columns added after a table shipped (archival_writes_in_flight.owner, threads.title)
            upgrade(conn)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL sync is durable across app crashes
    # (only an OS crash can lose the last commits), which is the usual WAL trade-off.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Deleted and replaced memory must not linger in free pages: zero them (some builds default
    # to this, others do not). The WAL's older frames go when it is checkpointed and removed.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()
