"""A write whose SQL transaction fails to commit, or whose process dies, leaves the archival index
as it was.

LanceDB commits on its own, inside the SQL transaction: without undo, an append whose commit
failed would leave searchable chunks of lines that do not exist (and that the next append would
number again). The failure is injected at the commit itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from fastapi.testclient import TestClient
from sqlalchemy import text

from support import auth, dies_before_commit, next_commit_fails


def engine_of(http: TestClient):
    return http.app.state.services.sql.engine


def recall_lines(http: TestClient, h, query: str) -> list[tuple[int, str]]:
    body = {"query": query, "agent_id": "a1", "mode": "keyword", "limit": 10}
    r = http.post("/v1/memory/recall", json=body, headers=h)
    assert r.status_code == 200, r.text
    return [(hit["line_number"], hit["content"]) for hit in r.json()]


def test_failed_append_leaves_no_searchable_chunks(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    assert (
        http.post(
            "/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo\nthree"}, headers=h
        ).status_code
        == 200
    )
    with next_commit_fails(engine_of(http)) as fired:
        http.post(
            "/v1/memory/archival/append?agent_id=a1",
            json={"text": "the secret word is pineapple"},
            headers=h,
        )
    assert fired
    assert (
        http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"]
        == "one\ntwo\nthree"
    )
    assert recall_lines(http, h, "secret pineapple") == []
    after = http.post(
        "/v1/memory/archival/append?agent_id=a1", json={"text": "a banana line"}, headers=h
    ).json()
    assert (after["start_line"], after["line_count"]) == (4, 4)
    assert recall_lines(http, h, "banana") == [(4, "a banana line")]
    assert recall_lines(http, h, "secret pineapple") == [], (
        "line 4 is the banana, never the lost write"
    )


def test_failed_update_keeps_the_old_text_searchable(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    first = http.post(
        "/v1/memory/archival/append?agent_id=a1",
        json={"text": "filler\nan old fact about oranges"},
        headers=h,
    ).json()
    with next_commit_fails(engine_of(http)) as fired:
        body = {"content": "a new fact about kiwis", "expected_updated_at": first["updated_at"]}
        http.put("/v1/memory/archival?agent_id=a1", json=body, headers=h)
    assert fired
    block = http.get("/v1/memory/archival?agent_id=a1", headers=h).json()
    assert (
        block["content"] == "filler\nan old fact about oranges"
        and block["updated_at"] == first["updated_at"]
    )
    assert recall_lines(http, h, "kiwis") == []
    assert [line for line, _ in recall_lines(http, h, "oranges")] == [
        1
    ]  # one chunk holds both lines


def test_failed_delete_keeps_the_block_searchable(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    http.post(
        "/v1/memory/archival/append?agent_id=a1",
        json={"text": "the spare key is under the mat"},
        headers=h,
    )
    with next_commit_fails(engine_of(http)) as fired:
        http.delete("/v1/memory/archival?agent_id=a1", headers=h)
    assert fired
    assert (
        http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"]
        == "the spare key is under the mat"
    )
    assert recall_lines(http, h, "spare key mat") == [(1, "the spare key is under the mat")]


# ---- a process that dies between LanceDB's commit and SQL's --------------------------------


def in_flight(http: TestClient) -> int:
    with engine_of(http).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM archival_writes_in_flight")).scalar_one()


def repair(http: TestClient, **kwargs) -> int:
    memory = http.app.state.services.memory
    return http.portal.call(partial(memory.repair_interrupted_writes, **kwargs))


def test_interrupted_append_is_hidden_and_repaired_once_its_process_is_dead(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo"}, headers=h)
    assert in_flight(http) == 0, "a committed write leaves nothing in flight"
    with dies_before_commit(engine_of(http)):
        http.post(
            "/v1/memory/archival/append?agent_id=a1",
            json={"text": "the secret word is pineapple"},
            headers=h,
        )
    assert in_flight(http) == 1
    assert recall_lines(http, h, "secret pineapple") == [], "an uncommitted write is never recalled"
    assert repair(http) == 0, "its process (this one) is alive: the write may still be running"
    assert repair(http, older_than=timedelta(0)) == 1
    assert in_flight(http) == 0 and recall_lines(http, h, "secret pineapple") == []
    assert http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"] == "one\ntwo"


def test_interrupted_update_and_delete_are_repaired_from_the_committed_lines(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    first = http.post(
        "/v1/memory/archival/append", json={"text": "an old fact about oranges"}, headers=h
    ).json()
    with dies_before_commit(engine_of(http)):
        body = {"content": "a new fact about kiwis", "expected_updated_at": first["updated_at"]}
        http.put("/v1/memory/archival", json=body, headers=h)
    with dies_before_commit(engine_of(http)):
        http.delete("/v1/memory/archival", headers=h)
    assert in_flight(http) == 2
    assert repair(http, older_than=timedelta(0)) == 2 and in_flight(http) == 0
    hits = http.post(
        "/v1/memory/recall",
        json={"query": "fact oranges kiwis", "scope": "user", "mode": "keyword"},
        headers=h,
    ).json()
    assert [(hit["line_number"], hit["content"]) for hit in hits] == [
        (1, "an old fact about oranges")
    ]


def test_a_refused_update_leaves_nothing_in_flight(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    http.post("/v1/memory/archival/append", json={"text": "x"}, headers=h)
    stale = {"content": "y", "expected_updated_at": "2020-01-01T00:00:00Z"}
    assert http.put("/v1/memory/archival", json=stale, headers=h).status_code == 409
    assert in_flight(http) == 0
