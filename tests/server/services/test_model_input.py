"""The exact messages a run sends, for each MemoryPolicy setting (RunService over a fake memory)."""

from __future__ import annotations

import pytest

from agentmem.tools import memory_tools
from agentmem.types import AgentCreateRequest, MemoryPolicy, RunOptions, RunRequest
from agentmem_server.services.prompt import (
    CORE_PREAMBLE,
    MESSAGE_OVERHEAD_TOKENS,
    REMINDER_PREAMBLE,
)
from agentmem_server.tokens import count_tokens

from support import FakeMemory, ScriptedLLM, block, match

TENANT = "ten_a"
STAMP = "2025-03-01T12:00:00.123456Z"
USER_SECTION = f'<memory_block scope="user" updated_at="{STAMP}">\nPrefers tea\n</memory_block>'
AGENT_SECTION = (
    f'<memory_block scope="agent" agent_id="helper" updated_at="{STAMP}">\n'
    "User is on the Acme account\n</memory_block>"
)


@pytest.fixture
async def runs(services, memory: FakeMemory):
    agents, runs = services
    await agents.create(
        TENANT, AgentCreateRequest(agent_id="helper", instructions="You are a helpful assistant.")
    )
    memory.core[(TENANT, "")] = block("Prefers tea")
    memory.core[(TENANT, "helper")] = block(
        "User is on the Acme account", scope="agent", agent_id="helper"
    )
    return runs


def request(message: str, thread_id=None, **policy) -> RunRequest:
    return RunRequest(
        message=message,
        thread_id=thread_id,
        options=RunOptions(memory_policy=MemoryPolicy(**policy)),
    )


async def test_default_policy_sends_instructions_both_core_sections_and_offers_tools(
    runs, llm: ScriptedLLM, memory
):
    await runs.run(TENANT, "helper", request("Hi"))
    body = llm.bodies[0]
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {
            "role": "system",
            "content": (
                f"You are a helpful assistant.\n\n{CORE_PREAMBLE}\n\n{USER_SECTION}\n\n"
                f"{AGENT_SECTION}"
            ),
        },
        {"role": "user", "content": "Hi"},
    ]
    assert body["tools"] == memory_tools()
    assert "tool_choice" not in body
    # tool_only: nothing recalled up front, no reminder.
    assert memory.recall_requests == []
    assert "<system_reminder>" not in str(body["messages"])


@pytest.mark.parametrize(
    ("include_user", "include_agent", "present", "absent"),
    [
        (False, True, [AGENT_SECTION], [USER_SECTION]),
        (True, False, [USER_SECTION], [AGENT_SECTION]),
    ],
)
async def test_core_sections_switch_independently(
    runs, llm, include_user, include_agent, present, absent
):
    await runs.run(
        TENANT,
        "helper",
        request("Hi", include_user_core=include_user, include_agent_core=include_agent),
    )
    system = llm.messages()[0]["content"]
    assert system.startswith("You are a helpful assistant.\n\n")
    assert system.count("<memory_block ") == 1
    for section in present:
        assert section in system
    for section in absent:
        assert section not in system


async def test_no_core_sections_leaves_only_the_instructions(runs, llm):
    await runs.run(
        TENANT, "helper", request("Hi", include_user_core=False, include_agent_core=False)
    )
    assert llm.messages()[0] == {"role": "system", "content": "You are a helpful assistant."}


async def test_missing_core_blocks_are_omitted(runs, llm, memory: FakeMemory):
    memory.core.clear()
    await runs.run(TENANT, "helper", request("Hi"))
    assert llm.messages()[0] == {"role": "system", "content": "You are a helpful assistant."}


async def test_auto_injects_one_reminder_just_before_the_user_message(
    runs, llm, memory: FakeMemory
):
    memory.archival = [
        match("Acme renewal is due 2025-05-01", 0.91, line=12),
        match("Acme asked for a 10% discount", 0.42, scope="user", line=3),
        match("unrelated lunch order", 0.10, line=40),
    ]
    result = await runs.run(
        TENANT, "helper", request("When is the Acme renewal?", archival_mode="auto")
    )

    (recall,) = memory.recall_requests
    assert (recall.query, recall.agent_id, recall.scope, recall.limit, recall.min_score) == (
        "When is the Acme renewal?",
        "helper",
        "all",
        5,
        0.25,
    )
    body = llm.bodies[0]
    # Its matches are injected, so no archival recall tool; the write tools stay on offer.
    assert body["tools"] == memory_tools(
        ["append_archival_memory", "update_core_memory", "remember", "recall", "forget"]
    )
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[1] == {
        "role": "system",
        "content": (
            "<system_reminder>\n"
            f"{REMINDER_PREAMBLE}\n"
            '<memory scope="agent" agent_id="helper" line="12" end_line="12" score="0.910" '
            f'updated_at="{STAMP}">\n'
            "Acme renewal is due 2025-05-01\n</memory>\n"
            f'<memory scope="user" line="3" end_line="3" score="0.420" updated_at="{STAMP}">\n'
            "Acme asked for a 10% discount\n</memory>\n"
            "</system_reminder>"
        ),
    }
    assert messages[2] == {"role": "user", "content": "When is the Acme renewal?"}
    assert [m.content for m in result.recalled] == [
        "Acme renewal is due 2025-05-01",
        "Acme asked for a 10% discount",
    ]


