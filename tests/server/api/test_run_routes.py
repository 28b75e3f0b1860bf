"""Agents, runs and threads over HTTP: the real app, real memory, a scripted provider (respx)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agentmem.tools import memory_tools
from agentmem_server import Settings
from agentmem_server.services.prompt import iso_utc
from agentmem_server.storage.sql.schema import messages, runs, threads

from support import ScriptedLLM, auth, scripted_llm_settings, tool_call

AUTO = {"memory_policy": {"archival_mode": "auto", "archival_min_score": 0.0}}


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    """The in-process app (tests/server/conftest.py) pointed at the scripted provider (`llm`)."""
    return scripted_llm_settings(tmp_path, database_url=database_url)


@pytest.fixture
def h(http: TestClient, new_key) -> dict[str, str]:
    headers = auth(new_key("acme"))
    r = http.post(
        "/v1/agents", json={"agent_id": "helper", "instructions": "Be brief."}, headers=headers
    )
    assert r.status_code == 201, r.text
    return headers


def stamp(api_value: str) -> str:
    """A timestamp from the API as the prompt and tool results spell it."""
    return iso_utc(datetime.fromisoformat(api_value))


def stored_rows(http: TestClient) -> tuple[int, int, int]:
    with http.app.state.services.sql.begin() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (threads, messages, runs)
        )


def test_agent_crud_and_conflict(http: TestClient, h):
    dup = http.post("/v1/agents", json={"agent_id": "helper"}, headers=h)
    assert dup.status_code == 409 and dup.json()["error"]["type"] == "conflict"
    got = http.get("/v1/agents/helper", headers=h).json()
    assert (got["id"], got["instructions"], got["model"]) == ("helper", "Be brief.", None)
    assert [a["id"] for a in http.get("/v1/agents", headers=h).json()] == ["helper"]
    assert http.delete("/v1/agents/helper", headers=h).status_code == 204
    assert http.get("/v1/agents/helper", headers=h).status_code == 404
    assert http.delete("/v1/agents/helper", headers=h).status_code == 404


def test_run_sends_instructions_and_real_core_blocks_then_the_user_message(
    http: TestClient, h, llm: ScriptedLLM
):
    user = http.put(
        "/v1/memory/core", json={"content": "Prefers tea", "expected_updated_at": None}, headers=h
    ).json()
    agent = http.put(
        "/v1/memory/core",
        params={"agent_id": "helper"},
        json={"content": "Ana's agent", "expected_updated_at": None},
        headers=h,
    ).json()
    r = http.post("/v1/agents/helper/runs", json={"message": "Hi"}, headers=h)
    assert r.status_code == 200, r.text
    body = llm.bodies[0]
    assert body["model"] == "test-model" and body["tools"] == memory_tools()
    (system, user_msg) = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    assert (
        f'<memory_block scope="user" updated_at="{stamp(user["updated_at"])}">\n'
        "Prefers tea\n</memory_block>" in system["content"]
    )
    assert (
        '<memory_block scope="agent" agent_id="helper" '
        f'updated_at="{stamp(agent["updated_at"])}">\n'
        "Ana's agent\n</memory_block>" in system["content"]
    )
    assert user_msg == {"role": "user", "content": "Hi"}
    result = r.json()
    assert result["output"] == "ok" and result["agent_id"] == "helper" and result["recalled"] == []
    assert result["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_auto_mode_injects_recalled_archival_lines_with_scope_and_line(
    http: TestClient, h, llm: ScriptedLLM
):
    lines = "the cat sleeps on the sofa\nAcme renewal is due in May\nthe printer is broken"
    assert (
        http.post(
            "/v1/memory/archival/append",
            params={"agent_id": "helper"},
            json={"text": lines},
            headers=h,
        ).status_code
        == 200
    )
    opts = {
        "memory_policy": {"archival_mode": "auto", "archival_min_score": 0.0, "archival_limit": 1}
    }
    result = http.post(
        "/v1/agents/helper/runs", json={"message": "Acme renewal", "options": opts}, headers=h
    ).json()

    sent = llm.messages()
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    reminder = sent[1]["content"]
    assert reminder.startswith("<system_reminder>\n") and reminder.count("<memory ") == 1
    (hit,) = result["recalled"]
    assert f'<memory scope="agent" agent_id="helper" line="{hit["line_number"]}"' in reminder
    assert hit["content"] in reminder
    # The matches are injected, so the archival recall tool is not offered; the write tools are.
    offered = [t["function"]["name"] for t in llm.bodies[0]["tools"]]
    assert "recall_archival_memory" not in offered and "append_archival_memory" in offered


def test_stale_core_update_by_the_model_gets_the_current_block_and_can_retry(
    http: TestClient, h, llm: ScriptedLLM
):
    current = http.put(
        "/v1/memory/core",
        params={"agent_id": "helper"},
        json={"content": "v1", "expected_updated_at": None},
        headers=h,
    ).json()
    stale = tool_call(
        "update_core_memory", {"content": "v2", "expected_updated_at": "2020-01-01T00:00:00+00:00"}
    )
    retry = tool_call(
        "update_core_memory",
        {"content": "v1\nv2", "expected_updated_at": current["updated_at"]},
        "call_2",
    )
    llm.reply(None, [stale]).reply(None, [retry]).reply("saved")

    r = http.post("/v1/agents/helper/runs", json={"message": "remember v2"}, headers=h)
    assert r.status_code == 200, r.text
    conflict = json.loads(llm.messages(1)[-1]["content"])
    assert conflict["error"] == "conflict"
    assert (conflict["current_content"], conflict["current_updated_at"]) == (
        "v1",
        stamp(current["updated_at"]),
    )
    assert json.loads(llm.messages(2)[-1]["content"])["ok"] is True
    assert (
        http.get("/v1/memory/core", params={"agent_id": "helper"}, headers=h).json()["content"]
        == "v1\nv2"
    )


def test_replay_sends_byte_identical_json(http: TestClient, h, llm: ScriptedLLM):
    http.post(
        "/v1/memory/archival/append",
        params={"agent_id": "helper"},
        json={"text": "Acme renews in May"},
        headers=h,
    )
    first = http.post(
        "/v1/agents/helper/runs", json={"message": "Acme?", "options": AUTO}, headers=h
    ).json()
    http.delete("/v1/memory/archival", params={"agent_id": "helper"}, headers=h)

    replay = http.post(f"/v1/runs/{first['id']}/replay", headers=h)
    assert replay.status_code == 200, replay.text
    assert llm.requests[1].content == llm.requests[0].content
    assert replay.json()["replay_of"] == first["id"]
    run = http.get(f"/v1/runs/{replay.json()['id']}", headers=h).json()
    assert run["replay_of"] == first["id"]
    assert [
        m["content"]
        for m in http.get(f"/v1/threads/{first['thread_id']}/messages", headers=h).json()
    ] == ["Acme?", "ok"]


def test_run_record_and_transcript_over_http(http: TestClient, h, llm: ScriptedLLM):
    http.post(
        "/v1/memory/archival/append",
        params={"agent_id": "helper"},
        json={"text": "HIDDEN-FACT about Acme"},
        headers=h,
    )
    first = http.post(
        "/v1/agents/helper/runs", json={"message": "Acme?", "options": AUTO}, headers=h
    ).json()
    llm.reply(None, [tool_call("recall_archival_memory", {"query": "Acme"})]).reply("second")
    second = http.post(
        "/v1/agents/helper/runs",
        json={"message": "more", "thread_id": first["thread_id"]},
        headers=h,
    ).json()
    assert second["thread_id"] == first["thread_id"]

    run = http.get(f"/v1/runs/{first['id']}", headers=h).json()
    assert [
        {k: v for k, v in m.items() if v is not None} for m in run["model_input"]
    ] == llm.messages(0)
    assert (
        "HIDDEN-FACT" in run["model_input"][1]["content"]
        and run["options"]["memory_policy"]["archival_mode"] == "auto"
    )

    transcript = http.get(f"/v1/threads/{first['thread_id']}/messages", headers=h).json()
    assert [(m["role"], m["content"]) for m in transcript] == [
        ("user", "Acme?"),
        ("assistant", "ok"),
        ("user", "more"),
        ("assistant", "second"),
    ]
    assert "HIDDEN-FACT" not in json.dumps(transcript) and "system_reminder" not in json.dumps(
        transcript
    )
    # The second run's history is the visible transcript only: no reminder from the first run.
    assert "HIDDEN-FACT" not in json.dumps(llm.messages(1)[:-1])


def test_provider_failure_is_502_with_its_message_and_stores_nothing(
    http: TestClient, h, llm: ScriptedLLM
):
    llm.fail(500, "the model is on fire")
    r = http.post("/v1/agents/helper/runs", json={"message": "Hi"}, headers=h)
    assert r.status_code == 502
    assert r.headers["x-should-retry"] == "false"  # the server already retried the provider
    error = r.json()["error"]
    assert error["type"] == "provider_error" and "the model is on fire" in error["message"]
    assert stored_rows(http) == (0, 0, 0)


def test_unknown_agent_is_404_without_calling_the_provider(http: TestClient, h, llm: ScriptedLLM):
    r = http.post("/v1/agents/ghost/runs", json={"message": "Hi"}, headers=h)
    assert r.status_code == 404 and "agents.create" in r.json()["error"]["message"]
    assert llm.requests == []


def test_another_tenants_agent_thread_and_run_are_404(
    http: TestClient, h, new_key, llm: ScriptedLLM
):
    mine = http.post("/v1/agents/helper/runs", json={"message": "Hi"}, headers=h).json()
    other = auth(new_key("globex"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=other).status_code == 201

    assert http.get(f"/v1/runs/{mine['id']}", headers=other).status_code == 404
    assert http.post(f"/v1/runs/{mine['id']}/replay", headers=other).status_code == 404
    assert http.get(f"/v1/threads/{mine['thread_id']}/messages", headers=other).status_code == 404
    r = http.post(
        "/v1/agents/helper/runs",
        json={"message": "Hi", "thread_id": mine["thread_id"]},
        headers=other,
    )
    assert r.status_code == 404
    assert http.delete("/v1/agents/helper", headers=other).status_code == 204
    # Globex deleting its own "helper" left Acme's untouched.
    assert http.get(f"/v1/runs/{mine['id']}", headers=h).status_code == 200
    assert len(llm.requests) == 1


def test_delete_agent_removes_its_memory_threads_and_runs(http: TestClient, h, llm: ScriptedLLM):
    http.put(
        "/v1/memory/core",
        params={"agent_id": "helper"},
        json={"content": "x", "expected_updated_at": None},
        headers=h,
    )
    http.post(
        "/v1/memory/archival/append",
        params={"agent_id": "helper"},
        json={"text": "Acme renews in May"},
        headers=h,
    )
    http.put(
        "/v1/memory/core",
        json={"content": "user memory stays", "expected_updated_at": None},
        headers=h,
    )
    run = http.post("/v1/agents/helper/runs", json={"message": "Hi"}, headers=h).json()

    assert http.delete("/v1/agents/helper", headers=h).status_code == 204

    assert http.get("/v1/memory/core", params={"agent_id": "helper"}, headers=h).status_code == 404
    assert (
        http.get("/v1/memory/archival", params={"agent_id": "helper"}, headers=h).status_code == 404
    )
    recall = http.post(
        "/v1/memory/recall",
        json={"query": "Acme renews", "agent_id": "helper", "scope": "agent"},
        headers=h,
    )
    assert recall.json() == []
    assert http.get(f"/v1/runs/{run['id']}", headers=h).status_code == 404
    assert http.get(f"/v1/threads/{run['thread_id']}/messages", headers=h).status_code == 404
    assert http.get("/v1/memory/core", headers=h).json()["content"] == "user memory stays"
    assert stored_rows(http) == (0, 0, 0)
