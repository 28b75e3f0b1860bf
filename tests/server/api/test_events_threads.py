"""Thread writes in the change feed (issue 15 item 1, issue 16 item 4): create, update, messages
added (by `add_messages` and by runs), messages deleted, compaction, delete, and the threads an
agent's deletion takes with it; each in the write's own transaction. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from support import auth, next_commit_fails


def events(http: TestClient, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = http.get("/v1/events", params={"limit": 1000, **params}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def _add(http: TestClient, h: dict[str, str], thread_id: str, *messages: tuple[str, str]) -> list:
    body = {"messages": [{"role": role, "content": text} for role, text in messages]}
    r = http.post(f"/v1/threads/{thread_id}/messages", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def test_every_thread_write_records_one_event_with_what_a_subscriber_needs(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    assert http.post("/v1/agents", json={"agent_id": "bot"}, headers=h).status_code == 201
    loose = http.post(
        "/v1/threads", json={"title": "Trip", "metadata": {"user": "u_1"}}, headers=h
    ).json()
    tid = loose["id"]
    renamed = http.patch(f"/v1/threads/{tid}", json={"title": "Lisbon"}, headers=h).json()
    added = _add(http, h, tid, ("system", "Be brief."), ("user", "I like window seats"))
    ran = http.post("/v1/agents/bot/runs", json={"message": "hi", "thread_id": tid}, headers=h)
    assert ran.status_code == 200, ran.text
    fresh = http.post("/v1/agents/bot/runs", json={"message": "new one"}, headers=h).json()
    page = http.get(f"/v1/threads/{tid}/messages", headers=h).json()
    r = http.request(
        "DELETE", f"/v1/threads/{tid}/messages", params={"before": page[1]["id"]}, headers=h
    )
    assert r.json() == {"deleted": 1}
    compacted = http.post(f"/v1/threads/{tid}/compact", json={"keep_last": 2}, headers=h).json()
    assert compacted["compacted"] > 0
    assert http.delete(f"/v1/threads/{tid}", headers=h).status_code == 204

    got = [e for e in events(http, h) if e["kind"] == "thread"]
    assert [(e["action"], e["key"], e["namespace"], e["agent_id"]) for e in got] == [
        ("create", tid, [], None),
        ("update", tid, [], None),
        ("append", tid, [], None),
        ("update", tid, ["agent", "bot"], "bot"),  # the run bound it to its agent
        ("append", tid, ["agent", "bot"], "bot"),
        ("create", fresh["thread_id"], ["agent", "bot"], "bot"),
        ("append", fresh["thread_id"], ["agent", "bot"], "bot"),
        ("delete_messages", tid, ["agent", "bot"], "bot"),
        ("compact", tid, ["agent", "bot"], "bot"),
        ("delete", tid, ["agent", "bot"], "bot"),
    ]
    create, update, append, bind, turn, _, _, deleted, compact, gone = got
    assert create["data"] == {
        "agent_id": None,
        "title": "Trip",
        "metadata": {"user": "u_1"},
        "updated_at": loose["updated_at"].replace("Z", "+00:00"),
    }
    assert create["updated_at"] == loose["updated_at"]
    assert update["data"]["title"] == "Lisbon" and update["updated_at"] == renamed["updated_at"]
    assert append["data"] == {
        "count": 2,
        "first_id": added[0]["id"],
        "last_id": added[1]["id"],
        "run_id": None,
        "messages": [
            {"id": m["id"], "role": m["role"], "kind": "message", "content": m["content"]}
            for m in added
        ],
    }
    assert bind["data"]["agent_id"] == "bot"
    assert turn["data"]["run_id"] == ran.json()["id"] and turn["data"]["count"] == 2
    assert [m["role"] for m in turn["data"]["messages"]] == ["user", "assistant"]
    assert [m["content"] for m in turn["data"]["messages"]] == ["hi", ran.json()["output"]]
    assert deleted["data"] == {"count": 1, "before": page[1]["id"]}
    summary = compacted["summary"]
    assert compact["data"] == {
        "compacted": compacted["compacted"],
        "archived_lines": compacted["archived_lines"],
        "summary_id": summary["id"],
        "content": summary["content"],
    }
    assert gone["data"] is None
    # Compaction's archival lines are in the feed too, in the same transaction (adjacent seqs).
    archival = [e for e in events(http, h) if e["kind"] == "archival"]
    assert [a["seq"] for a in archival] == [compact["seq"] + 1]


def test_deleting_an_agent_records_the_deletion_of_each_of_its_threads(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    for agent in ("bot", "keep"):
        assert http.post("/v1/agents", json={"agent_id": agent}, headers=h).status_code == 201
    mine = [
        http.post("/v1/threads", json={"agent_id": "bot"}, headers=h).json()["id"] for _ in range(3)
    ]
    _add(http, h, mine[0], ("user", "hello"))
    kept = http.post("/v1/threads", json={"agent_id": "keep"}, headers=h).json()["id"]
    loose = http.post("/v1/threads", json={}, headers=h).json()["id"]
    head = events(http, h)[-1]["seq"]
    assert http.delete("/v1/agents/bot", headers=h).status_code == 204

    after = events(http, h, after=head)
    assert [(e["kind"], e["action"], e["key"]) for e in after if e["kind"] != "state"] == [
        *(("thread", "delete", t) for t in sorted(mine)),
        ("agent", "delete", "bot"),
    ]
    # The threads and their messages are gone; other agents' and agent-less threads are not.
    for t in mine:
        assert http.get(f"/v1/threads/{t}", headers=h).status_code == 404
        assert http.get(f"/v1/threads/{t}/messages", headers=h).status_code == 404
    listed = {t["id"] for t in http.get("/v1/threads", headers=h).json()["data"]}
    assert listed == {kept, loose}
    with http.app.state.services.sql.begin() as conn:  # type: ignore[attr-defined]
        from sqlalchemy import text

        left = conn.execute(
            text("SELECT count(*) FROM messages WHERE thread_id = :t"), {"t": mine[0]}
        ).scalar()
        assert left == 0


def test_thread_writes_that_change_nothing_record_nothing(http: TestClient, new_key) -> None:
    h = auth(new_key("acme"))
    tid = http.post("/v1/threads", json={}, headers=h).json()["id"]
    head = events(http, h)[-1]["seq"]
    assert http.post("/v1/threads", json={"agent_id": "nobody"}, headers=h).status_code == 404
    bad = {"messages": [{"role": "tool", "content": "x"}]}
    assert http.post(f"/v1/threads/{tid}/messages", json=bad, headers=h).status_code == 422
    assert (
        http.post(
            "/v1/threads/thr_missing/messages",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers=h,
        ).status_code
        == 404
    )
    assert http.request("DELETE", f"/v1/threads/{tid}/messages", headers=h).json() == {"deleted": 0}
    assert http.patch("/v1/threads/thr_missing", json={"title": "x"}, headers=h).status_code == 404
    assert http.delete("/v1/threads/thr_missing", headers=h).status_code == 404
    # A thread without an agent has nothing to compact into: 422, nothing recorded.
    _add(http, h, tid, ("user", "one"))
    head += 1
    r = http.post(f"/v1/threads/{tid}/compact", json={"keep_last": 0}, headers=h)
    assert r.status_code == 422
    assert events(http, h, after=head) == []


def test_a_thread_write_whose_commit_fails_leaves_no_event_and_takes_no_seq(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    engine = http.app.state.services.sql.engine  # type: ignore[attr-defined]
    tid = http.post("/v1/threads", json={}, headers=h).json()["id"]
    with next_commit_fails(engine):
        http.post("/v1/threads", json={"title": "lost"}, headers=h)
    with next_commit_fails(engine):
        http.post(
            f"/v1/threads/{tid}/messages",
            json={"messages": [{"role": "user", "content": "lost"}]},
            headers=h,
        )
    with next_commit_fails(engine):
        http.delete(f"/v1/threads/{tid}", headers=h)
    _add(http, h, tid, ("user", "kept"))
    got = events(http, h)
    assert [(e["seq"], e["action"]) for e in got] == [(1, "create"), (2, "append")]
    assert [m["content"] for m in got[1]["data"]["messages"]] == ["kept"]
    assert [t["title"] for t in http.get("/v1/threads", headers=h).json()["data"]] == [None]


def test_message_text_past_the_data_cap_is_left_out_the_range_stays(
    http: TestClient, new_key
) -> None:
    h = auth(new_key("acme"))
    tid = http.post("/v1/threads", json={}, headers=h).json()["id"]
    big = [("user", "x" * 90_000)]
    added = _add(http, h, tid, *big)
    append = events(http, h, kinds=["thread"])[-1]
    assert append["truncated"] is True
    assert append["data"] == {
        "count": 1,
        "first_id": added[0]["id"],
        "last_id": added[0]["id"],
        "run_id": None,
    }


def test_thread_events_are_the_tenants_own_and_filter_by_kind_and_pattern(
    http: TestClient, new_key
) -> None:
    a, b = auth(new_key("a")), auth(new_key("b"))
    ta = http.post("/v1/threads", json={}, headers=a).json()["id"]
    _add(http, a, ta, ("user", "secret of a"))
    http.post("/v1/memory/core/append", json={"text": "core of a"}, headers=a)
    assert events(http, b) == []
    assert "secret of a" not in http.get("/v1/events", headers=b).text
    # b cannot write a's thread (404), and so records nothing in either log.
    assert (
        http.post(
            f"/v1/threads/{ta}/messages",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers=b,
        ).status_code
        == 404
    )
    assert events(http, b) == []
    assert [e["action"] for e in events(http, a, kinds=["thread"])] == ["create", "append"]
    assert [e["kind"] for e in events(http, a, kinds=["core"])] == ["core"]
    assert [e["action"] for e in events(http, a, patterns=[ta])] == ["create", "append"]
    assert events(http, a, patterns=["thr_nothing*"]) == []
