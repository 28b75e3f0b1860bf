"""Keyed-state writes in the change feed: set, delete, clear, expire (the sweep), agent deletion;
nothing for writes that change nothing; patterns and namespaces; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from support import auth, next_commit_fails


def events(http: TestClient, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = http.get("/v1/events", params={"limit": 1000, **params}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["events"]  # type: ignore[no-any-return]


def test_state_writes_record_their_events_with_the_value_as_data(http: TestClient, new_key):
    h = auth(new_key("acme"))
    ns = {"namespace": "session/u1"}
    first = http.put(
        "/v1/state/entries/customer_1", params=ns, json={"value": {"tier": "gold"}}, headers=h
    ).json()
    http.put(
        "/v1/state/entries/customer_1",
        params=ns,
        json={"value": 2, "expected_updated_at": first["updated_at"]},
        headers=h,
    )
    assert (
        http.put(
            "/v1/state/entries/customer_1",
            params=ns,
            json={"value": 3, "expected_updated_at": None},
            headers=h,
        ).status_code
        == 409
    )
    http.put("/v1/state/entries/flag", json={"value": True}, headers=h)
    assert http.delete("/v1/state/entries/flag", headers=h).status_code == 200
    assert (
        http.delete("/v1/state/entries/flag", headers=h).status_code == 200
    )  # nothing left: no event
    http.put("/v1/state/entries/other", params=ns, json={"value": None}, headers=h)
    assert http.delete("/v1/state/entries", params=ns, headers=h).status_code == 200
    http.delete("/v1/state/entries", params=ns, headers=h)  # already empty: no event

    got = events(http, h, kinds=["state"])
    assert [(e["action"], e["key"], e["namespace"], e["data"]) for e in got] == [
        ("set", "customer_1", ["session", "u1"], {"tier": "gold"}),
        ("set", "customer_1", ["session", "u1"], 2),
        ("set", "flag", [], True),
        ("delete", "flag", [], None),
        ("set", "other", ["session", "u1"], None),
        ("clear", "", ["session", "u1"], None),
    ]
    assert got[0]["updated_at"] == first["updated_at"]
    # Patterns match keys; a clear of the namespace concerns every key, so it passes them.
    assert [e["action"] for e in events(http, h, patterns=["customer_*"])] == [
        "set",
        "set",
        "clear",
    ]
    assert len(events(http, h, namespace="session")) == 4


def test_a_state_write_whose_commit_fails_leaves_no_event(http: TestClient, new_key):
    h = auth(new_key("acme"))
    engine = http.app.state.services.sql.engine  # type: ignore[attr-defined]
    with next_commit_fails(engine):
        http.put("/v1/state/entries/k", json={"value": 1}, headers=h)
    http.put("/v1/state/entries/k", json={"value": 2}, headers=h)
    assert [(e["seq"], e["data"]) for e in events(http, h)] == [(1, 2)]


def test_expired_entries_become_expire_events_when_swept(http: TestClient, new_key):
    h = auth(new_key("acme"))
    services = http.app.state.services  # type: ignore[attr-defined]
    http.put(
        "/v1/state/entries/short",
        params={"namespace": "workflow/w1"},
        json={"value": 1, "ttl": 5},
        headers=h,
    )
    http.put("/v1/state/entries/long", json={"value": 1}, headers=h)
    services.state.clock = lambda: 2**62  # far past every expiry
    swept = http.portal.call(services.state.sweep)  # type: ignore[attr-defined]
    assert swept == 1
    got = events(http, h)
    assert [(e["action"], e["key"], e["namespace"]) for e in got][-1] == (
        "expire",
        "short",
        ["workflow", "w1"],
    )


def test_deleting_an_agent_clears_its_state_namespace_in_the_feed(http: TestClient, new_key):
    h = auth(new_key("acme"))
    http.post("/v1/agents", json={"agent_id": "bot"}, headers=h)
    http.put("/v1/state/entries/k", params={"namespace": "agent/bot"}, json={"value": 1}, headers=h)
    http.put(
        "/v1/state/entries/k", params={"namespace": "agent/bot/sub"}, json={"value": 1}, headers=h
    )
    http.delete("/v1/agents/bot", headers=h)
    got = events(http, h, namespace="agent/bot")
    assert [(e["kind"], e["action"]) for e in got] == [
        ("agent", "create"),
        ("state", "set"),
        ("state", "set"),
        ("state", "clear"),
        ("agent", "delete"),
    ]
    assert got[3]["namespace"] == ["agent", "bot"]
