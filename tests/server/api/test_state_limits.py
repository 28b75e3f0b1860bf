"""Keyed state's per-tenant default TTL (admin API) and quotas over HTTP."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from agentmem_server import create_app

from support import ADMIN_KEY, auth, make_settings

ADMIN = auth(ADMIN_KEY)


def test_default_ttl_is_set_per_tenant_by_the_admin(http: TestClient, new_key):
    h = auth(new_key("acme"))
    other = auth(new_key("other"))
    before = http.get("/v1/admin/tenants/acme/state", headers=ADMIN)
    assert before.status_code == 200 and before.json() == {
        "default_ttl": None,
        "entries": 0,
        "bytes": 0,
    }
    r = http.put("/v1/admin/tenants/acme/state", json={"default_ttl": 86400}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["default_ttl"] == 86400
    entry = http.put("/v1/state/entries/k", json={"value": {"a": 1}}, headers=h).json()
    lifetime = datetime.fromisoformat(entry["expires_at"]) - datetime.fromisoformat(
        entry["updated_at"]
    )
    assert lifetime.total_seconds() == 86400
    assert (
        http.put("/v1/state/entries/k", json={"value": 1}, headers=other).json()["expires_at"]
        is None
    )
    after = http.get("/v1/admin/tenants/acme/state", headers=ADMIN).json()
    assert after == {"default_ttl": 86400, "entries": 1, "bytes": 7}
    cleared = http.put("/v1/admin/tenants/acme/state", json={"default_ttl": None}, headers=ADMIN)
    assert cleared.json()["default_ttl"] is None


def test_admin_state_settings_refuse_bad_input_and_unknown_tenants(http: TestClient, new_key):
    new_key("acme")
    assert http.get("/v1/admin/tenants/nobody/state", headers=ADMIN).status_code == 404
    bad = http.put("/v1/admin/tenants/acme/state", json={"default_ttl": -1}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "default_ttl"
    missing = http.put("/v1/admin/tenants/acme/state", json={}, headers=ADMIN)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "default_ttl"
    tenant_key = http.get("/v1/admin/tenants/acme/state", headers=auth(new_key("acme")))
    assert tenant_key.status_code == 401


def test_quotas_answer_429_and_413_naming_the_limit(tmp_path: Path, database_url: str):
    settings = make_settings(
        tmp_path, database_url=database_url, quota_state_entries=2, quota_state_bytes=1000
    )
    with TestClient(create_app(settings)) as http:
        key = http.post("/v1/admin/tenants/acme/keys", headers=ADMIN).json()["key"]
        h = auth(key)
        assert http.put("/v1/state/entries/a", json={"value": 1}, headers=h).status_code == 200
        assert http.put("/v1/state/entries/b", json={"value": 1}, headers=h).status_code == 200
        full = http.put("/v1/state/entries/c", json={"value": 1}, headers=h)
        assert full.status_code == 429 and full.headers["x-should-retry"] == "false"
        err = full.json()["error"]
        assert err["type"] == "quota_exceeded" and err["field"] == "key" and err["limit"] == 2
        huge = http.put("/v1/state/entries/a", json={"value": "x" * 2000}, headers=h)
        assert huge.status_code == 413
        assert huge.json()["error"]["field"] == "value" and huge.json()["error"]["limit"] == 1000
        assert [i["key"] for i in http.get("/v1/state/entries", headers=h).json()["items"]] == [
            "a",
            "b",
        ]
        assert http.get("/v1/state/entries/a", headers=h).json()["value"] == 1
