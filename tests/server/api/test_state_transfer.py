"""Export and import carry keyed-state entries with their times and TTLs, all or nothing."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from support import ADMIN_KEY, auth

NDJSON = {"content-type": "application/x-ndjson"}


def put(http: TestClient, h, key: str, body: dict, namespace: str = "") -> dict:
    r = http.put(
        f"/v1/state/entries/{key}",
        params={"namespace": namespace} if namespace else {},
        json=body,
        headers=h,
    )
    assert r.status_code == 200, r.text
    return r.json()


def entries(http: TestClient, h, namespace: str) -> dict[str, dict]:
    listed = http.get("/v1/state/entries", params={"namespace": namespace}, headers=h).json()[
        "items"
    ]
    return {
        i["key"]: http.get(
            f"/v1/state/entries/{i['key']}", params={"namespace": namespace}, headers=h
        ).json()
        for i in listed
    }


def test_state_entries_travel_with_their_times_and_ttls(http: TestClient, new_key):
    source, target = auth(new_key("source")), auth(new_key("target"))
    put(http, source, "flags", {"value": {"new_ui": True}})
    put(http, source, "cart", {"value": [1, 2], "ttl": 3600}, "session/u1")
    put(http, source, "deep", {"value": None}, "agent/bot/sub")
    exported = http.get("/v1/export", headers=source).text
    records = [json.loads(x) for x in exported.splitlines()]
    assert sorted(r["key"] for r in records if r["type"] == "state") == ["cart", "deep", "flags"]

    r = http.post("/v1/import", content=exported.encode(), headers=target | NDJSON)
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["state"] == 3
    for namespace in ("", "session/u1", "agent/bot/sub"):
        before, after = entries(http, source, namespace), entries(http, target, namespace)
        assert before == after and before  # value, created_at, updated_at, expires_at alike
    assert entries(http, target, "session/u1")["cart"]["expires_at"] is not None
    counts = http.get("/v1/admin/tenants/target/state", headers=auth(ADMIN_KEY))
    assert counts.json()["entries"] == 3  # the quota counts include what was imported

    # All or nothing: the same import again conflicts on the first entry and changes nothing.
    again = http.post("/v1/import", content=exported.encode(), headers=target | NDJSON)
    assert again.status_code == 409 and again.json()["error"]["field"] == "state"
    assert len(entries(http, target, "")) == 1


def test_a_bad_state_record_is_refused_naming_its_line(http: TestClient, new_key):
    h = auth(new_key("acme"))
    header = {"type": "header", "format": "agentmem-export", "version": 1}
    good = {
        "type": "state",
        "namespace": ["session", "u1"],
        "key": "k",
        "value": 1,
        "created_at": 1,
        "updated_at": 2,
    }
    for bad, field in (
        (good | {"namespace": ["has space"]}, "line 3"),
        (good | {"key": "a\nb"}, "line 3: key"),
        (good | {"value": "x" * 70_000}, "line 3: value"),
        (good, "line 3"),  # the same entry twice
    ):
        body = "\n".join(json.dumps(x) for x in (header, good, bad)).encode()
        r = http.post("/v1/import", content=body, headers=h | NDJSON)
        assert r.status_code in (413, 422), r.text
        assert r.json()["error"]["field"] == field, (bad, r.json())
        assert (
            http.get(
                "/v1/state/entries/k", params={"namespace": "session/u1"}, headers=h
            ).status_code
            == 404
        )
