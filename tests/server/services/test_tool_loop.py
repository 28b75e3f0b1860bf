"""tool_only runs: the server executes memory tools in a loop bounded by max_steps."""

from __future__ import annotations

import json

import pytest

from agentmem.tools import memory_tools
from agentmem.types import AgentCreateRequest, RunOptions, RunRequest

from support import FakeMemory, ScriptedLLM, block, match, tool_call

TENANT = "ten_a"
STAMP = "2025-03-01T12:00:00.123456Z"


@pytest.fixture
async def runs(services):
    agents, runs = services
    await agents.create(TENANT, AgentCreateRequest(agent_id="helper"))
    return runs


def tool_results(llm: ScriptedLLM, call: int) -> list[dict]:
    return [json.loads(m["content"]) for m in llm.messages(call) if m["role"] == "tool"]


async def test_recall_tool_result_goes_back_to_the_model_and_into_recalled(
    runs, llm: ScriptedLLM, memory: FakeMemory
):
    memory.archival = [
        match("Acme renews in May", 0.8, line=7),
        match("Acme likes email", 0.3, line=9),
        match("noise", 0.1),
    ]
    llm.reply(None, [tool_call("recall_archival_memory", {"query": "Acme", "limit": 3})]).reply(
        "In May."
    )

    result = await runs.run(TENANT, "helper", RunRequest(message="When does Acme renew?"))

    assert result.output == "In May." and result.stop_reason == "stop"
    (recall,) = memory.recall_requests
    # The policy's min_score holds for tool recalls too; the agent scope is the running agent's.
    assert (recall.query, recall.limit, recall.min_score, recall.agent_id, recall.scope) == (
        "Acme",
        3,
        0.25,
        "helper",
        "all",
    )
    second = llm.messages(1)
    assert second[:1] == llm.messages(0) == [{"role": "user", "content": "When does Acme renew?"}]
    assert second[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [tool_call("recall_archival_memory", {"query": "Acme", "limit": 3})],
    }
    assert (
        len(second) == 3 and second[2]["role"] == "tool" and second[2]["tool_call_id"] == "call_1"
    )
    assert json.loads(second[2]["content"]) == {
        "matches": [
            {
                "content": "Acme renews in May",
                "score": 0.8,
                "scope": "agent",
                "line_number": 7,
                "end_line": 7,
                "updated_at": STAMP,
            },
            {
                "content": "Acme likes email",
                "score": 0.3,
                "scope": "agent",
                "line_number": 9,
                "end_line": 9,
                "updated_at": STAMP,
            },
        ]
    }
    assert llm.bodies[1]["tools"] == memory_tools()
    assert [m.content for m in result.recalled] == ["Acme renews in May", "Acme likes email"]
    assert (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.usage.total_tokens,
    ) == (20, 10, 30)


async def test_append_tool_writes_to_the_agents_archival_memory(runs, llm, memory: FakeMemory):
    llm.reply(
        None, [tool_call("append_archival_memory", {"text": "User's dog is called Rex"})]
    ).reply("Noted.")
    await runs.run(TENANT, "helper", RunRequest(message="My dog is Rex"))
    assert memory.appended == [(TENANT, "helper", "User's dog is called Rex")]
    assert tool_results(llm, 1) == [{"ok": True, "start_line": 1, "end_line": 1}]


async def test_stale_core_update_returns_a_conflict_with_the_current_content(
    runs, llm, memory: FakeMemory
):
    memory.core[(TENANT, "helper")] = block("Likes tea", scope="agent", agent_id="helper")
    stale = tool_call(
        "update_core_memory",
        {"content": "Likes coffee", "expected_updated_at": "2024-01-01T00:00:00Z"},
    )
    fresh = tool_call(
        "update_core_memory",
        {"content": "Likes tea and coffee", "expected_updated_at": STAMP},
        "call_2",
    )
    llm.reply(None, [stale]).reply(None, [fresh]).reply("Updated.")

    result = await runs.run(TENANT, "helper", RunRequest(message="I like coffee too"))

    conflict = tool_results(llm, 1)[0]
    assert conflict["error"] == "conflict"
    assert conflict["current_content"] == "Likes tea"
    assert conflict["current_updated_at"] == STAMP
    assert tool_results(llm, 2)[1] == {"ok": True, "updated_at": "2025-03-01T12:00:01.123456Z"}
    assert memory.core[(TENANT, "helper")].content == "Likes tea and coffee"
    assert result.output == "Updated."


