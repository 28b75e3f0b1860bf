"""Additive migrations, run on start-up after `create_all` (which only creates missing tables).

A database made by an older release has every table, but maybe not every column or index that
`schema.py` declares now. `upgrade(conn)` adds what is missing, on SQLite and PostgreSQL alike:

- a column missing from its table is added with `ALTER TABLE ... ADD COLUMN`, so every column
  added after a table's first release must be nullable or carry a `server_default`;
- an index missing from its table is created;
- the backfills below give the new columns of existing rows their real values.

Nothing is ever dropped or renamed here. The caller holds the schema lock (store.py), so
replicas starting together do not race.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Table, inspect, update
from sqlalchemy.schema import CreateColumn

from .schema import metadata, threads

log = logging.getLogger("agentmem.sql")

__all__ = ["upgrade"]


def upgrade(conn: Connection) -> list[str]:
    """Adds missing columns and indexes; returns what it added (`table.column`, `index name`)."""
    inspector = inspect(conn)
    added: list[str] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue  # create_all made it whole a moment ago (or the caller skipped it)
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                _add_column(conn, table, column.name)
                added.append(f"{table.name}.{column.name}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
                added.append(str(index.name))
    if "threads.updated_at" in added:
        # Rows from before the column: they last changed when they were created.
        conn.execute(
            update(threads).where(threads.c.updated_at == 0).values(updated_at=threads.c.created_at)
        )
    if added:
        log.info("database schema upgraded: added %s", ", ".join(added))
    return added


def _add_column(conn: Connection, table: Table, name: str) -> None:
    column = table.c[name]
    if not column.nullable and column.server_default is None:
        raise RuntimeError(
            f"cannot add {table.name}.{name} to an existing table: a NOT NULL column added "
            "later needs a server_default (schema.py)"
        )
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    table_name = conn.dialect.identifier_preparer.format_table(table)
    conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {spec}")
