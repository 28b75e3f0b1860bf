"""Arguments the model gives a memory tool are untrusted input: a bad one comes back to the model
as a tool error and the run goes on; it never fails the run with a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem_server import Settings

from support import ScriptedLLM, auth, scripted_llm_settings, tool_call


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    """The in-process app (tests/server/conftest.py) pointed at the scripted provider (`llm`)."""
    return scripted_llm_settings(tmp_path, database_url=database_url)


BAD_CALLS = [
    ("append_archival_memory", {"text": "a\u0000b"}),
    ("append_archival_memory", '{"text": "\\ud800"}'),
    ("update_core_memory", {"content": "a\u0000b", "expected_updated_at": None}),
    ("update_core_memory", {"content": "ok", "expected_updated_at": "0001-01-01T00:00:00+05:00"}),
    ("update_core_memory", {"content": "ok", "expected_updated_at": "9999-12-31T23:59:59-12:00"}),
    ("recall_archival_memory", {"query": "a\u0000b"}),
]


@pytest.mark.parametrize(("tool", "arguments"), BAD_CALLS, ids=[f"{t} {a}" for t, a in BAD_CALLS])
def test_a_bad_tool_argument_is_a_tool_error_not_a_500(
    http: TestClient, new_key, llm: ScriptedLLM, tool: str, arguments
) -> None:
    h = auth(new_key("acme"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=h).status_code == 201
    llm.reply(None, [tool_call(tool, arguments)]).reply("done")
    r = http.post("/v1/agents/helper/runs", json={"message": "go"}, headers=h)
    assert r.status_code == 200, r.text
    result = json.loads(llm.messages(1)[-1]["content"])
    assert result["error"] == "invalid_arguments", result
    assert http.get("/v1/memory/archival?agent_id=helper", headers=h).status_code == 404
    assert http.get("/v1/memory/core?agent_id=helper", headers=h).status_code == 404
