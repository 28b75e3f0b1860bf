"""remember / recall / forget: executed by the server in the agent's namespace, seed 001's shapes;
the policy decides which tools a run offers, and `auto` runs can write memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem.tools import MEMORY_TOOL_NAMES, memory_tools
from agentmem_server import Settings

from support import ScriptedLLM, auth, scripted_llm_settings, tool_call


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return scripted_llm_settings(tmp_path, database_url=database_url, state_value_max_bytes=100)


@pytest.fixture
def h(http: TestClient, new_key) -> dict[str, str]:
    headers = auth(new_key("acme"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=headers).status_code == 201
    return headers


def tool_results(llm: ScriptedLLM, call: int) -> list[dict]:
    return [json.loads(m["content"]) for m in llm.messages(call) if m["role"] == "tool"]


def run(http: TestClient, h, calls: list[dict], options: dict | None = None) -> dict:
    """One run whose model makes `calls` (one round), then answers; the tool results."""
    llm: ScriptedLLM = http.app.state.test_llm
    llm.reply(None, calls).reply("done")
    body = {"message": "go", **({"options": options} if options else {})}
    r = http.post("/v1/agents/helper/runs", json=body, headers=h)
    assert r.status_code == 200, r.text
    return tool_results(llm, len(llm.requests) - 1)


@pytest.fixture(autouse=True)
def _share_llm(http: TestClient, llm: ScriptedLLM) -> None:
    http.app.state.test_llm = llm


def call(name: str, args: dict, n: int) -> dict:
    return tool_call(name, args, call_id=f"call_{n}")


def test_seed_001_shapes_in_the_agents_namespace(http: TestClient, h):
    target = {"ticker": "AAPL", "cik": "0000320193", "since": "2026-05-09"}
    results = run(
        http,
        h,
        [
            call("remember", {"key": "current_research_target", "value": target}, 1),
            call("remember", {"key": "draft_email_to_acme", "value": "Dear Acme"}, 2),
            call("recall", {"key": "current_research_target"}, 3),
            call("recall", {}, 4),
            call("forget", {"key": "current_research_target"}, 5),
            call("forget", {"key": "current_research_target"}, 6),
            call("recall", {"key": "current_research_target"}, 7),
        ],
    )
    assert results == [
        {"ok": True, "key": "current_research_target"},
        {"ok": True, "key": "draft_email_to_acme"},
        {"value": target},
        {"keys": ["current_research_target", "draft_email_to_acme"]},
        {"ok": True, "deleted": True},
        {"ok": True, "deleted": False},
        {"value": None, "found": False},
    ]
    # What the tools wrote is the agent's namespace, seen by the client API too.
    entry = http.get(
        "/v1/state/entries/draft_email_to_acme?namespace=agent/helper", headers=h
    ).json()
    assert entry["value"] == "Dear Acme"
    assert http.get("/v1/state/entries/draft_email_to_acme", headers=h).status_code == 404


def test_bad_tool_calls_come_back_as_tool_errors(http: TestClient, h):
    results = run(
        http,
        h,
        [
            call("remember", {"key": "", "value": 1}, 1),
            call("remember", {"key": "k"}, 2),
            call("remember", {"key": "k", "value": "x" * 200}, 3),
            call("forget", {}, 4),
            call("recall", {"prefix": 5}, 5),
            call("remember", {"key": "a\nb", "value": 1}, 6),
        ],
    )
    assert [r.get("error") for r in results] == [
        "invalid_arguments",
        "invalid_arguments",
        "payload_too_large",
        "invalid_arguments",
        "invalid_arguments",
        "invalid_request",
    ]
    assert http.get("/v1/state/entries?namespace=agent/helper", headers=h).json()["items"] == []


def test_auto_runs_offer_the_write_tools_and_can_write(http: TestClient, h):
    llm: ScriptedLLM = http.app.state.test_llm
    results = run(
        http,
        h,
        [call("remember", {"key": "k", "value": 1}, 1)],
        {"memory_policy": {"archival_mode": "auto"}},
    )
    assert results == [{"ok": True, "key": "k"}]
    offered = [t["function"]["name"] for t in llm.bodies[0]["tools"]]
    assert offered == [n for n in MEMORY_TOOL_NAMES if n != "recall_archival_memory"]
    assert http.get("/v1/state/entries/k?namespace=agent/helper", headers=h).json()["value"] == 1


def test_the_policy_chooses_the_tools_and_others_are_refused(http: TestClient, h):
    llm: ScriptedLLM = http.app.state.test_llm
    results = run(
        http,
        h,
        [call("remember", {"key": "k", "value": 1}, 1), call("recall", {}, 2)],
        {"memory_policy": {"tools": ["recall"]}},
    )
    assert llm.bodies[0]["tools"] == memory_tools(["recall"])
    assert results[0]["error"] == "unknown_tool" and "offered: recall" in results[0]["message"]
    assert results[1] == {"keys": []}
    bad = http.post(
        "/v1/agents/helper/runs",
        json={"message": "x", "options": {"memory_policy": {"tools": ["rm_rf"]}}},
        headers=h,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith(
        "options.memory_policy.tools"
    )
    none = run(http, h, [call("recall", {}, 1)], {"memory_policy": {"tools": []}})
    assert "tools" not in llm.bodies[-2] or llm.bodies[-2]["tools"] in ([], None)
    assert none[0]["error"] == "unknown_tool"


def test_tool_calls_never_cross_tenants(http: TestClient, h, new_key):
    other = auth(new_key("other"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=other).status_code == 201
    run(http, h, [call("remember", {"key": "secret", "value": "acme's"}, 1)])
    results = run(
        http,
        other,
        [
            call("recall", {"key": "secret"}, 1),
            call("recall", {}, 2),
            call("forget", {"key": "secret"}, 3),
        ],
    )
    assert results == [
        {"value": None, "found": False},
        {"keys": []},
        {"ok": True, "deleted": False},
    ]
    assert (
        http.get("/v1/state/entries/secret?namespace=agent/helper", headers=h).json()["value"]
        == "acme's"
    )


def test_deleting_the_agent_removes_its_namespace(http: TestClient, h):
    run(http, h, [call("remember", {"key": "k", "value": 1}, 1)])
    http.put("/v1/state/entries/k?namespace=agent/helper/sub", json={"value": 2}, headers=h)
    http.put("/v1/state/entries/k?namespace=agent/helper2", json={"value": 3}, headers=h)
    assert http.delete("/v1/agents/helper", headers=h).status_code == 204
    assert http.get("/v1/state/entries/k?namespace=agent/helper", headers=h).status_code == 404
    assert http.get("/v1/state/entries/k?namespace=agent/helper/sub", headers=h).status_code == 404
    assert http.get("/v1/state/entries/k?namespace=agent/helper2", headers=h).json()["value"] == 3
