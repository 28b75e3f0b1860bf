"""The change feed's log over HTTP: one event per committed write, none for a write that did not
happen, paging and filters, tenant isolation; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from support import auth, next_commit_fails


def events(http: TestClient, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = http.get("/v1/events", params={"limit": 1000, **params}, headers=h)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["has_more"] is False
    return page["events"]


def test_every_write_kind_appends_one_event_in_order(http: TestClient, new_key):
    h = auth(new_key("acme"))
    created = http.put(
        "/v1/memory/core", json={"content": "v1", "expected_updated_at": None}, headers=h
    ).json()
    updated = http.put(
        "/v1/memory/core",
        json={"content": "v2", "expected_updated_at": created["updated_at"]},
        headers=h,
    ).json()
    appended = http.post("/v1/memory/core/append", json={"text": "more\nlines"}, headers=h).json()
    assert http.post("/v1/agents", json={"agent_id": "bot"}, headers=h).status_code == 201
    http.post(
        "/v1/memory/archival/append", params={"agent_id": "bot"}, json={"text": "a\nb"}, headers=h
    )
    http.post(
        "/v1/memory/archival/append", params={"agent_id": "bot"}, json={"text": "c"}, headers=h
    )
    arch = http.get("/v1/memory/archival", params={"agent_id": "bot"}, headers=h).json()
    http.put(
        "/v1/memory/archival",
        params={"agent_id": "bot"},
        json={"content": "x\ny", "expected_updated_at": arch["updated_at"]},
        headers=h,
    )
    assert http.delete("/v1/memory/core", headers=h).status_code == 204
    assert http.delete("/v1/agents/bot", headers=h).status_code == 204

    got = events(http, h)
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert [(e["kind"], e["action"], e["key"], e["namespace"]) for e in got] == [
        ("core", "update", "core", []),
        ("core", "update", "core", []),
        ("core", "append", "core", []),
        ("agent", "create", "bot", ["agent", "bot"]),
        ("archival", "append", "archival", ["agent", "bot"]),
        ("archival", "append", "archival", ["agent", "bot"]),
        ("archival", "update", "archival", ["agent", "bot"]),
        ("core", "delete", "core", []),
        ("archival", "delete", "archival", ["agent", "bot"]),  # the agent's memory goes first
        ("agent", "delete", "bot", ["agent", "bot"]),
    ]
    # What a subscriber needs without a second read.
    assert got[0]["data"] == {
        "updated_at": created["updated_at"].replace("Z", "+00:00"),
        "line_count": 1,
        "content": "v1",
    }
    assert (
        got[0]["updated_at"] == created["updated_at"]
        and got[1]["updated_at"] == updated["updated_at"]
    )
    assert (
        got[1]["data"]["content"] == "v2"
        and got[1]["scope"] == "user"
        and got[1]["agent_id"] is None
    )
    assert got[2]["data"]["content"] == "v2\nmore\nlines"
    assert (got[2]["data"]["start_line"], got[2]["data"]["end_line"]) == (2, 3)
    assert got[2]["data"]["updated_at"] == appended["updated_at"].replace("Z", "+00:00")
    assert (got[4]["data"]["start_line"], got[4]["data"]["end_line"]) == (1, 2)
    assert (got[5]["data"]["start_line"], got[5]["data"]["end_line"]) == (3, 3)
    assert got[4]["scope"] == "agent" and got[4]["agent_id"] == "bot"
    assert got[6]["data"]["line_count"] == 2 and "content" not in got[6]["data"]
    assert got[7]["data"] is None
    assert updated["content"] == "v2"


def test_writes_that_change_nothing_leave_no_event(http: TestClient, new_key):
    h = auth(new_key("acme"))
    created = http.put(
        "/v1/memory/core", json={"content": "v1", "expected_updated_at": None}, headers=h
    ).json()
    assert (
        http.put(
            "/v1/memory/core", json={"content": "x", "expected_updated_at": None}, headers=h
        ).status_code
        == 409
    )
    stale = {"content": "x", "expected_updated_at": "2020-01-01T00:00:00Z"}
    assert http.put("/v1/memory/core", json=stale, headers=h).status_code == 409
    assert http.delete("/v1/memory/archival", headers=h).status_code == 204  # nothing to delete
    assert (
        http.post("/v1/memory/core/append", json={"text": "y" * 9000}, headers=h).status_code == 413
    )
    assert http.post("/v1/agents", json={"agent_id": "bot"}, headers=h).status_code == 201
    assert http.post("/v1/agents", json={"agent_id": "bot"}, headers=h).status_code == 409
    got = events(http, h)
    assert [(e["seq"], e["kind"], e["action"]) for e in got] == [
        (1, "core", "update"),
        (2, "agent", "create"),
    ]
    assert created["content"] == "v1"


@pytest.mark.parametrize("block_type", ["core", "archival"])
def test_a_write_whose_commit_fails_leaves_no_event_and_takes_no_seq(
    http: TestClient, new_key, block_type
):
    h = auth(new_key("acme"))
    engine = http.app.state.services.sql.engine  # type: ignore[attr-defined]
    http.post(f"/v1/memory/{block_type}/append", json={"text": "kept"}, headers=h)
    with next_commit_fails(engine):
        http.post(f"/v1/memory/{block_type}/append", json={"text": "lost"}, headers=h)
    http.post(f"/v1/memory/{block_type}/append", json={"text": "kept too"}, headers=h)
    got = events(http, h)
    # The rolled-back write took its seq back with it: no gap, and nothing recorded for it.
    assert [e["seq"] for e in got] == [1, 2]
    assert [e["data"]["end_line"] for e in got] == [1, 2]
    content = http.get(f"/v1/memory/{block_type}", headers=h).json()["content"]
    assert content == "kept\nkept too"


def test_pages_continue_from_next_after(http: TestClient, new_key):
    h = auth(new_key("acme"))
    for i in range(7):
        http.post("/v1/memory/core/append", json={"text": f"line {i}"}, headers=h)
    seen: list[int] = []
    after = 0
    while True:
        page = http.get("/v1/events", params={"after": after, "limit": 3}, headers=h).json()
        seen += [e["seq"] for e in page["events"]]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert seen == list(range(1, 8)) and after == 7
    empty = http.get("/v1/events", params={"after": 7}, headers=h).json()
    assert empty == {"events": [], "next_after": 7, "has_more": False}


def test_patterns_kinds_and_namespace_filter(http: TestClient, new_key):
    h = auth(new_key("acme"))
    for agent_id in ("customer_1", "customer_2", "user_7.preferences", "Customer_3", "other"):
        assert http.post("/v1/agents", json={"agent_id": agent_id}, headers=h).status_code == 201
    http.post(
        "/v1/memory/core/append", params={"agent_id": "customer_1"}, json={"text": "x"}, headers=h
    )
    http.post("/v1/memory/core/append", json={"text": "x"}, headers=h)

    def keys(**params: Any) -> list[str]:
        return [f"{e['kind']}:{e['key']}" for e in events(http, h, **params)]

    assert keys(patterns=["customer_*"]) == [
        "agent:customer_1",
        "agent:customer_2",
    ]  # case-sensitive
    assert keys(patterns=["customer_*", "user_*.preferences"]) == [
        "agent:customer_1",
        "agent:customer_2",
        "agent:user_7.preferences",
    ]
    assert keys(patterns=["[Cc]ustomer_[13]"]) == ["agent:customer_1", "agent:Customer_3"]
    assert keys(kinds=["core"]) == ["core:core", "core:core"]
    assert keys(namespace="agent/customer_1") == ["agent:customer_1", "core:core"]
    assert keys(namespace="agent/customer_1", kinds=["agent"]) == ["agent:customer_1"]
    assert len(keys(namespace="agent")) == 6
    assert keys(patterns=["100%_off"]) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kinds": "blocks"}, "kinds"),
        ({"limit": 1001}, "limit"),
        ({"after": -1}, "after"),
        ({"namespace": "a/b c"}, "namespace"),
        ({"patterns": ""}, "patterns"),
    ],
)
def test_bad_filters_are_422_naming_the_field(http: TestClient, new_key, params, field):
    r = http.get("/v1/events", params=params, headers=auth(new_key("acme")))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_a_tenant_sees_only_its_own_events_randomized(http: TestClient, new_key):
    rng = random.Random(15)
    tenants = {name: auth(new_key(name)) for name in ("t1", "t2", "t3")}
    written: dict[str, list[str]] = {name: [] for name in tenants}
    for i in range(60):
        name = rng.choice(list(tenants))
        marker = f"{name}-{i}"
        http.post(
            "/v1/memory/core/append",
            params={"agent_id": f"a{i % 4}"},
            json={"text": marker},
            headers=tenants[name],
        )
        written[name].append(marker)
    for name, h in tenants.items():
        got = events(http, h)
        assert [e["seq"] for e in got] == list(range(1, len(written[name]) + 1))
        assert [e["data"]["content"].split("\n")[-1] for e in got] == written[name]
