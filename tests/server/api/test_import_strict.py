"""Import is as strict as the REST API, tenant-safe and all-or-nothing (issue 12, item 2).

Every case here failed on the import before services/importer.py: bad ids, over-limit core
blocks, unknown block types, `system` messages, messages into another tenant's thread and seq
2**31-1 were stored (some then answered 500 on reads); ids of another tenant answered 409; a
failure part-way left what came before it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from support import T0_US, auth, next_commit_fails

NDJSON = {"content-type": "application/x-ndjson"}
HEADER = {"type": "header", "format": "agentmem-export", "version": 1}


def _body(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in (HEADER, *records))


def _import(http: TestClient, h: dict[str, str], body: bytes):
    return http.post("/v1/import", content=body, headers=h | NDJSON)


def _run(run_id: str, thread_id: str, agent_id: str = "helper") -> dict[str, Any]:
    record = {
        "id": run_id,
        "agent_id": agent_id,
        "thread_id": thread_id,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "model": "offline",
        "options": {},
        "model_input": [{"role": "user", "content": "hi"}],
        "output": "hello",
    }
    return {
        "type": "run",
        "id": run_id,
        "agent_id": agent_id,
        "thread_id": thread_id,
        "created_at": T0_US,
        "replay_of": None,
        "record": record,
    }


def _conversation(thread_id: str = "thr_1", run_id: str = "run_1") -> list[dict[str, Any]]:
    return [
        {"type": "agent", "id": "helper", "instructions": "Be brief."},
        {"type": "thread", "id": thread_id, "agent_id": "helper", "created_at": T0_US},
        {
            "type": "message",
            "id": "msg_1",
            "thread_id": thread_id,
            "seq": 1,
            "role": "user",
            "content": "hi",
            "run_id": run_id,
            "created_at": T0_US,
        },
        {
            "type": "message",
            "id": "msg_2",
            "thread_id": thread_id,
            "seq": 2,
            "role": "assistant",
            "content": "hello",
            "run_id": run_id,
            "created_at": T0_US + 1,
        },
        _run(run_id, thread_id),
    ]


def _state(http: TestClient, h: dict[str, str]) -> tuple:
    """Everything the tenant can see: its export (less the header's time) and a recall."""
    lines = http.get("/v1/export", headers=h).text.splitlines()[1:]
    recall = http.post(
        "/v1/memory/recall", json={"query": "the garden", "mode": "keyword"}, headers=h
    )
    return lines, [r["content"] for r in recall.json()]


@pytest.fixture
def acme(http: TestClient, new_key) -> dict[str, str]:
    return auth(new_key("acme"))


BAD = [
    ("agent id outside the pattern", {"type": "agent", "id": "../x"}, 422),
    ("agent id too long", {"type": "agent", "id": "x" * 129}, 422),
    ("agent with an unknown field", {"type": "agent", "id": "a", "owner": "root"}, 422),
    ("block type bogus", {"type": "block", "block_type": "bogus", "content": "x"}, 422),
    ("core block without content", {"type": "block", "block_type": "core"}, 422),
    (
        "core block over the limit",
        {"type": "block", "block_type": "core", "content": "x" * 8001},
        413,
    ),
    ("NUL in core text", {"type": "block", "block_type": "core", "content": "a\x00b"}, 422),
    (
        "lone surrogate in core text",
        {"type": "block", "block_type": "core", "content": "\ud800"},
        422,
    ),
    (
        "archival scope id outside the pattern",
        {"type": "archival_lines", "agent_id": "../x", "lines": ["a"]},
        422,
    ),
    ("archival line with a newline", {"type": "archival_lines", "lines": ["a\nb"]}, 422),
    ("archival lines not strings", {"type": "archival_lines", "lines": [1, 2]}, 422),
    (
        "thread created_at past year 9999",
        {"type": "thread", "id": "t", "agent_id": "a", "created_at": 2**62},
        422,
    ),
    (
        "message into a thread not in the file",
        {
            "type": "message",
            "id": "m",
            "thread_id": "thr_other",
            "seq": 1,
            "role": "user",
            "content": "x",
            "created_at": T0_US,
        },
        422,
    ),
]


@pytest.mark.parametrize(("what", "record", "status"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_record_is_refused_naming_its_line_and_nothing_is_written(
    http: TestClient, acme: dict[str, str], what: str, record: dict[str, Any], status: int
) -> None:
    # Good records (archival text included) come first: a refusal must not leave them behind.
    good = [
        {"type": "agent", "id": "early"},
        {"type": "archival_lines", "lines": ["notes about the garden"]},
    ]
    r = _import(http, acme, _body(*good, record))
    assert r.status_code == status, (what, r.text)
    assert r.json()["error"]["field"].startswith("line 4"), r.json()
    assert _state(http, acme) == ([], [])


def test_an_unknown_message_role_is_refused(http: TestClient, acme: dict[str, str]) -> None:
    records = _conversation()
    records[2]["role"] = "tool"
    r = _import(http, acme, _body(*records))
    assert r.status_code == 422 and "role" in r.json()["error"]["field"], r.text
    assert _state(http, acme) == ([], [])


def _threads_of(http: TestClient, h: dict[str, str]) -> list[tuple]:
    """Every thread of the tenant with its messages, less the ids (compared through `renamed`)."""
    found = []
    page = http.get("/v1/threads?limit=1000", headers=h).json()
    for t in sorted(page["data"], key=lambda t: t["created_at"]):
        messages = http.get(f"/v1/threads/{t['id']}/messages?limit=1000", headers=h).json()
        found.append(
            (
                t["agent_id"],
                t["title"],
                t["metadata"],
                t["created_at"],
                t["updated_at"],
                [(m["role"], m["kind"], m["content"], m["created_at"]) for m in messages],
            )
        )
    return found


def test_threads_round_trip_with_agentless_threads_system_messages_and_summaries(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    """Everything `client.threads` can make comes back from export + import into another
    tenant of the same server: agent-less threads, titles and metadata, `system` messages and
    compaction summaries (kind). Strict import refused such exports before (agent_id "" and
    role `system` were out of its rules), and the export dropped title, metadata and kind."""
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=acme).status_code == 201
    loose = http.post(
        "/v1/threads",
        json={"title": "No agent yet", "metadata": {"user": "u_42", "tags": ["a", "b"]}},
        headers=acme,
    ).json()
    bound = http.post(
        "/v1/threads", json={"agent_id": "helper", "title": "Bound"}, headers=acme
    ).json()
    plain = http.post("/v1/threads", json={}, headers=acme).json()
    written = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "my cat is called Miso"},
        {"role": "assistant", "content": "noted"},
    ]
    for thread in (loose, bound):
        r = http.post(
            f"/v1/threads/{thread['id']}/messages", json={"messages": written}, headers=acme
        )
        assert r.status_code == 201, r.text
    more = [{"role": "user", "content": f"turn {i}"} for i in range(4)]
    http.post(f"/v1/threads/{bound['id']}/messages", json={"messages": more}, headers=acme)
    r = http.post(f"/v1/threads/{bound['id']}/compact", json={"keep_last": 2}, headers=acme)
    assert r.status_code == 200 and r.json()["compacted"] > 0, r.text
    source = _threads_of(http, acme)
    assert [t[1] for t in source] == ["No agent yet", "Bound", None]
    assert any(m[1] == "summary" for m in source[1][5])

    exported = http.get("/v1/export", headers=acme).content
    other = auth(new_key("other"))
    r = _import(http, other, exported)
    assert r.status_code == 200, r.text
    assert _threads_of(http, other) == source
    # The ids were taken on this server (by acme): the copies got their own, and say which.
    renamed = r.json()["renamed"]
    assert set(renamed["thread"]) == {loose["id"], bound["id"], plain["id"]}
    copy = renamed["thread"][loose["id"]]
    assert http.get(f"/v1/threads/{copy}", headers=other).json()["title"] == "No agent yet"
    assert http.get(f"/v1/threads/{copy}", headers=acme).status_code == 404
    # What the copy exports imports again, unchanged (into a third tenant).
    third = auth(new_key("third"))
    assert _import(http, third, http.get("/v1/export", headers=other).content).status_code == 200
    assert _threads_of(http, third) == source


@pytest.mark.parametrize(
    "change",
    [{"thread_id": "thr_elsewhere"}, {"options": None}, {"model_input": [{"role": "x"}]}],
    ids=["another thread", "no options", "bad model input"],
)
def test_a_run_record_that_would_not_read_back_is_refused(
    http: TestClient, acme: dict[str, str], change: dict[str, Any]
) -> None:
    records = _conversation()
    records[-1]["record"].update(change)
    assert _import(http, acme, _body(*records)).status_code == 422
    assert _state(http, acme) == ([], [])


def test_messages_cannot_reach_another_tenants_thread(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    other = auth(new_key("other"))
    assert (
        _import(http, other, _body(*_conversation("thr_victim", "run_victim"))).status_code == 200
    )
    before = _state(http, other)
    intruder = {
        "type": "message",
        "id": "msg_evil",
        "thread_id": "thr_victim",
        "seq": 3,
        "role": "assistant",
        "content": "planted",
        "created_at": T0_US,
    }
    r = _import(http, acme, _body({"type": "agent", "id": "helper"}, intruder))
    assert r.status_code == 422, r.text
    assert _state(http, other) == before
    assert "planted" not in http.get("/v1/export", headers=other).text


def test_ids_of_another_tenant_are_no_conflict_and_no_oracle(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    """The same file imports into two tenants: the second gets fresh thread, message and run
    ids (and is told which), both transcripts read back, neither sees the other's."""
    other = auth(new_key("other"))
    body = _body(*_conversation(), {"type": "block", "block_type": "core", "content": "- tea"})
    first = _import(http, other, body)
    assert first.status_code == 200 and first.json()["renamed"] == {}, first.text
    second = _import(http, acme, body)
    assert second.status_code == 200, second.text
    renamed = second.json()["renamed"]
    assert set(renamed) == {"thread", "message", "run"}
    new_thread = renamed["thread"]["thr_1"]
    assert new_thread != "thr_1"
    mine = http.get(f"/v1/threads/{new_thread}/messages", headers=acme)
    assert [(m["role"], m["content"]) for m in mine.json()] == [
        ("user", "hi"),
        ("assistant", "hello"),
    ]
    assert {m["id"] for m in mine.json()} == set(renamed["message"].values())
    run = http.get(f"/v1/runs/{renamed['run']['run_1']}", headers=acme).json()
    assert run["thread_id"] == new_thread and run["id"] == renamed["run"]["run_1"]
    # Each tenant sees its own thread only.
    assert http.get(f"/v1/threads/{new_thread}/messages", headers=other).status_code == 404
    assert http.get("/v1/threads/thr_1/messages", headers=acme).status_code == 404
    assert len(http.get("/v1/threads/thr_1/messages", headers=other).json()) == 2


def test_a_huge_seq_is_renumbered(http: TestClient, acme: dict[str, str]) -> None:
    records = _conversation()
    records[2]["seq"] = 2**31 - 2
    records[3]["seq"] = 2**31 - 1
    assert _import(http, acme, _body(*records)).status_code == 200
    exported = [json.loads(x) for x in http.get("/v1/export", headers=acme).text.splitlines()]
    assert [r["seq"] for r in exported if r["type"] == "message"] == [1, 2]


def test_an_import_that_conflicts_late_leaves_nothing_behind(
    http: TestClient, acme: dict[str, str]
) -> None:
    """The conflict is found after the archival text was embedded and stored: the whole import
    is taken back, index rows included."""
    assert (
        http.put(
            "/v1/memory/core?agent_id=helper",
            json={"content": "mine", "expected_updated_at": None},
            headers=acme,
        ).status_code
        == 200
    )
    before = _state(http, acme)
    body = _body(
        {"type": "block", "block_type": "archival"},
        {"type": "archival_lines", "lines": ["[2026-01-04] notes about the garden", "more"]},
        {"type": "block", "block_type": "core", "agent_id": "helper", "content": "theirs"},
    )
    r = _import(http, acme, body)
    assert r.status_code == 409, r.text
    assert _state(http, acme) == before
    assert (
        http.post(
            "/v1/memory/recall", json={"query": "garden", "mode": "vector"}, headers=acme
        ).json()
        == []
    )
    # Nothing is left in flight for the crash repair either.
    with http.app.state.services.sql.begin() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM archival_writes_in_flight")).scalar() == 0


def test_an_import_round_trips_and_keeps_append_batches(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    for text in ("alpha\nbeta", "gamma", "delta\nepsilon\nzeta"):
        assert (
            http.post(
                "/v1/memory/archival/append?agent_id=helper", json={"text": text}, headers=acme
            ).status_code
            == 200
        )
    exported = http.get("/v1/export", headers=acme).content
    other = auth(new_key("other"))
    assert _import(http, other, exported).status_code == 200
    again = http.get("/v1/export", headers=other).content
    batches = lambda raw: [  # noqa: E731
        json.loads(x)["lines"] for x in raw.splitlines() if b'"archival_lines"' in x
    ]
    assert (
        batches(again)
        == batches(exported)
        == [["alpha", "beta"], ["gamma"], ["delta", "epsilon", "zeta"]]
    )
    got = http.get("/v1/memory/archival?agent_id=helper&start_line=3&end_line=4", headers=other)
    assert got.json()["content"] == "gamma\ndelta"
    hits = http.post(
        "/v1/memory/recall",
        json={"query": "epsilon", "agent_id": "helper", "mode": "keyword"},
        headers=other,
    ).json()
    assert hits and hits[0]["line_number"] >= 4


def _events(http: TestClient, h: dict[str, str]) -> list[dict[str, Any]]:
    r = http.get("/v1/events", params={"limit": 1000}, headers=h)
    assert r.status_code == 200 and not r.json()["has_more"], r.text
    return r.json()["events"]


def test_an_import_records_the_events_of_what_it_wrote(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    """A subscriber learns that data arrived: the import records, in its one transaction, the
    events its records would have recorded as REST writes (agent create, core update, one
    archival append per block, state set, thread create and one append per thread)."""
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=acme).status_code == 201
    http.put(
        "/v1/memory/core?agent_id=helper",
        json={"content": "- tea", "expected_updated_at": None},
        headers=acme,
    )
    for text in ("alpha\nbeta", "gamma"):
        http.post("/v1/memory/archival/append?agent_id=helper", json={"text": text}, headers=acme)
    assert http.put("/v1/state/entries/cart", json={"value": {"items": 2}}, headers=acme).is_success
    thread = http.post("/v1/threads", json={"title": "T"}, headers=acme).json()
    http.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "s"}]},
        headers=acme,
    )
    other = auth(new_key("other"))
    r = _import(http, other, http.get("/v1/export", headers=acme).content)
    assert r.status_code == 200, r.text
    copy = r.json()["renamed"]["thread"][thread["id"]]

    got = _events(http, other)
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert [(e["kind"], e["action"], e["key"], e["namespace"]) for e in got] == [
        ("agent", "create", "helper", ["agent", "helper"]),
        ("core", "update", "core", ["agent", "helper"]),
        ("thread", "create", copy, []),
        ("thread", "append", copy, []),
        ("state", "set", "cart", []),
        ("archival", "append", "archival", ["agent", "helper"]),
    ]
    agent, core, created, append, state, archival = got
    assert core["data"]["content"] == "- tea" and core["updated_at"] is not None
    assert archival["data"]["start_line"] == 1 and archival["data"]["end_line"] == 3
    block = http.get("/v1/memory/archival?agent_id=helper", headers=other).json()
    assert archival["updated_at"] == block["updated_at"]
    assert state["data"] == {"items": 2}
    assert created["data"]["title"] == "T"
    messages = http.get(f"/v1/threads/{copy}/messages", headers=other).json()
    assert append["data"]["count"] == 2 and append["data"]["last_id"] == messages[-1]["id"]
    assert [m["content"] for m in append["data"]["messages"]] == ["hi", "s"]


