"""The memory HTTP contract: statuses, JSON error bodies, tenancy, guards, limits."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from agentmem_server import create_app

from support import auth, make_settings


def test_healthz_needs_no_key(http: TestClient):
    assert http.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer am_wrong"}])
def test_missing_or_wrong_key_is_401_with_json_error(http: TestClient, headers):
    r = http.get("/v1/memory", headers=headers)
    assert r.status_code == 401
    body = r.json()["error"]
    assert body["type"] == "authentication_error"
    assert body["request_id"] == r.headers["x-request-id"]


def test_create_conflict_and_guarded_update(http: TestClient, new_key):
    h = auth(new_key("acme"))
    created = http.put(
        "/v1/memory/core", json={"content": "v1", "expected_updated_at": None}, headers=h
    )
    assert created.status_code == 200, created.text
    first = created.json()
    assert first["scope"] == "user" and first["agent_id"] is None and first["line_count"] == 1

    again = http.put(
        "/v1/memory/core", json={"content": "v1b", "expected_updated_at": None}, headers=h
    )
    assert again.status_code == 409
    assert (
        again.json()["error"]["current_updated_at"]
        == datetime.fromisoformat(first["updated_at"]).isoformat()
    )

    updated = http.put(
        "/v1/memory/core",
        json={"content": "v2", "expected_updated_at": first["updated_at"]},
        headers=h,
    )
    assert updated.status_code == 200
    assert datetime.fromisoformat(updated.json()["updated_at"]) > datetime.fromisoformat(
        first["updated_at"]
    )

    stale = http.put(
        "/v1/memory/core",
        json={"content": "lost", "expected_updated_at": first["updated_at"]},
        headers=h,
    )
    assert stale.status_code == 409
    err = stale.json()["error"]
    assert err["type"] == "conflict" and err["field"] == "expected_updated_at"
    assert (
        err["current_updated_at"]
        == datetime.fromisoformat(updated.json()["updated_at"]).isoformat()
    )
    assert http.get("/v1/memory/core", headers=h).json()["content"] == "v2"


def test_expected_updated_at_is_required(http: TestClient, new_key):
    r = http.put("/v1/memory/core", json={"content": "x"}, headers=auth(new_key("acme")))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "expected_updated_at"


def test_unknown_request_field_is_rejected(http: TestClient, new_key):
    r = http.put(
        "/v1/memory/core",
        json={"content": "x", "expected_updated_at": None, "contnet": "typo"},
        headers=auth(new_key("a")),
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "contnet"


def test_agent_scope_is_selected_by_agent_id(http: TestClient, new_key):
    h = auth(new_key("acme"))
    http.put(
        "/v1/memory/core", json={"content": "user facts", "expected_updated_at": None}, headers=h
    )
    http.put(
        "/v1/memory/core?agent_id=mail.bot",
        json={"content": "agent facts", "expected_updated_at": None},
        headers=h,
    )
    agent = http.get("/v1/memory/core?agent_id=mail.bot", headers=h).json()
    assert (
        agent["scope"] == "agent"
        and agent["agent_id"] == "mail.bot"
        and agent["content"] == "agent facts"
    )
    assert [b["content"] for b in http.get("/v1/memory", headers=h).json()] == ["user facts"]
    assert [b["content"] for b in http.get("/v1/memory?agent_id=mail.bot", headers=h).json()] == [
        "agent facts"
    ]
    both = http.get("/v1/memory?agent_id=mail.bot&scope=all", headers=h).json()
    assert sorted(b["scope"] for b in both) == ["agent", "user"]
    assert http.get("/v1/memory/core?agent_id=never-written", headers=h).status_code == 404


def test_bad_agent_id_names_the_field(http: TestClient, new_key):
    r = http.get("/v1/memory/core?agent_id=has space", headers=auth(new_key("acme")))
    assert r.status_code == 422 and r.json()["error"]["field"] == "agent_id"


def test_another_tenants_block_is_indistinguishable_from_absent(http: TestClient, new_key):
    a, b = auth(new_key("tenant-a")), auth(new_key("tenant-b"))
    http.put(
        "/v1/memory/core?agent_id=x",
        json={"content": "secret", "expected_updated_at": None},
        headers=a,
    )
    missing = http.get("/v1/memory/core?agent_id=y", headers=b)
    foreign = http.get("/v1/memory/core?agent_id=x", headers=b)
    assert foreign.status_code == missing.status_code == 404
    assert (
        foreign.json()["error"]["message"].replace("'x'", "'y'")
        == missing.json()["error"]["message"]
    )
    assert http.get("/v1/memory?agent_id=x", headers=b).json() == []
    # b's writes never touch a's block.
    http.put(
        "/v1/memory/core?agent_id=x",
        json={"content": "mine", "expected_updated_at": None},
        headers=b,
    )
    assert http.get("/v1/memory/core?agent_id=x", headers=a).json()["content"] == "secret"


def test_core_limit_is_a_413_naming_the_limit_and_nothing_changes(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url=database_url, core_limit_chars=20)
    with TestClient(create_app(settings)) as http:
        key = http.post("/v1/admin/tenants/acme/keys", headers=auth(settings.admin_key)).json()[
            "key"
        ]
        h = auth(key)
        first = http.put(
            "/v1/memory/core",
            json={"content": "0123456789", "expected_updated_at": None},
            headers=h,
        ).json()
        too_big = http.put(
            "/v1/memory/core",
            json={"content": "x" * 21, "expected_updated_at": first["updated_at"]},
            headers=h,
        )
        assert too_big.status_code == 413
        assert too_big.json()["error"] | {"request_id": None} == {
            "type": "payload_too_large",
            "message": "core block content is 21 characters; the limit is 20",
            "field": "content",
            "limit": 20,
            "request_id": None,
        }
        append = http.post("/v1/memory/core/append", json={"text": "0123456789"}, headers=h)
        assert append.status_code == 413 and append.json()["error"]["limit"] == 20
        after = http.get("/v1/memory/core", headers=h).json()
        assert after["content"] == "0123456789" and after["updated_at"] == first["updated_at"]


def test_request_body_limit_refuses_before_reading(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url=database_url, max_request_bytes=2048)
    with TestClient(create_app(settings)) as http:
        key = http.post("/v1/admin/tenants/acme/keys", headers=auth(settings.admin_key)).json()[
            "key"
        ]
        r = http.post("/v1/memory/archival/append", json={"text": "y" * 5000}, headers=auth(key))
        assert r.status_code == 413
        assert r.json()["error"]["limit"] == 2048 and r.json()["error"]["field"] == "body"

        def chunks():  # no content-length: the limit must hold while streaming too
            for _ in range(10):
                yield b"z" * 512

        streamed = http.post(
            "/v1/memory/archival/append",
            content=chunks(),
            headers=auth(key) | {"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert http.get("/v1/memory/archival", headers=auth(key)).status_code == 404


def test_core_append_adds_lines_and_creates_missing_block(http: TestClient, new_key):
    h = auth(new_key("acme"))
    first = http.post(
        "/v1/memory/core/append?agent_id=a1", json={"text": "likes tea"}, headers=h
    ).json()
    second = http.post(
        "/v1/memory/core/append?agent_id=a1", json={"text": "lives in Oslo"}, headers=h
    ).json()
    assert second["content"] == "likes tea\nlives in Oslo" and second["line_count"] == 2
    assert second["updated_at"] > first["updated_at"]
    ranged = http.get("/v1/memory/core?agent_id=a1&start_line=2&end_line=2", headers=h).json()
    assert ranged["content"] == "lives in Oslo" and ranged["start_line"] == 2


def test_delete_is_idempotent(http: TestClient, new_key):
    h = auth(new_key("acme"))
    http.put("/v1/memory/core", json={"content": "x", "expected_updated_at": None}, headers=h)
    assert http.delete("/v1/memory/core", headers=h).status_code == 204
    assert http.delete("/v1/memory/core", headers=h).status_code == 204
    assert http.get("/v1/memory/core", headers=h).status_code == 404


def test_admin_api_requires_the_admin_key(http: TestClient, new_key):
    user_key = new_key("acme")
    assert http.get("/v1/admin/tenants", headers=auth(user_key)).status_code == 401
    listed = http.get("/v1/admin/tenants", headers=auth("admin-test-key")).json()
    assert [t["name"] for t in listed] == ["acme"]


def test_revoked_key_gets_401(http: TestClient, new_key):
    key = new_key("acme")
    keys = http.get("/v1/admin/tenants/acme/keys", headers=auth("admin-test-key")).json()
    assert http.get("/v1/memory", headers=auth(key)).status_code == 200
    assert (
        http.delete(f"/v1/admin/keys/{keys[0]['id']}", headers=auth("admin-test-key")).status_code
        == 204
    )
    assert http.get("/v1/memory", headers=auth(key)).status_code == 401


def test_admin_api_disabled_without_admin_key(tmp_path, database_url):
    with TestClient(
        create_app(make_settings(tmp_path, database_url=database_url, admin_key=None))
    ) as http:
        r = http.get("/v1/admin/tenants", headers=auth("anything"))
        assert r.status_code == 403 and "AGENTMEM_ADMIN_KEY" in r.json()["error"]["message"]


def test_openapi_documents_the_routes_and_docs_page_is_served(http: TestClient):
    spec = http.get("/openapi.json").json()
    for path in (
        "/v1/memory/{block_type}",
        "/v1/memory/recall",
        "/v1/agents/{agent_id}/runs",
        "/v1/export",
    ):
        assert path in spec["paths"]
    assert http.get("/docs").status_code == 200


def test_every_error_carries_the_request_id_header_and_honours_a_given_one(http: TestClient):
    r = http.get("/v1/memory", headers={"x-request-id": "trace-123"})
    assert r.status_code == 401
    assert (
        r.headers["x-request-id"] == "trace-123" and r.json()["error"]["request_id"] == "trace-123"
    )
    missing_route = http.get("/v1/nothing-here")
    assert missing_route.status_code == 404 and missing_route.json()["error"]["type"] == "not_found"
