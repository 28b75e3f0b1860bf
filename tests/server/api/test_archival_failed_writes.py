"""A write whose SQL transaction fails to commit leaves the archival index as it was.

LanceDB commits on its own, inside the SQL transaction: without undo, an append whose commit
failed would leave searchable chunks of lines that do not exist (and that the next append would
number again). The failure is injected at the commit itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from support import auth


@contextmanager
def next_commit_fails(http: TestClient) -> Iterator[list[str]]:
    """The next SQL transaction commit of the app raises (later ones, the undo's, succeed); the
    request fails with that error (TestClient re-raises what a real client sees as a 500)."""
    engine = http.app.state.services.sql.engine
    fired: list[str] = []

    def fail(conn) -> None:
        if not fired:
            fired.append("commit")
            raise RuntimeError("injected: the commit failed")

    event.listen(engine, "commit", fail)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            yield fired
    finally:
        event.remove(engine, "commit", fail)


def recall_lines(http: TestClient, h, query: str) -> list[tuple[int, str]]:
    body = {"query": query, "agent_id": "a1", "mode": "keyword", "limit": 10}
    r = http.post("/v1/memory/recall", json=body, headers=h)
    assert r.status_code == 200, r.text
    return [(hit["line_number"], hit["content"]) for hit in r.json()]


def test_failed_append_leaves_no_searchable_chunks(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    assert http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo\nthree"}, headers=h).status_code == 200
    with next_commit_fails(http) as fired:
        http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "the secret word is pineapple"}, headers=h)
    assert fired
    assert http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"] == "one\ntwo\nthree"
    assert recall_lines(http, h, "secret pineapple") == []
    after = http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "a banana line"}, headers=h).json()
    assert (after["start_line"], after["line_count"]) == (4, 4)
    assert recall_lines(http, h, "banana") == [(4, "a banana line")]
    assert recall_lines(http, h, "secret pineapple") == [], "line 4 is the banana, never the lost write"


def test_failed_update_keeps_the_old_text_searchable(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    first = http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "filler\nan old fact about oranges"}, headers=h).json()
    with next_commit_fails(http) as fired:
        body = {"content": "a new fact about kiwis", "expected_updated_at": first["updated_at"]}
        http.put("/v1/memory/archival?agent_id=a1", json=body, headers=h)
    assert fired
    block = http.get("/v1/memory/archival?agent_id=a1", headers=h).json()
    assert block["content"] == "filler\nan old fact about oranges" and block["updated_at"] == first["updated_at"]
    assert recall_lines(http, h, "kiwis") == []
    assert [line for line, _ in recall_lines(http, h, "oranges")] == [1]  # one chunk holds both lines


def test_failed_delete_keeps_the_block_searchable(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "the spare key is under the mat"}, headers=h)
    with next_commit_fails(http) as fired:
        http.delete("/v1/memory/archival?agent_id=a1", headers=h)
    assert fired
    assert http.get("/v1/memory/archival?agent_id=a1", headers=h).json()["content"] == "the spare key is under the mat"
    assert recall_lines(http, h, "spare key mat") == [(1, "the spare key is under the mat")]
