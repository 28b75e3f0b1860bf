"""One run through a real `agentmem serve` process, its provider a fake OpenAI endpoint over
HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import agentmem
from agentmem import MemoryPolicy, RunOptions

from support import ScriptedLLM, create_key, tool_call

pytestmark = pytest.mark.e2e


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    """The scripted provider over real HTTP, and its base URL."""
    scripted = ScriptedLLM(default="fake answer")
    with scripted.serving() as url:
        yield scripted, url


def test_run_recall_replay_and_transcript_through_a_real_server(
    start_server, llm: tuple[ScriptedLLM, str]
):
    fake_openai, url = llm
    server = start_server(
        llm_provider="openai",
        llm_base_url=url,
        llm_api_key="sk-e2e",
        llm_model="fake-model",
        llm_max_retries="0",
    )
    key = create_key(server.env, "acme")
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        client.agents.create("helper", instructions="Be brief.")
        client.memory.update("core", "Ana prefers tea", expected_updated_at=None)
        client.memory.append(
            "archival", "Acme renewal is due in May\nthe printer is broken", agent_id="helper"
        )

        auto = RunOptions(
            memory_policy=MemoryPolicy(
                archival_mode="auto", archival_min_score=0.0, archival_limit=1
            )
        )
        first = client.agents.run("helper", "When is the Acme renewal?", options=auto)

        assert first.output == "fake answer" and len(first.recalled) == 1
        assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-e2e"
        sent = fake_openai.messages(0)
        assert [m["role"] for m in sent] == ["system", "system", "user"]
        assert (
            sent[0]["content"].startswith("Be brief.") and "Ana prefers tea" in sent[0]["content"]
        )
        assert f'line="{first.recalled[0].line_number}"' in sent[1]["content"]
        assert sent[2] == {"role": "user", "content": "When is the Acme renewal?"}

        fake_openai.reply(None, [tool_call("recall_archival_memory", {"query": "printer"})])
        # tool_only (the default mode); min_score 0 so the test does not depend on the embedder's
        # scores.
        tools = RunOptions(memory_policy=MemoryPolicy(archival_min_score=0.0))
        second = client.agents.run(
            "helper", "And the printer?", thread_id=first.thread_id, options=tools
        )
        assert second.output == "fake answer" and second.usage.total_tokens == 30
        tool_result = json.loads(fake_openai.messages(2)[-1]["content"])
        assert any("printer" in m["content"] for m in tool_result["matches"])
        assert fake_openai.messages(1)[1:3] == [
            {"role": "user", "content": "When is the Acme renewal?"},
            {"role": "assistant", "content": "fake answer"},
        ]

        replayed = client.runs.replay(first.id)
        assert fake_openai.requests[3].content == fake_openai.requests[0].content
        assert replayed.replay_of == first.id

        run = client.runs.get(first.id)
        assert [m.model_dump(exclude_none=True) for m in run.model_input] == sent
        transcript = client.threads.messages(first.thread_id)
        assert [(m.role, m.content) for m in transcript] == [
            ("user", "When is the Acme renewal?"),
            ("assistant", "fake answer"),
            ("user", "And the printer?"),
            ("assistant", "fake answer"),
        ]
