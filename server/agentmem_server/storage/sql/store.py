"""The SQL engine: SQLite (default, WAL) or PostgreSQL, opened from settings.

Store methods are synchronous SQLAlchemy Core; services call them through `asyncio.to_thread`
so the event loop never blocks on the database.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from .schema import metadata

log = logging.getLogger("agentmem.sql")

# Any fixed 64-bit number works; it only has to be the same in every replica.
_SCHEMA_LOCK_ID = 0x61676D656D


class SqlStore:
    """Owns the engine. `SqlStore.open(url)` creates missing tables."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # Single-statement work (key lookups, reads, the guarded UPDATE ... RETURNING) is atomic by
        # itself; running it without BEGIN/COMMIT saves two round trips per request on PostgreSQL.
        self._autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    def open(cls, url: str) -> "SqlStore":
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=8,
                max_overflow=16,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        store = cls(engine)
        store.create_schema()
        return store

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Replicas starting together would otherwise race on CREATE TABLE.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_ID})
            metadata.create_all(conn)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def single_statements(self) -> Iterator[Connection]:
        """A connection for work where each statement stands alone: no surrounding transaction."""
        with self._autocommit_engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
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
