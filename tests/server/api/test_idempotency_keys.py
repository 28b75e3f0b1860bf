"""Idempotency keys on the write routes (in-process app, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from agentmem_server.storage.base import now_micros
from agentmem_server.storage.sql.schema import idempotency_keys

from support import ADMIN_KEY, auth

APPEND = "/v1/memory/archival/append"


def _keyed(key: str, idem: str) -> dict[str, str]:
    return auth(key) | {"Idempotency-Key": idem}


def _line_count(http: TestClient, h: dict[str, str], agent_id: str | None = None) -> int:
    r = http.get("/v1/memory/archival" + (f"?agent_id={agent_id}" if agent_id else ""), headers=h)
    return r.json()["line_count"] if r.status_code == 200 else 0


def _records(http: TestClient) -> int:
    with http.app.state.services.sql.begin() as conn:
        return conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one()


def test_a_repeat_gets_the_first_answer_marked_as_a_replay(http: TestClient, new_key) -> None:
    h = _keyed(new_key("acme"), "k-1")
    first = http.post(APPEND, json={"text": "one\ntwo"}, headers=h)
    again = http.post(APPEND, json={"text": "one\ntwo"}, headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert _line_count(http, h) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"json": {"text": "three"}},
        {"path": APPEND + "?agent_id=other"},
        {"path": "/v1/memory/core/append"},
        {
            "method": "PUT",
            "path": "/v1/memory/archival",
            "json": {"content": "x", "expected_updated_at": None},
        },
    ],
    ids=["body", "query", "path", "method"],
)
def test_a_key_reused_for_another_request_is_422_and_changes_nothing(
    http: TestClient, new_key, change
) -> None:
    key = new_key("acme")
    h = _keyed(key, "k-2")
    assert http.post(APPEND, json={"text": "one"}, headers=h).status_code == 200
    r = http.request(
        change.get("method", "POST"),
        change.get("path", APPEND),
        json=change.get("json", {"text": "one"}),
        headers=h,
    )
    assert r.status_code == 422, r.text
    assert (
        r.json()["error"]["type"] == "idempotency_key_reused"
        and r.json()["error"]["field"] == "Idempotency-Key"
    )
    assert _line_count(http, auth(key)) == 1 and _line_count(http, auth(key), "other") == 0
    assert http.get("/v1/memory/core", headers=auth(key)).status_code == 404


@pytest.mark.parametrize("bad", ["", " leading-space", "x" * 256, "tab\there"])
def test_a_malformed_key_is_422_naming_the_header(http: TestClient, new_key, bad: str) -> None:
    key = new_key("acme")
    r = http.post(APPEND, json={"text": "one"}, headers=_keyed(key, bad))
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"
    assert r.json()["error"]["limit"] == 255
    assert _line_count(http, auth(key)) == 0


def test_keys_are_per_tenant(http: TestClient, new_key) -> None:
    rng = random.Random(12)
    tenants = {f"t{i}": new_key(f"t{i}") for i in range(4)}
    shared = [f"key-{n}" for n in range(6)]
    sent: dict[str, list[str]] = {t: [] for t in tenants}
    for _ in range(30):
        tenant, idem = rng.choice(sorted(tenants)), rng.choice(shared)
        text = f"{tenant} wrote with {idem}"
        r = http.post(APPEND, json={"text": text}, headers=_keyed(tenants[tenant], idem))
        assert r.status_code == 200, r.text
        assert r.json()["content"] == text  # never another tenant's stored answer
        if r.headers.get("idempotent-replayed") != "true":
            sent[tenant].append(text)
    for tenant, key in tenants.items():
        got = http.get("/v1/memory/archival", headers=auth(key))
        lines = got.json()["content"].split("\n") if got.status_code == 200 else []
        assert lines == sent[tenant]
        assert len(set(lines)) == len(lines), "a key was acted on twice"


def test_an_answer_that_changed_nothing_is_not_kept(http: TestClient, new_key) -> None:
    key = new_key("acme")
    h = _keyed(key, "delete-helper")
    assert http.delete("/v1/agents/helper", headers=h).status_code == 404
    assert (
        http.post("/v1/agents", json={"agent_id": "helper"}, headers=auth(key)).status_code == 201
    )
    # The 404 was not kept: the same key now deletes the agent, and then answers that again.
    assert http.delete("/v1/agents/helper", headers=h).status_code == 204
    again = http.delete("/v1/agents/helper", headers=h)
    assert again.status_code == 204 and again.headers["idempotent-replayed"] == "true"


def test_recall_is_not_recorded(http: TestClient, new_key) -> None:
    h = _keyed(new_key("acme"), "recall-1")
    for _ in range(2):
        r = http.post("/v1/memory/recall", json={"query": "tea"}, headers=h)
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert _records(http) == 0


def test_an_admin_key_creation_retried_makes_one_key(http: TestClient) -> None:
    h = _keyed(ADMIN_KEY, "new-key-acme")
    first = http.post("/v1/admin/tenants/acme/keys", headers=h)
    again = http.post("/v1/admin/tenants/acme/keys", headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json()["key"] == first.json()["key"]
    assert len(http.get("/v1/admin/tenants/acme/keys", headers=auth(ADMIN_KEY)).json()) == 1


def test_a_retried_import_is_replayed_not_refused(http: TestClient, new_key) -> None:
    source = new_key("source")
    http.post("/v1/agents", json={"agent_id": "helper"}, headers=auth(source))
    http.post(APPEND + "?agent_id=helper", json={"text": "alpha\nbeta"}, headers=auth(source))
    export = http.get("/v1/export", headers=auth(source)).content
    target = new_key("target")
    h = _keyed(target, "import-1") | {"content-type": "application/x-ndjson"}
    first = http.post("/v1/import", content=export, headers=h)
    again = http.post("/v1/import", content=export, headers=h)
    assert first.status_code == 200, first.text
    assert (
        again.status_code == 200
        and again.json() == first.json()
        and again.headers["idempotent-replayed"] == "true"
    )
    assert _line_count(http, auth(target), "helper") == 2
    other = http.post("/v1/import", content=export + b"\n", headers=h)
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_key_reused"


def _age(http: TestClient, **values) -> None:
    with http.app.state.services.sql.begin() as conn:
        conn.execute(update(idempotency_keys).values(**values))


def test_an_expired_key_runs_again_and_is_swept(http: TestClient, new_key) -> None:
    key = new_key("acme")
    h = _keyed(key, "k-old")
    assert http.post(APPEND, json={"text": "one"}, headers=h).status_code == 200
    _age(http, expires_at=now_micros() - 1)
    r = http.post(APPEND, json={"text": "a new request"}, headers=h)
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    _age(http, expires_at=now_micros() - 1)
    http.post(APPEND, json={"text": "x"}, headers=_keyed(key, "k-fresh"))
    assert asyncio.run(http.app.state.services.idempotency.sweep()) == 1
    assert _records(http) == 1


def _abandon(http: TestClient, tenant_key: str, idem: str, method: str, path: str) -> None:
    """The row a claim leaves when its process dies mid-request: unfinished, lease run out."""
    from agentmem_server.api.idempotency import _request_hash
    from agentmem_server.services.idempotency import SealedKey

    tenant_id = asyncio.run(http.app.state.services.tenants.tenant_for_key(tenant_key))
    now = now_micros()
    with http.app.state.services.sql.begin() as conn:
        conn.execute(
            idempotency_keys.insert().values(
                tenant_id=tenant_id,
                key=SealedKey.of(tenant_id, idem).id,
                request_hash=_request_hash({"method": method, "path": path, "query_string": b""}),
                owner="own_dead",
                locked_until=now - 1,
                created_at=now - 60_000_000,
                expires_at=now + 3_600_000_000,
            )
        )


def test_an_abandoned_write_is_run_again(http: TestClient, new_key) -> None:
    key = new_key("acme")
    _abandon(http, key, "k-dead", "POST", APPEND)
    r = http.post(APPEND, json={"text": "one"}, headers=_keyed(key, "k-dead"))
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert _line_count(http, auth(key)) == 1


def test_an_abandoned_run_is_reported_interrupted_not_run_again(http: TestClient, new_key) -> None:
    key = new_key("acme")
    http.post("/v1/agents", json={"agent_id": "helper"}, headers=auth(key))
    _abandon(http, key, "run-dead", "POST", "/v1/agents/helper/runs")
    r = http.post("/v1/agents/helper/runs", json={"message": "hi"}, headers=_keyed(key, "run-dead"))
    assert r.status_code == 409 and r.json()["error"]["type"] == "interrupted"
    assert r.headers["x-should-retry"] == "false"
    exported = http.get("/v1/export", headers=auth(key)).text.splitlines()
    assert not [line for line in exported if json.loads(line)["type"] == "run"]


def test_the_table_holds_neither_the_keys_nor_readable_answers(http: TestClient) -> None:
    # An answer can hold memory text (deleted later) or a new API key (stored hashed elsewhere).
    created = http.post(
        "/v1/admin/tenants/acme/keys", headers=_keyed(ADMIN_KEY, "make-acme-key")
    ).json()
    h = _keyed(created["key"], "remember-locker")
    assert (
        http.post(APPEND, json={"text": "the locker code is Wqpz-2231"}, headers=h).status_code
        == 200
    )
    with http.app.state.services.sql.begin() as conn:
        rows = conn.execute(select(idempotency_keys)).all()
    assert len(rows) == 2
    stored = b"".join(
        bytes(r.response_body) + r.key.encode() + (r.response_headers or "").encode() for r in rows
    )
    for secret in (created["key"].encode(), b"Wqpz", b"make-acme-key", b"remember-locker"):
        assert secret not in stored
    replayed = http.post(APPEND, json={"text": "the locker code is Wqpz-2231"}, headers=h)
    assert (
        replayed.headers["idempotent-replayed"] == "true" and "Wqpz" in replayed.json()["content"]
    )