async def test_core_update_with_null_creates_the_block(runs, llm, memory: FakeMemory):
    llm.reply(
        None,
        [tool_call("update_core_memory", {"content": "Name: Ada", "expected_updated_at": None})],
    ).reply("ok")
    await runs.run(TENANT, "helper", RunRequest(message="I'm Ada"))
    assert memory.core[(TENANT, "helper")].content == "Name: Ada"
    assert tool_results(llm, 1)[0]["ok"] is True


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (tool_call("recall_archival_memory", "{not json"), "invalid_arguments"),
        (tool_call("recall_archival_memory", {"limit": 2}), "invalid_arguments"),
        (tool_call("update_core_memory", {"content": "x"}), "invalid_arguments"),
        (
            tool_call("update_core_memory", {"content": "x", "expected_updated_at": "yesterday"}),
            "invalid_arguments",
        ),
        (tool_call("delete_everything", {}), "unknown_tool"),
    ],
)
async def test_bad_tool_calls_come_back_as_tool_errors(runs, llm, memory: FakeMemory, call, error):
    llm.reply(None, [call]).reply("sorry")
    result = await runs.run(TENANT, "helper", RunRequest(message="go"))
    assert tool_results(llm, 1)[0]["error"] == error
    assert result.output == "sorry" and memory.appended == [] and memory.recall_requests == []


async def test_several_calls_in_one_step_run_in_order(runs, llm, memory: FakeMemory):
    llm.reply(
        None,
        [
            tool_call("append_archival_memory", {"text": "one"}, "a"),
            tool_call("append_archival_memory", {"text": "two"}, "b"),
        ],
    ).reply("done")
    await runs.run(TENANT, "helper", RunRequest(message="go"))
    assert [t for _, _, t in memory.appended] == ["one", "two"]
    assert [m.get("tool_call_id") for m in llm.messages(1)[-2:]] == ["a", "b"]


async def test_the_last_allowed_step_withholds_tools(runs, llm, memory: FakeMemory):
    for i in range(2):
        llm.reply(None, [tool_call("append_archival_memory", {"text": f"fact {i}"}, f"c{i}")])
    llm.reply("Final answer.")

    result = await runs.run(
        TENANT, "helper", RunRequest(message="go", options=RunOptions(max_steps=3))
    )

    assert len(llm.requests) == 3
    assert ["tool_choice" in b for b in llm.bodies] == [False, False, True]
    assert llm.bodies[2]["tool_choice"] == "none" and llm.bodies[2]["tools"] == memory_tools()
    assert result.output == "Final answer." and result.stop_reason == "max_steps"
    assert len(memory.appended) == 2


async def test_tool_calls_on_the_last_step_are_not_executed(runs, llm, memory: FakeMemory):
    # A provider that ignores tool_choice="none" still cannot push the loop past max_steps.
    for i in range(5):
        llm.reply(
            f"thinking {i}", [tool_call("append_archival_memory", {"text": f"fact {i}"}, f"c{i}")]
        )
    result = await runs.run(
        TENANT, "helper", RunRequest(message="go", options=RunOptions(max_steps=2))
    )
    assert len(llm.requests) == 2
    assert [t for _, _, t in memory.appended] == ["fact 0"]
    assert result.output == "thinking 1" and result.stop_reason == "max_steps"


async def test_max_steps_one_is_a_single_call_without_tool_use(runs, llm):
    result = await runs.run(
        TENANT, "helper", RunRequest(message="go", options=RunOptions(max_steps=1))
    )
    assert len(llm.requests) == 1 and llm.bodies[0]["tool_choice"] == "none"
    assert result.output == "ok"


async def test_a_recall_asking_for_more_than_the_schema_allows_gets_the_schemas_maximum(
    runs, llm, memory: FakeMemory
):
    from agentmem.tools import MAX_RECALL_LIMIT, RECALL_ARCHIVAL_MEMORY

    llm.reply(None, [tool_call("recall_archival_memory", {"query": "Acme", "limit": 500})]).reply(
        "ok"
    )
    await runs.run(TENANT, "helper", RunRequest(message="everything about Acme"))
    (recall,) = memory.recall_requests
    schema_max = RECALL_ARCHIVAL_MEMORY["function"]["parameters"]["properties"]["limit"]["maximum"]
    assert recall.limit == schema_max == MAX_RECALL_LIMIT
