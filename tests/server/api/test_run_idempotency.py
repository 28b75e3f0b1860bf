"""A run retried with its idempotency key never calls the model again, whatever the first
answered."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem_server import Settings

from support import ScriptedLLM, auth, scripted_llm_settings, tool_call


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    """The in-process app (tests/server/conftest.py) pointed at the scripted provider (`llm`)."""
    return scripted_llm_settings(tmp_path, database_url=database_url)


def test_a_run_that_wrote_through_a_tool_and_then_failed_is_not_run_again(
    http: TestClient, new_key, llm: ScriptedLLM
):
    key = new_key("acme")
    assert (
        http.post("/v1/agents", json={"agent_id": "helper"}, headers=auth(key)).status_code == 201
    )
    llm.reply(None, [tool_call("append_archival_memory", {"text": "likes tea"})]).fail(
        500, "model overloaded"
    )
    h = auth(key) | {"Idempotency-Key": "run-1"}
    first = http.post("/v1/agents/helper/runs", json={"message": "remember tea"}, headers=h)
    again = http.post("/v1/agents/helper/runs", json={"message": "remember tea"}, headers=h)
    assert first.status_code == 502 and first.headers["x-should-retry"] == "false"
    assert (
        again.status_code == 502
        and again.json() == first.json()
        and again.headers["idempotent-replayed"] == "true"
    )
    assert again.headers["x-should-retry"] == "false"
    assert len(llm.requests) == 2, "the retry called the model again"
    archival = http.get("/v1/memory/archival?agent_id=helper", headers=auth(key)).json()
    assert archival["line_count"] == 1


def test_a_replay_retried_with_its_key_answers_the_same_new_run(
    http: TestClient, new_key, llm: ScriptedLLM
):
    key = new_key("acme")
    http.post("/v1/agents", json={"agent_id": "helper"}, headers=auth(key))
    run = http.post("/v1/agents/helper/runs", json={"message": "hi"}, headers=auth(key)).json()
    h = auth(key) | {"Idempotency-Key": "replay-1"}
    first = http.post(f"/v1/runs/{run['id']}/replay", headers=h)
    again = http.post(f"/v1/runs/{run['id']}/replay", headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"] != run["id"]
    assert len(llm.requests) == 2
