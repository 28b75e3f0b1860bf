"""Thread SQL (storage/sql/threads.py) on SQLite and PostgreSQL: reading a run's history back from
the end gives the same selection as reading the thread whole."""

from __future__ import annotations

import random

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
