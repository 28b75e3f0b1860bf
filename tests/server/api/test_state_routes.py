"""The keyed-state HTTP contract: statuses, JSON error bodies, guards, namespaces, tenancy."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from support import auth


def url(key: str, namespace: str = "", kind: str = "entries") -> str:
    path = f"/v1/state/{kind}/{quote(key, safe='')}"
    return f"{path}?namespace={quote(namespace, safe='')}" if namespace else path


def test_set_get_list_delete_clear(http: TestClient, new_key):
    h = auth(new_key("acme"))
    r = http.put(url("cart", "session/u1"), json={"value": {"items": 2}}, headers=h)
    assert r.status_code == 200, r.text
    entry = r.json()
    assert entry["namespace"] == ["session", "u1"] and entry["key"] == "cart"
    assert entry["value"] == {"items": 2} and entry["expires_at"] is None
    assert http.get(url("cart", "session/u1"), headers=h).json()["value"] == {"items": 2}
    assert http.get(url("cart"), headers=h).status_code == 404  # the root is another keyspace

    http.put(url("a/b", "session/u1"), json={"value": 1}, headers=h)
    listed = http.get("/v1/state/entries?namespace=session/u1", headers=h).json()
    assert [i["key"] for i in listed["items"]] == ["a/b", "cart"] and listed["next_cursor"] is None
    assert http.get(url("a/b", "session/u1"), headers=h).json()["value"] == 1

    deleted = http.delete(url("cart", "session/u1"), headers=h)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
    assert http.delete(url("cart", "session/u1"), headers=h).json() == {"deleted": False}
    cleared = http.delete("/v1/state/entries?namespace=session/u1", headers=h)
    assert cleared.json() == {"deleted": 1}
    assert http.get("/v1/state/entries?namespace=session/u1", headers=h).json()["items"] == []


def test_guarded_write_conflict_carries_the_current_entry(http: TestClient, new_key):
    h = auth(new_key("acme"))
    first = http.put(url("n"), json={"value": 1, "expected_updated_at": None}, headers=h).json()
    again = http.put(url("n"), json={"value": 9, "expected_updated_at": None}, headers=h)
    assert again.status_code == 409
    err = again.json()["error"]
    assert err["type"] == "conflict" and err["field"] == "expected_updated_at"
    assert err["current"]["value"] == 1 and err["current"]["key"] == "n"
    second = http.put(
        url("n"), json={"value": 2, "expected_updated_at": first["updated_at"]}, headers=h
    )
    assert second.status_code == 200
    assert datetime.fromisoformat(second.json()["updated_at"]) > datetime.fromisoformat(
        first["updated_at"]
    )
    stale = http.put(
        url("n"), json={"value": 3, "expected_updated_at": first["updated_at"]}, headers=h
    )
    assert stale.status_code == 409 and stale.json()["error"]["current"]["value"] == 2
    lww = http.put(url("n"), json={"value": 4}, headers=h)
    assert lww.status_code == 200 and lww.json()["value"] == 4


def test_lookup_answers_where_it_found_the_key(http: TestClient, new_key):
    h = auth(new_key("acme"))
    http.put(url("tier"), json={"value": "standard"}, headers=h)
    http.put(url("tier", "agent/bot"), json={"value": "agent"}, headers=h)
    r = http.get(
        url("tier", kind="lookup") + "?workflow_id=wf-1&session_id=u1&agent_id=bot", headers=h
    )
    assert r.status_code == 200 and r.json()["namespace"] == ["agent", "bot"]
    assert http.get(url("tier", kind="lookup"), headers=h).json()["value"] == "standard"
    assert http.get(url("nope", kind="lookup") + "?agent_id=bot", headers=h).status_code == 404


def test_ttl_sets_expires_at(http: TestClient, new_key):
    h = auth(new_key("acme"))
    r = http.put(url("k"), json={"value": 1, "ttl": 3600}, headers=h)
    entry = r.json()
    delta = datetime.fromisoformat(entry["expires_at"]) - datetime.fromisoformat(
        entry["updated_at"]
    )
    assert delta.total_seconds() == 3600


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field", "limit"),
    [
        ("PUT", url("k" * 256), {"value": 1}, 422, "key", 255),
        ("PUT", url("a\x01b"), {"value": 1}, 422, "key", 255),
        ("PUT", url("k", "/".join("a" * 9)), {"value": 1}, 422, "namespace", 8),
        ("PUT", url("k", "session/has space"), {"value": 1}, 422, "namespace", None),
        ("PUT", url("k", "session//x"), {"value": 1}, 422, "namespace", None),
        ("PUT", url("k"), {"value": "x" * 70_000}, 413, "value", 65536),
        ("PUT", url("k"), {"value": 1, "ttl": 0}, 422, "ttl", 0),
        ("PUT", url("k"), {"value": 1, "ttl": 1e12}, 422, "ttl", 3153600000),
        ("PUT", url("k"), {"value": "a\x00b"}, 422, "value", None),
        ("PUT", url("k"), {}, 422, "value", None),
        (
            "PUT",
            url("k"),
            {"value": 1, "expected_updated_at": "2025-01-01T00:00:00"},
            422,
            "expected_updated_at",
            None,
        ),
        ("GET", "/v1/state/entries?limit=1001", None, 422, "limit", 1000),
        ("GET", "/v1/state/entries?limit=0", None, 422, "limit", 1),
        ("GET", "/v1/state/entries?cursor=%21%21", None, 422, "cursor", None),
        ("GET", url("k", kind="lookup") + "?agent_id=a%20b", None, 422, "agent_id", None),
    ],
)
def test_bad_input_is_4xx_naming_field_and_limit_and_changes_nothing(
    http: TestClient, new_key, method, path, body, status, field, limit
):
    h = auth(new_key("acme"))
    r = http.request(method, path, json=body, headers=h)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field
    if limit is not None:
        assert err["limit"] == limit
    assert http.get("/v1/state/entries", headers=h).json()["items"] == []


def test_nan_is_not_a_json_value(http: TestClient, new_key):
    h = auth(new_key("acme"))
    r = http.put(
        url("k"), content=b'{"value": NaN}', headers={**h, "content-type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    assert http.get("/v1/state/entries", headers=h).json()["items"] == []


def test_another_tenants_state_is_invisible(http: TestClient, new_key):
    a, b = auth(new_key("a")), auth(new_key("b"))
    http.put(url("secret", "agent/bot"), json={"value": "a's"}, headers=a)
    assert http.get(url("secret", "agent/bot"), headers=b).status_code == 404
    assert http.get(url("secret", kind="lookup") + "?agent_id=bot", headers=b).status_code == 404
    assert http.get("/v1/state/entries?namespace=agent/bot", headers=b).json()["items"] == []
    assert http.delete(url("secret", "agent/bot"), headers=b).json() == {"deleted": False}
    assert http.delete("/v1/state/entries?namespace=agent/bot", headers=b).json() == {"deleted": 0}
    assert http.get(url("secret", "agent/bot"), headers=a).json()["value"] == "a's"


def test_state_needs_a_key(http: TestClient):
    assert http.get("/v1/state/entries").status_code == 401
