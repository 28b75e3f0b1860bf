"""Archival memory over HTTP (hash embedder): append, ranges, guarded replace, recall scopes,
delete."""

from __future__ import annotations

from fastapi.testclient import TestClient

from support import auth


def _append(http: TestClient, h, text: str, agent_id: str | None = None):
    path = "/v1/memory/archival/append" + (f"?agent_id={agent_id}" if agent_id else "")
    r = http.post(path, json={"text": text}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_appends_take_consecutive_line_ranges_and_ranges_read_back(http: TestClient, new_key):
    h = auth(new_key("acme"))
    first = _append(http, h, "alpha\nbravo\ncharlie", "a1")
    second = _append(http, h, "delta\n", "a1")  # a trailing newline ends the line, adds none
    assert (first["start_line"], first["end_line"]) == (1, 3)
    assert (second["start_line"], second["end_line"], second["line_count"]) == (4, 4, 4)
    middle = http.get("/v1/memory/archival?agent_id=a1&start_line=2&end_line=4", headers=h).json()
    assert middle["content"] == "bravo\ncharlie\ndelta" and (
        middle["start_line"],
        middle["end_line"],
    ) == (2, 4)
    whole = http.get("/v1/memory/archival?agent_id=a1", headers=h).json()
    assert whole["content"] == "alpha\nbravo\ncharlie\ndelta"
    listed = http.get("/v1/memory?agent_id=a1", headers=h).json()
    assert [(b["block_type"], b["content"], b["line_count"]) for b in listed] == [
        ("archival", "", 4)
    ]


def test_recall_returns_line_numbers_and_respects_scope(http: TestClient, new_key):
    h = auth(new_key("acme"))
    _append(http, h, "the user likes green tea")
    _append(http, h, "filler one\nfiller two", "a1")
    _append(http, h, "the agent parked the car on level three", "a1")
    body = {"query": "car parked level", "agent_id": "a1", "mode": "keyword", "limit": 5}
    hits = http.post("/v1/memory/recall", json=body, headers=h).json()
    assert (
        hits[0]["line_number"] == 3 and hits[0]["scope"] == "agent" and hits[0]["agent_id"] == "a1"
    )
    assert 0.0 <= hits[0]["score"] <= 1.0
    user_only = http.post("/v1/memory/recall", json=body | {"scope": "user"}, headers=h).json()
    assert all(hit["scope"] == "user" for hit in user_only)
    tea = http.post(
        "/v1/memory/recall",
        json={"query": "green tea", "agent_id": "a1", "mode": "keyword"},
        headers=h,
    ).json()
    assert tea[0]["scope"] == "user" and tea[0]["agent_id"] is None


def test_recall_never_crosses_tenants(http: TestClient, new_key):
    a, b = auth(new_key("tenant-a")), auth(new_key("tenant-b"))
    _append(http, a, "the launch code is swordfish", "shared-name")
    for mode in ("keyword", "vector", "hybrid"):
        body = {"query": "launch code swordfish", "agent_id": "shared-name", "mode": mode}
        assert http.post("/v1/memory/recall", json=body, headers=b).json() == []
        assert http.post("/v1/memory/recall", json=body, headers=a).json()


def test_recall_on_an_agent_without_memory_is_empty_and_bad_input_names_the_field(
    http: TestClient, new_key
):
    h = auth(new_key("acme"))
    assert (
        http.post("/v1/memory/recall", json={"query": "x", "agent_id": "nobody"}, headers=h).json()
        == []
    )
    too_many = http.post("/v1/memory/recall", json={"query": "x", "limit": 1000}, headers=h)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "limit" and too_many.json()["error"]["limit"] == 100
    no_agent = http.post("/v1/memory/recall", json={"query": "x", "scope": "agent"}, headers=h)
    assert no_agent.status_code == 422 and no_agent.json()["error"]["field"] == "agent_id"


def test_archival_replace_is_guarded_and_recall_sees_the_new_text(http: TestClient, new_key):
    h = auth(new_key("acme"))
    block = _append(http, h, "old fact about pineapples", "a1")
    r = http.put(
        "/v1/memory/archival?agent_id=a1",
        json={
            "content": "new fact about kiwis\nsecond",
            "expected_updated_at": "2020-01-01T00:00:00Z",
        },
        headers=h,
    )
    assert r.status_code == 409
    ok = http.put(
        "/v1/memory/archival?agent_id=a1",
        json={
            "content": "new fact about kiwis\nsecond",
            "expected_updated_at": block["updated_at"],
        },
        headers=h,
    )
    assert ok.status_code == 200 and ok.json()["line_count"] == 2
    kiwis = http.post(
        "/v1/memory/recall", json={"query": "kiwis", "agent_id": "a1", "mode": "keyword"}, headers=h
    ).json()
    pineapples = http.post(
        "/v1/memory/recall",
        json={"query": "pineapples", "agent_id": "a1", "mode": "keyword"},
        headers=h,
    ).json()
    assert kiwis and pineapples == []


def test_delete_archival_removes_text_and_recall_hits(http: TestClient, new_key):
    h = auth(new_key("acme"))
    _append(http, h, "a secret worth forgetting", "a1")
    assert http.delete("/v1/memory/archival?agent_id=a1", headers=h).status_code == 204
    assert http.get("/v1/memory/archival?agent_id=a1", headers=h).status_code == 404
    body = {"query": "secret forgetting", "agent_id": "a1", "mode": "keyword"}
    assert http.post("/v1/memory/recall", json=body, headers=h).json() == []
    again = _append(http, h, "a fresh start", "a1")
    assert (again["start_line"], again["line_count"]) == (1, 1)
