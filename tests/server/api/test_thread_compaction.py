"""Thread compaction over HTTP (DESIGN §12), on SQLite and PostgreSQL: the exact summarising
request to an OpenAI-compatible provider, the thread and archival memory afterwards, later runs,
atomicity when the commit fails or the thread changes meanwhile, the offline provider's
extractive summary, and the automatic policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agentmem_server import Settings
from agentmem_server.services import compaction
from agentmem_server.services import threads as threads_service
from agentmem_server.storage.sql.schema import threads

from support import ScriptedLLM, auth, next_commit_fails, scripted_llm_settings

TURNS = [
    ("user", "My sister Ana lives in Porto."),
    ("assistant", "Noted: Ana, Porto."),
    ("user", "Our anniversary is on 14 June.\nBook something nice."),
    ("assistant", "I will look for restaurants."),
    ("user", "What is the weather like?"),
    ("assistant", "Sunny."),
]


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return scripted_llm_settings(tmp_path, database_url=database_url)


@pytest.fixture
def h(http: TestClient, new_key) -> dict[str, str]:
    headers = auth(new_key("acme"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=headers).status_code == 201
    return headers


def new_thread(
    http: TestClient, h: dict[str, str], turns=TURNS
) -> tuple[str, list[dict[str, Any]]]:
    thread = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    body = {"messages": [{"role": r, "content": c} for r, c in turns]}
    written = http.post(f"/v1/threads/{thread['id']}/messages", json=body, headers=h).json()
    return thread["id"], written


def archival(http: TestClient, h: dict[str, str]) -> str:
    r = http.get("/v1/memory/archival", params={"agent_id": "helper"}, headers=h)
    return r.json()["content"] if r.status_code == 200 else ""


def stamp(message: dict[str, Any]) -> str:
    from datetime import datetime

    return datetime.fromisoformat(message["created_at"]).strftime("[%Y-%m-%d %H:%M UTC]")


def test_compaction_sends_the_exact_summarising_request_and_moves_the_turns(
    http: TestClient, h, llm: ScriptedLLM
):
    thread_id, written = new_thread(http, h)
    llm.reply("Ana (sister) lives in Porto; anniversary 14 June, restaurant wanted.")
    r = http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 2}, headers=h)
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["compacted"], result["archived_lines"]) == (4, 5)

    dated = [f"{stamp(m)} {m['role']}: {m['content']}" for m in written[:4]]
    assert llm.bodies == [
        {
            "model": "test-model",
            "messages": [
                {"role": "system", "content": compaction.SUMMARY_INSTRUCTIONS},
                {"role": "user", "content": "Conversation:\n" + "\n".join(dated)},
            ],
        }
    ]
    assert llm.requests[0].url == "http://llm.test/v1/chat/completions"

    transcript = http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()
    assert [m["kind"] for m in transcript] == ["summary", "message", "message"]
    summary = transcript[0]
    assert summary == result["summary"]
    assert summary["role"] == "system"
    assert summary["content"] == (
        compaction.SUMMARY_HEADER.format(count=4)
        + "\nAna (sister) lives in Porto; anniversary 14 June, restaurant wanted."
    )
    assert [m["id"] for m in transcript[1:]] == [m["id"] for m in written[4:]]

    s = stamp(written[0])
    assert archival(http, h).splitlines() == [
        f"{s} user: My sister Ana lives in Porto.",
        f"{s} assistant: Noted: Ana, Porto.",
        f"{s} user: Our anniversary is on 14 June.",
        f"{s} user: Book something nice.",
        f"{s} assistant: I will look for restaurants.",
    ]
    hits = http.post(
        "/v1/memory/recall",
        json={"query": "anniversary", "agent_id": "helper", "mode": "keyword"},
        headers=h,
    ).json()
    assert any("14 June" in hit["content"] for hit in hits)

    # A later run sees the summary where the turns were.
    http.post(
        "/v1/agents/helper/runs", json={"message": "When?", "thread_id": thread_id}, headers=h
    )
    sent = llm.messages(1)
    assert [(m["role"], m["content"]) for m in sent[-4:]] == [
        ("system", summary["content"]),
        ("user", "What is the weather like?"),
        ("assistant", "Sunny."),
        ("user", "When?"),
    ]


def test_compacting_again_folds_the_earlier_summary_in(http: TestClient, h, llm: ScriptedLLM):
    thread_id, _ = new_thread(http, h)
    llm.reply("first summary")
    http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 4}, headers=h)
    more = {
        "messages": [
            {"role": "user", "content": "I also like jazz."},
            {"role": "assistant", "content": "Good."},
        ]
    }
    http.post(f"/v1/threads/{thread_id}/messages", json=more, headers=h)
    llm.reply("second summary")
    result = http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 1}, headers=h).json()
    assert result["compacted"] == 6  # the old summary and five messages
    user = llm.messages(1)[1]["content"]
    assert user.startswith("Earlier summary:\nfirst summary\n\nConversation:\n")
    assert (
        "What is the weather like?" in user and "I also like jazz." in user and "Good." not in user
    )
    transcript = http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()
    assert [m["content"].splitlines()[-1] for m in transcript] == ["second summary", "Good."]
    # Every turn is in archival memory once: the summary itself is never archived.
    lines = archival(http, h).splitlines()
    assert len(lines) == 8 and not any("summary" in line for line in lines)


def test_nothing_to_compact_and_runs_turns_are_never_split(http: TestClient, h, llm: ScriptedLLM):
    thread_id, _ = new_thread(http, h, TURNS[:2])
    r = http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 5}, headers=h).json()
    assert (r["compacted"], r["summary"]) == (0, None) and llm.requests == []

    run_thread = http.post("/v1/agents/helper/runs", json={"message": "one"}, headers=h).json()[
        "thread_id"
    ]
    http.post("/v1/agents/helper/runs", json={"message": "two", "thread_id": run_thread}, headers=h)
    # keep_last=1 would split the second run's turn: its question stays with its answer.
    result = http.post(f"/v1/threads/{run_thread}/compact", json={"keep_last": 1}, headers=h).json()
    assert result["compacted"] == 2
    kept = http.get(f"/v1/threads/{run_thread}/messages", headers=h).json()
    assert [m["content"] for m in kept[1:]] == ["two", "ok"]


def test_a_failed_commit_leaves_the_thread_and_archival_memory_as_they_were(
    http: TestClient, h, llm: ScriptedLLM
):
    thread_id, written = new_thread(http, h)
    with next_commit_fails(http.app.state.services.sql.engine) as fired:
        http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 2}, headers=h)
    assert fired
    transcript = http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()
    assert [m["id"] for m in transcript] == [m["id"] for m in written]
    assert archival(http, h) == ""
    hits = http.post(
        "/v1/memory/recall",
        json={"query": "anniversary", "agent_id": "helper", "mode": "keyword"},
        headers=h,
    ).json()
    assert hits == []


def test_a_thread_changed_during_compaction_is_409_and_nothing_moves(
    http: TestClient, h, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
):
    thread_id, written = new_thread(http, h)
    real = threads_service.summarise

    async def meanwhile(provider, model, messages):
        text = await real(provider, model, messages)
        # Another client deletes the oldest message while the provider is summarising.
        services = http.app.state.services
        await services.threads.delete_messages(tenant_of(http), thread_id, before=written[1]["id"])
        return text

    monkeypatch.setattr(threads_service, "summarise", meanwhile)
    r = http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": 2}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["field"] == "thread_id"
    transcript = http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()
    assert [m["id"] for m in transcript] == [m["id"] for m in written[1:]]
    assert archival(http, h) == ""


def tenant_of(http: TestClient) -> str:
    """The tenant of the one thread stored."""
    with http.app.state.services.sql.begin() as conn:
        return conn.execute(select(threads.c.tenant_id)).scalar_one()


def test_agentless_thread_and_another_tenants_thread(
    http: TestClient, h, new_key, llm: ScriptedLLM
):
    free = http.post("/v1/threads", json={}, headers=h).json()
    http.post(
        f"/v1/threads/{free['id']}/messages",
        json={"messages": [{"role": "user", "content": "x"}] * 3},
        headers=h,
    )
    r = http.post(f"/v1/threads/{free['id']}/compact", json={"keep_last": 0}, headers=h)
    assert r.status_code == 422 and "no agent" in r.json()["error"]["message"]

    thread_id, written = new_thread(http, h)
    other = auth(new_key("globex"))
    assert (
        http.post(
            f"/v1/threads/{thread_id}/compact", json={"keep_last": 0}, headers=other
        ).status_code
        == 404
    )
    assert len(http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()) == len(written)
    assert llm.requests == []


@pytest.mark.parametrize("keep_last", [-1, 1001, "two"])
def test_bad_keep_last_is_422(http: TestClient, h, keep_last):
    thread_id, _ = new_thread(http, h)
    r = http.post(f"/v1/threads/{thread_id}/compact", json={"keep_last": keep_last}, headers=h)
    assert r.status_code == 422 and "keep_last" in r.text


def test_automatic_compaction_past_the_token_budget(
    tmp_path: Path, database_url: str, new_key_factory, llm: ScriptedLLM
):
    settings = scripted_llm_settings(
        tmp_path,
        database_url=database_url,
        thread_compact_token_budget=60,
        thread_compact_keep_last=2,
    )
    with new_key_factory(settings) as (http, h):
        first = http.post(
            "/v1/agents/helper/runs", json={"message": "My locker code is 4512."}, headers=h
        ).json()
        thread_id = first["thread_id"]
        assert len(http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()) == 2
        long = "Tell me about the trip to Lisbon in May with the whole family. " * 3
        http.post(
            "/v1/agents/helper/runs", json={"message": long, "thread_id": thread_id}, headers=h
        )
        transcript = http.get(f"/v1/threads/{thread_id}/messages", headers=h).json()
        assert [m["kind"] for m in transcript] == ["summary", "message", "message"]
        assert "locker code is 4512" in archival(http, h)


@pytest.fixture
def new_key_factory():
    from contextlib import contextmanager

    from agentmem_server import create_app

    from support import ADMIN_KEY

    @contextmanager
    def open_app(settings: Settings):
        with TestClient(create_app(settings)) as http:
            r = http.post(
                "/v1/admin/tenants/acme/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
            h = auth(r.json()["key"])
            assert (
                http.post("/v1/agents", json={"agent_id": "helper"}, headers=h).status_code == 201
            )
            yield http, h

    return open_app