def test_an_import_that_fails_records_no_event(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    body = _body(*_conversation(), {"type": "block", "block_type": "core", "content": "- tea"})
    engine = http.app.state.services.sql.engine  # type: ignore[attr-defined]
    with next_commit_fails(engine):
        _import(http, acme, body)
    assert _events(http, acme) == []
    http.put("/v1/memory/core", json={"content": "mine", "expected_updated_at": None}, headers=acme)
    assert _import(http, acme, body).status_code == 409
    assert [e["kind"] for e in _events(http, acme)] == ["core"]


def test_imported_message_text_past_the_event_cap_is_left_out_the_range_stays(
    http: TestClient, acme: dict[str, str]
) -> None:
    records = _conversation()
    long = [dict(records[2], id=f"msg_long{i}", seq=3 + i, content="x" * 30_000) for i in range(3)]
    for m in long:
        m["run_id"] = None
    r = _import(http, acme, _body(*records[:4], *long, records[4]))
    assert r.status_code == 200, r.text
    append = [e for e in _events(http, acme) if e["action"] == "append"]
    assert len(append) == 1 and append[0]["truncated"] is True
    assert append[0]["data"] == {
        "count": 5,
        "first_id": "msg_1",
        "last_id": "msg_long2",
        "run_id": None,
    }


def test_a_thread_or_run_of_an_agent_the_tenant_lacks_is_refused(
    http: TestClient, acme: dict[str, str], new_key
) -> None:
    """As `POST /v1/threads` answers 404 for an unknown agent, an import refuses a thread (or a
    run) naming an agent that is neither in the file nor the tenant's; the tenant's own agents
    are fine. Before, such threads were stored bound to no existing agent: no run could use
    them and no agent deletion removed them."""
    other = auth(new_key("other"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=other).status_code == 201
    records = _conversation()[1:]  # no agent record
    r = _import(http, acme, _body(*records))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith("line 2"), r.text
    assert "helper" in r.json()["error"]["message"]
    assert _state(http, acme) == ([], [])
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=acme).status_code == 201
    assert _import(http, acme, _body(*records)).status_code == 200
    assert _import(http, other, _body({"type": "agent", "id": "helper"})).status_code == 409


@pytest.mark.parametrize("thread_agent", [None, "other"])
def test_a_run_in_a_thread_of_another_agent_or_none_is_refused(
    http: TestClient, acme: dict[str, str], thread_agent
) -> None:
    records = _conversation()
    records[1]["agent_id"] = thread_agent
    r = _import(http, acme, _body({"type": "agent", "id": "other"}, *records))
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("line 7"), r.text
    assert _state(http, acme) == ([], [])