async def test_auto_respects_limit_min_score_and_token_budget(runs, llm, memory: FakeMemory):
    long = "detail " * 60
    memory.archival = [match(f"fact {i}", 0.9 - i * 0.1, line=i + 1) for i in range(6)] + [
        match(long, 0.95, line=99)
    ]

    await runs.run(
        TENANT,
        "helper",
        request("q", archival_mode="auto", archival_limit=2, archival_min_score=0.0),
    )
    reminder = llm.messages(0)[-2]["content"]
    assert reminder.count("<memory ") == 2 and long.strip() in reminder and "fact 0" in reminder

    await runs.run(TENANT, "helper", request("q", archival_mode="auto", archival_min_score=0.65))
    reminder = llm.messages(1)[-2]["content"]
    assert [f"fact {i}" in reminder for i in range(6)] == [True, True, True, False, False, False]

    # The long best match alone passes the budget: it ends the list, nothing after it sneaks in.
    await runs.run(
        TENANT,
        "helper",
        request("q", archival_mode="auto", archival_token_budget=count_tokens(long) - 1),
    )
    assert [m["role"] for m in llm.messages(2)] == ["system", "user"]

    await runs.run(
        TENANT,
        "helper",
        request(
            "q",
            archival_mode="auto",
            archival_token_budget=count_tokens(long) + count_tokens("fact 0"),
        ),
    )
    reminder = llm.messages(3)[-2]["content"]
    assert reminder.count("<memory ") == 2 and "fact 0" in reminder and "fact 1" not in reminder


async def test_auto_with_nothing_above_min_score_sends_no_reminder(runs, llm, memory: FakeMemory):
    memory.archival = [match("weak", 0.2)]
    result = await runs.run(TENANT, "helper", request("q", archival_mode="auto"))
    assert [m["role"] for m in llm.messages()] == ["system", "user"]
    assert result.recalled == []


async def test_history_enters_newest_first_within_budget_and_whole(runs, llm):
    first = await runs.run(TENANT, "helper", request("first question"))
    llm.reply("second answer " * 20)
    await runs.run(TENANT, "helper", request("second question", first.thread_id))
    third_budget = sum(
        count_tokens(t) + MESSAGE_OVERHEAD_TOKENS
        for t in ("second question", "second answer " * 20)
    )
    await runs.run(
        TENANT,
        "helper",
        RunRequest(
            message="third",
            thread_id=first.thread_id,
            options=RunOptions(history_token_budget=third_budget),
        ),
    )
    assert llm.messages(1)[1:] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second question"},
    ]
    # Only the newest turn fits; the older one is left out whole, never cut.
    assert llm.messages(2)[1:] == [
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer " * 20},
        {"role": "user", "content": "third"},
    ]
    await runs.run(
        TENANT,
        "helper",
        RunRequest(
            message="fourth",
            thread_id=first.thread_id,
            options=RunOptions(history_token_budget=third_budget - 1),
        ),
    )
    assert llm.messages(3)[1:] == [
        {"role": "user", "content": "third"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "fourth"},
    ]


async def test_history_comes_before_the_reminder(runs, llm, memory: FakeMemory):
    memory.archival = [match("remembered", 0.9)]
    first = await runs.run(TENANT, "helper", request("one"))
    await runs.run(TENANT, "helper", request("two", first.thread_id, archival_mode="auto"))
    roles = [(m["role"], m["content"][:17]) for m in llm.messages(1)]
    assert roles[1:] == [
        ("user", "one"),
        ("assistant", "ok"),
        ("system", "<system_reminder>"),
        ("user", "two"),
    ]


async def test_agent_model_overrides_the_server_model(services, llm):
    agents, runs = services
    await agents.create(TENANT, AgentCreateRequest(agent_id="fancy", model="gpt-fancy"))
    await runs.run(TENANT, "fancy", request("Hi"))
    assert llm.bodies[0]["model"] == "gpt-fancy"
    # No instructions and no memory: the user message alone.
    assert llm.messages() == [{"role": "user", "content": "Hi"}]
