"""Crash repair (issue 12, items 3 and 4), on SQLite and PostgreSQL.

- Rows of an archival write that never committed are never recalled, and the line numbers the
  next append takes (the same ones) point at its own text. Before: the orphan was recalled (for
  10+ minutes), and after the next append recall showed it at that append's line numbers.
- A server repairs what a dead process left before it serves. Before: a fixed 10-minute grace,
  even at start-up.
- One write whose repair fails is retried, then quarantined (logged, counted, still hidden); it
  never stops the repair of the others. Before: its exception ended every pass.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from agentmem_server import Settings, create_app
from agentmem_server.services.repair import MAX_ATTEMPTS
from agentmem_server.storage.base import ScopeKey

from support import ADMIN_KEY, auth, dies_before_commit

SECRET = "the secret word is pineapple"


def _count(http: TestClient, table: str) -> int:
    with http.app.state.services.sql.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _recall(
    http: TestClient, h: dict[str, str], query: str, agent_id: str = "a1"
) -> list[tuple[int, str]]:
    body = {"query": query, "agent_id": agent_id, "mode": "keyword", "limit": 10}
    r = http.post("/v1/memory/recall", json=body, headers=h)
    assert r.status_code == 200, r.text
    return [(hit["line_number"], hit["content"]) for hit in r.json()]


def _tenant_id(http: TestClient, name: str) -> str:
    with http.app.state.services.sql.engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM tenants WHERE name = :n"), {"n": name}
        ).scalar_one()


def _index_contents(
    http: TestClient, tenant_id: str, query: str, agent_id: str = "a1"
) -> list[str]:
    services = http.app.state.services
    hits = http.portal.call(
        partial(
            services.archival.recall,
            tenant_id,
            query,
            scopes=[ScopeKey("agent", agent_id)],
            mode="keyword",
            limit=10,
        )
    )
    return [h.content for h in hits]


def _new_key(http: TestClient, tenant: str) -> str:
    r = http.post(f"/v1/admin/tenants/{tenant}/keys", headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    return r.json()["key"]


def test_an_uncommitted_write_is_never_recalled_and_its_line_numbers_stay_right(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo"}, headers=h)
    with dies_before_commit(http.app.state.services.sql.engine):
        http.post("/v1/memory/archival/append?agent_id=a1", json={"text": SECRET}, headers=h)
    assert _count(http, "archival_writes_in_flight") == 1
    assert SECRET in _index_contents(http, _tenant_id(http, "acme"), "secret pineapple"), (
        "the orphan is in the index"
    )
    assert _recall(http, h, "secret pineapple") == []
    # The next append numbers its line 3 again (the orphan never committed): recall shows its text.
    later = http.post(
        "/v1/memory/archival/append?agent_id=a1", json={"text": "the fruit is mango"}, headers=h
    )
    assert later.json()["start_line"] == 3
    assert _recall(http, h, "fruit mango") == [(3, "the fruit is mango")]
    assert _recall(http, h, "secret pineapple") == []
    hybrid = http.post(
        "/v1/memory/recall",
        json={"query": "secret word pineapple", "agent_id": "a1", "limit": 10},
        headers=h,
    ).json()
    assert SECRET not in [hit["content"] for hit in hybrid]


def test_a_server_repairs_what_a_dead_process_left_before_it_serves(app_settings: Settings) -> None:
    with TestClient(create_app(app_settings)) as http:
        key = _new_key(http, "acme")
        h = auth(key)
        http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo"}, headers=h)
        with dies_before_commit(http.app.state.services.sql.engine):
            http.post("/v1/memory/archival/append?agent_id=a1", json={"text": SECRET}, headers=h)
        assert _count(http, "archival_writes_in_flight") == 1
    # That process is gone (this test's app stopped; a killed one never unregisters, and its pid
    # is gone: the same judgement). The next server repairs during its start, at once.
    with TestClient(create_app(app_settings)) as http:
        assert _count(http, "archival_writes_in_flight") == 0
        tenant_id = _tenant_id(http, "acme")
        assert SECRET not in _index_contents(http, tenant_id, "secret pineapple")
        # (one chunk, or one unit per line, each returning both lines)
        assert set(_index_contents(http, tenant_id, "one two")) == {"one\ntwo"}
        assert (
            http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"] == "one\ntwo"
        )


def _orphan(http: TestClient, **values: Any) -> None:
    row = {
        "write_id": "wr_bad",
        "tenant_id": "ten_x",
        "agent_id": "../x",
        "kind": "append",
        "started_at": 1,
        "owner": None,
    }
    row.update(values)
    with http.app.state.services.sql.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO archival_writes_in_flight "
                "(write_id, tenant_id, agent_id, kind, started_at, owner) "
                "VALUES (:write_id, :tenant_id, :agent_id, :kind, :started_at, :owner)"
            ),
            row,
        )


def test_one_bad_record_never_stops_the_repair(
    http: TestClient, new_key, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = auth(new_key("acme"))
    http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo"}, headers=h)
    with dies_before_commit(http.app.state.services.sql.engine):
        http.post("/v1/memory/archival/append?agent_id=a1", json={"text": SECRET}, headers=h)
    # The oldest write in flight is one whose undo raises (an old import's `../x` scope).
    _orphan(http)
    memory = http.app.state.services.memory
    index = memory.archival_index
    real_discard = index.discard_write

    async def discard(tenant_id: str, scope: ScopeKey, write_id: str) -> None:
        if write_id == "wr_bad":
            raise ValueError("cannot open the index of scope '../x'")
        await real_discard(tenant_id, scope, write_id)

    monkeypatch.setattr(index, "discard_write", discard)
    repair = partial(memory.repair.repair, older_than=timedelta(0))
    with caplog.at_level(logging.WARNING, logger="agentmem.repair"):
        first = http.portal.call(repair)
    assert (first.repaired, first.failed, first.quarantined) == (1, 1, 0)
    assert _recall(http, h, "secret pineapple") == []
    assert _count(http, "archival_writes_in_flight") == 1  # the bad one, to retry
    for _ in range(MAX_ATTEMPTS - 1):
        last = http.portal.call(repair)
    assert (last.repaired, last.quarantined) == (0, 1)
    assert memory.repair.quarantined_total == 1
    assert _count(http, "archival_writes_in_flight") == 0
    assert _count(http, "archival_writes_quarantined") == 1
    assert any("quarantined" in r.message and "wr_bad" in r.message for r in caplog.records)
    assert http.portal.call(repair).repaired == 0  # quarantined writes are out of the pass


def test_a_write_of_a_live_process_is_left_alone(http: TestClient, new_key) -> None:
    """An owner registered and beating on another host is alive; one long silent is not."""
    services = http.app.state.services
    with services.sql.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO server_processes (id, host, pid, started_at, heartbeat_at) "
                "VALUES ('proc_other', 'another-host', 1, 1, :now)"
            ),
            {"now": 2**62},
        )
    _orphan(http, write_id="wr_live", agent_id="a1", owner="proc_other", started_at=1)
    assert http.portal.call(services.memory.repair.repair).repaired == 0
    assert _count(http, "archival_writes_in_flight") == 1
    with services.sql.engine.begin() as conn:
        conn.execute(text("UPDATE server_processes SET heartbeat_at = 1 WHERE id = 'proc_other'"))
    assert http.portal.call(services.memory.repair.repair).repaired == 1
    assert _count(http, "archival_writes_in_flight") == 0
