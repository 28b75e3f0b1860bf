"""What a run stores: the visible turn, the full record, nothing on provider failure; replay."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from agentmem.tools import memory_tools
from agentmem.types import AgentCreateRequest, MemoryPolicy, RunOptions, RunRequest
from agentmem_server.errors import Conflict, InvalidInput, NotFound, UpstreamError
from agentmem_server.storage.sql.schema import messages, threads
from agentmem_server.storage.sql.schema import runs as runs_table

from support import FakeMemory, ScriptedLLM, match, tool_call

TENANT = "ten_a"
AUTO = RunOptions(memory_policy=MemoryPolicy(archival_mode="auto"))


@pytest.fixture
async def svc(services):
    agents, runs = services
    await agents.create(TENANT, AgentCreateRequest(agent_id="helper", instructions="Be brief."))
    return agents, runs


def counts(store) -> tuple[int, int, int]:
    with store.begin() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (threads, messages, runs_table)
        )


async def test_the_record_holds_the_exact_first_input_tools_and_every_step(
    svc, llm: ScriptedLLM, memory: FakeMemory
):
    _, runs = svc
    memory.archival = [match("Acme renews in May", 0.8)]
    llm.reply(
        None,
        [tool_call("recall_archival_memory", {"query": "Acme"})],
        prompt_tokens=11,
        completion_tokens=2,
    )
    llm.reply("In May.", prompt_tokens=30, completion_tokens=4)
    result = await runs.run(TENANT, "helper", RunRequest(message="Acme?"))

    run = await runs.get(TENANT, result.id)
    assert result.id.startswith("run_") and result.thread_id.startswith("thr_")
    assert (run.id, run.agent_id, run.thread_id, run.model, run.output) == (
        result.id,
        "helper",
        result.thread_id,
        "test-model",
        "In May.",
    )
    assert [m.model_dump(exclude_none=True) for m in run.model_input] == llm.messages(0)
    assert run.tools == memory_tools()
    assert run.options == RunOptions()
    assert len(run.steps) == 2
    assert (
        run.steps[0]["messages"] == []
        and run.steps[0]["response"]["tool_calls"][0]["function"]["name"]
        == "recall_archival_memory"
    )
    # Input of call k = model_input + the messages of steps 1..k.
    assert llm.messages(1) == llm.messages(0) + run.steps[1]["messages"]
    assert run.steps[1]["response"] == {"role": "assistant", "content": "In May."}
    assert run.usage.total_tokens == 47 and run.stop_reason == "stop"
    assert [m.content for m in run.recalled] == ["Acme renews in May"]


async def test_thread_transcript_is_visible_messages_only(threads, svc, llm, memory: FakeMemory):
    _, runs = svc
    memory.archival = [match("SECRET-REMINDER-TEXT", 0.9)]
    first = await runs.run(TENANT, "helper", RunRequest(message="one", options=AUTO))
    llm.reply(None, [tool_call("recall_archival_memory", {"query": "x"})]).reply("two-answer")
    await runs.run(TENANT, "helper", RunRequest(message="two", thread_id=first.thread_id))

    transcript = await threads.messages(TENANT, first.thread_id)
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "one"),
        ("assistant", "ok"),
        ("user", "two"),
        ("assistant", "two-answer"),
    ]
    assert {m.run_id for m in transcript[:2]} == {first.id}
    dumped = json.dumps([m.model_dump(mode="json") for m in transcript])
    assert (
        "SECRET-REMINDER-TEXT" not in dumped
        and "system_reminder" not in dumped
        and "tool_call" not in dumped
    )
    # ...while the run record keeps the hidden reminder for replay.
    assert "SECRET-REMINDER-TEXT" in (await runs.get(TENANT, first.id)).model_input[1].content


@pytest.mark.parametrize("fail_on_call", [0, 1])
async def test_provider_failure_raises_502_and_stores_nothing(
    svc, llm: ScriptedLLM, store, fail_on_call
):
    _, runs = svc
    if fail_on_call == 1:
        llm.reply(None, [tool_call("recall_archival_memory", {"query": "x"})])
    llm.fail(500, "upstream exploded")
    with pytest.raises(UpstreamError, match="upstream exploded") as info:
        await runs.run(TENANT, "helper", RunRequest(message="hi"))
    assert info.value.status_code == 502
    assert counts(store) == (0, 0, 0)


async def test_provider_failure_on_a_continued_thread_adds_nothing(svc, llm: ScriptedLLM, store):
    _, runs = svc
    first = await runs.run(TENANT, "helper", RunRequest(message="hi"))
    before = counts(store)
    llm.fail(503, "down")
    with pytest.raises(UpstreamError):
        await runs.run(TENANT, "helper", RunRequest(message="again", thread_id=first.thread_id))
    assert counts(store) == before == (1, 2, 1)


async def test_replay_sends_byte_identical_json_and_is_not_a_turn(
    threads, svc, llm: ScriptedLLM, memory: FakeMemory, store
):
    _, runs = svc
    memory.archival = [match("Acme renews in May", 0.8)]
    llm.reply("first answer").reply("replayed answer")
    original = await runs.run(TENANT, "helper", RunRequest(message="Acme — when?", options=AUTO))
    memory.archival = []  # memory changed since: the replay must not notice

    replay = await runs.replay(TENANT, original.id)

    assert llm.requests[1].content == llm.requests[0].content
    assert (replay.output, replay.replay_of, replay.thread_id) == (
        "replayed answer",
        original.id,
        original.thread_id,
    )
    assert replay.id != original.id and [m.content for m in replay.recalled] == [
        "Acme renews in May"
    ]
    stored = await runs.get(TENANT, replay.id)
    assert (
        stored.replay_of == original.id
        and stored.model_input == (await runs.get(TENANT, original.id)).model_input
    )
    assert [m.content for m in await threads.messages(TENANT, original.thread_id)] == [
        "Acme — when?",
        "first answer",
    ]
    assert counts(store) == (1, 2, 2)


async def test_replay_of_a_tool_run_resends_the_tools_and_executes_none(
    svc, llm: ScriptedLLM, memory: FakeMemory
):
    _, runs = svc
    llm.reply(None, [tool_call("append_archival_memory", {"text": "a"})]).reply("saved")
    original = await runs.run(TENANT, "helper", RunRequest(message="remember a"))
    llm.reply(None, [tool_call("append_archival_memory", {"text": "a"})])
    replay = await runs.replay(TENANT, original.id)
    assert llm.requests[2].content == llm.requests[0].content
    assert replay.stop_reason == "tool_calls" and replay.output == ""
    assert len(memory.appended) == 1


async def test_unknown_agent_foreign_thread_and_foreign_run_are_not_found(threads, svc, llm):
    agents, runs = svc
    await agents.create(TENANT, AgentCreateRequest(agent_id="other"))
    mine = await runs.run(TENANT, "helper", RunRequest(message="hi"))
    with pytest.raises(NotFound, match="agents.create"):
        await runs.run(TENANT, "ghost", RunRequest(message="hi"))
    # Another agent's thread in the same tenant is refused by name (threads are a resource the
    # tenant lists); another tenant's thread is never found (below).
    with pytest.raises(InvalidInput, match="belongs to agent 'helper'"):
        await runs.run(TENANT, "other", RunRequest(message="hi", thread_id=mine.thread_id))
    with pytest.raises(NotFound):
        await runs.run(TENANT, "helper", RunRequest(message="hi", thread_id="thr_nope"))
    await agents.create("ten_b", AgentCreateRequest(agent_id="helper"))
    with pytest.raises(NotFound):
        await runs.run("ten_b", "helper", RunRequest(message="hi", thread_id=mine.thread_id))
    with pytest.raises(NotFound):
        await runs.get("ten_b", mine.id)
    with pytest.raises(NotFound):
        await runs.replay("ten_b", mine.id)
    with pytest.raises(NotFound):
        await threads.messages("ten_b", mine.thread_id)
    assert len(llm.requests) == 1


async def test_agents_create_get_list_conflict(svc):
    agents, _ = svc
    with pytest.raises(Conflict):
        await agents.create(TENANT, AgentCreateRequest(agent_id="helper"))
    await agents.create(TENANT, AgentCreateRequest(agent_id="b", model="m", metadata={"team": "x"}))
    assert [a.id for a in await agents.list(TENANT)] == ["helper", "b"]
    got = await agents.get(TENANT, "b")
    assert (got.model, got.metadata, got.instructions) == ("m", {"team": "x"}, "")
    assert await agents.list("ten_b") == []
    with pytest.raises(NotFound):
        await agents.get("ten_b", "b")


async def test_delete_agent_removes_memory_threads_messages_and_runs(
    threads, svc, llm, memory: FakeMemory, store
):
    agents, runs = svc
    await agents.create(TENANT, AgentCreateRequest(agent_id="keeper"))
    gone = await runs.run(TENANT, "helper", RunRequest(message="hi"))
    await runs.run(TENANT, "keeper", RunRequest(message="hi"))
    await runs.replay(TENANT, gone.id)

    await agents.delete(TENANT, "helper")

    assert memory.deleted_agents == [(TENANT, "helper")]
    assert counts(store) == (1, 2, 1)
    with pytest.raises(NotFound):
        await runs.get(TENANT, gone.id)
    with pytest.raises(NotFound):
        await threads.messages(TENANT, gone.thread_id)
    with pytest.raises(NotFound):
        await agents.delete(TENANT, "helper")
    # Recreating the id starts clean.
    await agents.create(TENANT, AgentCreateRequest(agent_id="helper"))


async def test_concurrent_turns_on_one_thread_are_all_kept_whole(threads, svc, llm):
    _, runs = svc
    first = await runs.run(TENANT, "helper", RunRequest(message="start"))
    await asyncio.gather(
        *(
            runs.run(TENANT, "helper", RunRequest(message=f"m{i}", thread_id=first.thread_id))
            for i in range(6)
        )
    )
    transcript = await threads.messages(TENANT, first.thread_id)
    assert len(transcript) == 14
    # Each turn's two messages stay adjacent, user first.
    for user, answer in zip(transcript[::2], transcript[1::2], strict=True):
        assert (user.role, answer.role) == ("user", "assistant") and user.run_id == answer.run_id


def stored_record(store, run_id: str) -> dict:
    with store.begin() as conn:
        raw = conn.execute(
            select(runs_table.c.record_json).where(runs_table.c.id == run_id)
        ).scalar_one()
    return json.loads(raw)


RECORD_KEYS = [
    "id",
    "agent_id",
    "thread_id",
    "created_at",
    "provider",
    "model",
    "options",
    "model_input",
    "tools",
    "steps",
    "output",
    "stop_reason",
    "recalled",
    "usage",
    "replay_of",
]
STEP_KEYS = ["messages", "tool_choice", "response", "finish_reason", "usage"]


async def test_the_stored_record_json_keeps_its_shape(
    svc, llm: ScriptedLLM, memory: FakeMemory, store
):
    """Records are read back by every later version, and exported: their JSON must not drift."""
    _, runs = svc
    memory.archival = [match("Acme renews in May", 0.8)]
    llm.reply(
        None,
        [tool_call("recall_archival_memory", {"query": "Acme"})],
        prompt_tokens=11,
        completion_tokens=2,
    )
    llm.reply("In May.", prompt_tokens=30, completion_tokens=4)
    result = await runs.run(TENANT, "helper", RunRequest(message="Acme?"))
    replay = await runs.replay(TENANT, result.id)

    for run_id, replay_of in ((result.id, None), (replay.id, result.id)):
        record = stored_record(store, run_id)
        assert list(record) == RECORD_KEYS
        assert all(list(step) == STEP_KEYS for step in record["steps"])
        assert (record["id"], record["agent_id"], record["replay_of"]) == (
            run_id,
            "helper",
            replay_of,
        )
        assert record["created_at"].endswith("Z") and len(record["created_at"]) == 27
        assert (record["provider"], record["model"]) == ("openai", "test-model")
        assert record["options"] == RunOptions().model_dump(mode="json")
        assert record["tools"] == memory_tools()
    first = stored_record(store, result.id)
    assert first["usage"] == {"prompt_tokens": 41, "completion_tokens": 6, "total_tokens": 47}
    assert first["steps"][0]["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 2,
        "total_tokens": 13,
    }
    assert (
        first["steps"][0]["tool_choice"] is None
        and first["steps"][0]["finish_reason"] == "tool_calls"
    )
    assert first["recalled"] == [match("Acme renews in May", 0.8).model_dump(mode="json")]
    assert first["stop_reason"] == "stop" and first["output"] == "In May."


async def test_a_record_written_by_another_version_still_reads_and_replays(
    svc, llm: ScriptedLLM, store
):
    """Unknown keys are kept, missing optional ones default: a record is never rewritten on read."""
    _, runs = svc
    original = await runs.run(TENANT, "helper", RunRequest(message="hi"))
    record = stored_record(store, original.id)
    del record["stop_reason"], record["provider"]
    record["steps"][0]["latency_ms"] = 12
    record["future_field"] = {"x": 1}
    with store.begin() as conn:
        conn.execute(
            runs_table.update()
            .where(runs_table.c.id == original.id)
            .values(record_json=json.dumps(record))
        )

    run = await runs.get(TENANT, original.id)
    assert run.stop_reason is None and run.output == "ok"
    replay = await runs.replay(TENANT, original.id)
    assert llm.requests[1].content == llm.requests[0].content
    assert stored_record(store, replay.id)["replay_of"] == original.id
