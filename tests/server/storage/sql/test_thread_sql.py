"""Thread SQL (storage/sql/threads.py) on SQLite and PostgreSQL: reading a run's history back from
the end gives the same selection as reading the thread whole."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event

from agentmem_server.services.prompt import message_tokens, select_history
from agentmem_server.storage.sql import threads as sql
from agentmem_server.storage.sql.conversations import insert_agent, list_messages, save_turn
from agentmem_server.storage.sql.store import SqlStore

T = "ten_a"


def test_read_back_selects_the_same_history_as_the_whole_thread(sql_store: SqlStore):
    rng = random.Random(16)
    with sql_store.begin() as conn:
        insert_agent(conn, T, "helper", instructions="", model=None, metadata={}, now_us=1)
        sql.insert_thread(conn, T, "thr_1", agent_id="helper", title=None, metadata={}, now_us=1)
        for i in range(400):
            words = " ".join("word" for _ in range(rng.randint(1, 60)))
            if rng.random() < 0.5:
                save_turn(
                    conn,
                    tenant_id=T,
                    agent_id="helper",
                    thread_id="thr_1",
                    new_thread=False,
                    run_id=f"run_{i}",
                    user_message=f"q{i} {words}",
                    output=f"a{i}",
                    started_us=i,
                    finished_us=i,
                    record={},
                )
            else:
                sql.append_messages(conn, T, "thr_1", [("user", f"m{i} {words}")], i)
        whole = list_messages(conn, T, "thr_1")
        for budget in [0, 5, 50, 400, 1000, 4000, 10**6]:
            back = sql.read_back(conn, T, "thr_1", budget=budget, cost=message_tokens, page=37)
            assert select_history(back, budget) == select_history(whole, budget), budget
            assert back == whole[len(whole) - len(back) :]
        assert sql.read_back(conn, T, "thr_1", budget=10**9, cost=message_tokens) == whole


@pytest.mark.postgres
@pytest.mark.parametrize("read", ["page", "read_back"])
def test_a_long_thread_is_read_along_its_index_before_postgres_has_statistics(
    postgres_url: str, read: str
):
    # Until ANALYZE has seen a thread grow, PostgreSQL took a 20k-message thread for a few
    # hundred rows and read a page as a bitmap scan of all of them plus a sort (27-35 ms for a
    # page of 100k, against 1 ms along the index).
    store = SqlStore.open(postgres_url)
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM messages" in statement:
            statements.append((statement, parameters))

    try:
        with store.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
            insert_agent(conn, T, "helper", instructions="", model=None, metadata={}, now_us=1)
            sql.insert_thread(
                conn, T, "thr_1", agent_id="helper", title=None, metadata={}, now_us=1
            )
            sql.append_messages(conn, T, "thr_1", [("user", f"m{i}") for i in range(20_000)], 1)
        event.listen(store.engine, "before_cursor_execute", seen)
        with store.begin() as conn:
            if read == "page":
                got = sql.page_messages(conn, T, "thr_1", limit=50)
                assert [m.content for m in got] == [f"m{i}" for i in range(50)]
            else:
                got = sql.read_back(conn, T, "thr_1", budget=10, cost=lambda _: 1)
                assert [m.content for m in got][-1] == "m19999"
            event.remove(store.engine, "before_cursor_execute", seen)
            (statement, parameters), *_ = statements
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
        assert "Bitmap" not in plan and "Sort" not in plan, plan
        assert "Index Scan" in plan, plan
    finally:
        store.close()
