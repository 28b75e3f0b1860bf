"""Start-up migrations (storage/sql/migrations.py) on a database made by the schema before threads
got title, metadata and updated_at and messages got kind, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from agentmem_server.storage.sql import migrations
from agentmem_server.storage.sql import threads as threads_sql
from agentmem_server.storage.sql.conversations import list_messages
from agentmem_server.storage.sql.store import SqlStore

# The two tables as the release before this one created them (its schema.py, verbatim in SQL).
OLD_TABLES = [
    """CREATE TABLE threads (
        id VARCHAR(40) NOT NULL PRIMARY KEY,
        tenant_id VARCHAR(40) NOT NULL,
        agent_id VARCHAR(128) NOT NULL,
        created_at BIGINT NOT NULL
    )""",
    "CREATE INDEX ix_threads_agent ON threads (tenant_id, agent_id)",
    """CREATE TABLE messages (
        id VARCHAR(40) NOT NULL PRIMARY KEY,
        tenant_id VARCHAR(40) NOT NULL,
        thread_id VARCHAR(40) NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role VARCHAR(16) NOT NULL,
        content TEXT NOT NULL,
        run_id VARCHAR(40),
        created_at BIGINT NOT NULL,
        CONSTRAINT uq_message_seq UNIQUE (thread_id, seq)
    )""",
    "INSERT INTO threads VALUES ('thr_old', 'ten_a', 'helper', 1000)",
    "INSERT INTO messages VALUES ('msg_1', 'ten_a', 'thr_old', 1, 'user', 'Hi', 'run_1', 1000)",
    "INSERT INTO messages VALUES "
    "('msg_2', 'ten_a', 'thr_old', 2, 'assistant', 'Hello', 'run_1', 2000)",
]


@pytest.fixture
def old_database(database_url: str) -> str:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for statement in OLD_TABLES:
            conn.execute(text(statement))
    engine.dispose()
    return database_url


def test_opening_an_old_database_adds_the_new_columns_and_keeps_its_rows(old_database: str):
    store = SqlStore.open(old_database)
    try:
        columns = {c["name"] for c in inspect(store.engine).get_columns("threads")}
        assert {"title", "metadata_json", "updated_at"} <= columns
        assert "kind" in {c["name"] for c in inspect(store.engine).get_columns("messages")}
        assert "ix_threads_created" in {
            i["name"] for i in inspect(store.engine).get_indexes("threads")
        }
        with store.begin() as conn:
            old = threads_sql.get_thread(conn, "ten_a", "thr_old")
            assert old is not None
            assert (old.agent_id, old.title, old.metadata, old.updated_at) == (
                "helper",
                None,
                {},
                1000,
            )
            assert [
                (m.role, m.content, m.kind) for m in list_messages(conn, "ten_a", "thr_old")
            ] == [
                ("user", "Hi", "message"),
                ("assistant", "Hello", "message"),
            ]
            # New writes work on the upgraded tables.
            threads_sql.update_thread(
                conn, "ten_a", "thr_old", {"title": "Old", "metadata": {"a": 1}}, 5000
            )
            threads_sql.append_messages(conn, "ten_a", "thr_old", [("system", "note")], 6000)
            again = threads_sql.get_thread(conn, "ten_a", "thr_old")
            assert again is not None and (again.title, again.metadata, again.updated_at) == (
                "Old",
                {"a": 1},
                5000,
            )
            assert [m.content for m in list_messages(conn, "ten_a", "thr_old")][-1] == "note"
    finally:
        store.close()


def test_upgrade_is_idempotent(old_database: str):
    SqlStore.open(old_database).close()
    store = SqlStore.open(old_database)
    try:
        with store.begin() as conn:
            assert migrations.upgrade(conn) == []
    finally:
        store.close()


def test_a_fresh_database_needs_no_upgrade(sql_store: SqlStore):
    with sql_store.begin() as conn:
        assert migrations.upgrade(conn) == []
