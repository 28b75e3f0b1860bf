"""Bad input gets a 4xx JSON error naming the field (and the limit where there is one), and
changes nothing; never a 500. On SQLite and PostgreSQL: PostgreSQL refuses NUL characters and
over-long values that SQLite stores."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest
from fastapi.testclient import TestClient

from support import ADMIN_KEY, auth

LONG_ID = "x" * 129
NUL = "a\x00b"
SURROGATE = "\ud800"  # a lone surrogate: valid in a JSON string escape, not encodable as UTF-8

# (what, method, path, json body, field named, limit)
CASES: list[tuple[str, str, str, Optional[dict[str, Any]], str, Any]] = [
    (
        "naive expected_updated_at",
        "PUT",
        "/v1/memory/core",
        {"content": "x", "expected_updated_at": "2025-01-01T00:00:00"},
        "expected_updated_at",
        None,
    ),
    (
        "expected_updated_at past year 9999 in UTC",
        "PUT",
        "/v1/memory/core",
        {"content": "x", "expected_updated_at": "9999-12-31T23:59:59-12:00"},
        "expected_updated_at",
        None,
    ),
    (
        "expected_updated_at before year 1 in UTC",
        "PUT",
        "/v1/memory/core",
        {"content": "x", "expected_updated_at": "0001-01-01T00:00:00+05:00"},
        "expected_updated_at",
        None,
    ),
    (
        "naive updated_after",
        "POST",
        "/v1/memory/recall",
        {"query": "tea", "updated_after": "2025-01-01T00:00:00"},
        "updated_after",
        None,
    ),
    (
        "updated_before out of range",
        "POST",
        "/v1/memory/recall",
        {"query": "tea", "updated_before": "0001-01-01T00:30:00+01:00"},
        "updated_before",
        None,
    ),
    (
        "start_line past 2^63",
        "GET",
        "/v1/memory/archival?start_line=9223372036854775808",
        None,
        "start_line",
        2**31 - 1,
    ),
    (
        "end_line past the line limit",
        "GET",
        "/v1/memory/archival?end_line=2147483648",
        None,
        "end_line",
        2**31 - 1,
    ),
    (
        "lone surrogate in instructions",
        "POST",
        "/v1/agents",
        {"agent_id": "a", "instructions": SURROGATE},
        "instructions",
        None,
    ),
    (
        "lone surrogate in metadata",
        "POST",
        "/v1/agents",
        {"agent_id": "a", "metadata": {"k": [SURROGATE]}},
        "metadata",
        None,
    ),
    (
        "lone surrogate in a metadata key",
        "POST",
        "/v1/agents",
        {"agent_id": "a", "metadata": {SURROGATE: 1}},
        "metadata",
        None,
    ),
    (
        "NUL in instructions",
        "POST",
        "/v1/agents",
        {"agent_id": "a", "instructions": NUL},
        "instructions",
        None,
    ),
    (
        "NUL in metadata",
        "POST",
        "/v1/agents",
        {"agent_id": "a", "metadata": {"k": NUL}},
        "metadata",
        None,
    ),
    ("over-long model", "POST", "/v1/agents", {"agent_id": "a", "model": "m" * 257}, "model", 256),
    (
        "NUL in core content",
        "PUT",
        "/v1/memory/core",
        {"content": NUL, "expected_updated_at": None},
        "content",
        None,
    ),
    ("NUL in archival text", "POST", "/v1/memory/archival/append", {"text": NUL}, "text", None),
    (
        "surrogate in archival text",
        "POST",
        "/v1/memory/archival/append",
        {"text": SURROGATE},
        "text",
        None,
    ),
    ("NUL in a recall query", "POST", "/v1/memory/recall", {"query": NUL}, "query", None),
    ("NUL in a run message", "POST", "/v1/agents/helper/runs", {"message": NUL}, "message", None),
    (
        "NUL in a run's thread id",
        "POST",
        "/v1/agents/helper/runs",
        {"message": "hi", "thread_id": NUL},
        "thread_id",
        None,
    ),
    (
        "over-long run thread id",
        "POST",
        "/v1/agents/helper/runs",
        {"message": "hi", "thread_id": LONG_ID},
        "thread_id",
        128,
    ),
    (
        "over-long agent id in a path",
        "POST",
        f"/v1/agents/{LONG_ID}/runs",
        {"message": "hi"},
        "agent_id",
        128,
    ),
    ("NUL in an agent id in a path", "GET", "/v1/agents/a%00b", None, "agent_id", None),
    ("NUL in a run id", "GET", "/v1/runs/a%00b", None, "run_id", None),
    ("over-long run id", "POST", f"/v1/runs/{LONG_ID}/replay", None, "run_id", 128),
    ("NUL in a thread id", "GET", "/v1/threads/a%00b/messages", None, "thread_id", None),
    ("NUL in an agent_id query", "GET", "/v1/memory?agent_id=a%00b", None, "agent_id", None),
]


@pytest.fixture
def tenant(http: TestClient, new_key) -> dict[str, str]:
    h = auth(new_key("acme"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=h).status_code == 201
    # An archival block to read ranges of: a range read of a missing block stops before SQL.
    assert (
        http.post("/v1/memory/archival/append", json={"text": "one\ntwo"}, headers=h).status_code
        == 200
    )
    return h


def _send(http: TestClient, method: str, path: str, body: Any, headers: dict[str, str]):
    # json.dumps escapes a lone surrogate as \\ud800 (valid JSON); httpx's own encoder would fail.
    if body is None:
        return http.request(method, path, headers=headers)
    return http.request(
        method,
        path,
        content=json.dumps(body),
        headers=headers | {"content-type": "application/json"},
    )


def _snapshot(http: TestClient, h: dict[str, str]) -> tuple:
    return (
        http.get("/v1/agents", headers=h).json(),
        http.get("/v1/memory?scope=user", headers=h).json(),
        http.get("/v1/export", headers=h).text.count("\n"),
    )


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "field", "limit"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(
    http: TestClient,
    tenant: dict[str, str],
    what: str,
    method: str,
    path: str,
    body,
    field: str,
    limit,
) -> None:
    before = _snapshot(http, tenant)
    r = _send(http, method, path, body, tenant)
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["field"] == field, error
    if limit is not None:
        assert error["limit"] == limit, error
    assert _snapshot(http, tenant) == before


@pytest.mark.parametrize("name", ["no spaces", "x" * 129, "a%00b", "%C3%A9t%C3%A9"])
def test_a_bad_tenant_name_on_the_admin_key_routes_is_422(http: TestClient, name: str) -> None:
    for method in ("POST", "GET"):
        r = http.request(method, f"/v1/admin/tenants/{name}/keys", headers=auth(ADMIN_KEY))
        assert r.status_code == 422, (method, r.status_code, r.text)
        assert r.json()["error"]["field"] == "name"
    assert http.get("/v1/admin/tenants", headers=auth(ADMIN_KEY)).json() == []


def test_a_bad_key_id_on_revoke_is_422(http: TestClient) -> None:
    r = http.delete("/v1/admin/keys/a%00b", headers=auth(ADMIN_KEY))
    assert r.status_code == 422 and r.json()["error"]["field"] == "key_id"


@pytest.mark.parametrize("body", [b"[null, null]\n", b"\xff\xfe\n", b'"text"\n', b"{}\n"])
def test_an_import_line_that_is_not_a_record_is_422(
    http: TestClient, tenant: dict[str, str], body: bytes
) -> None:
    r = http.post(
        "/v1/import", content=body, headers=tenant | {"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "line 1"
