"""Each method sends exactly the request the server's route expects, from both clients alike."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from agentmem import (
    Agent,
    AsyncClient,
    Client,
    MemoryBlock,
    MemoryPolicy,
    MemoryRecallResult,
    Message,
    Run,
    RunOptions,
    RunResult,
)
from agentmem.types import (
    ApiKey,
    ApiKeyCreated,
    BlockVersion,
    CompactResult,
    MessageInput,
    Tenant,
    Thread,
    ThreadPage,
)
from agentmem.types.state import StateTenantSettings

T = "2024-05-01T12:00:00.000001Z"
BLOCK = {
    "id": "blk_1",
    "block_type": "core",
    "content": "hello",
    "scope": "user",
    "created_at": T,
    "updated_at": T,
}
HIT = {
    "content": "likes tea",
    "score": 0.9,
    "scope": "agent",
    "agent_id": "a1",
    "line_number": 3,
    "end_line": 3,
    "updated_at": T,
}
VERSION = {
    "seq": 3,
    "at": T,
    "action": "update",
    "block_type": "core",
    "scope": "agent",
    "agent_id": "a1",
    "content": "v1",
    "updated_at": T,
}
AGENT = {"id": "a1", "created_at": T, "updated_at": T}
RUN_RESULT = {"id": "run_1", "agent_id": "a1", "thread_id": "th_1", "output": "ok"}
RUN = {
    "id": "run_1",
    "agent_id": "a1",
    "thread_id": "th_1",
    "created_at": T,
    "options": {},
    "model_input": [{"role": "user", "content": "hi"}],
    "output": "ok",
}
THREAD = {"id": "th_1", "created_at": T, "updated_at": T}
MESSAGE = {"id": "msg_1", "thread_id": "th_1", "role": "user", "content": "hi", "created_at": T}
TENANT = {"id": "ten_1", "name": "acme", "created_at": T}
KEY = {"id": "key_1", "tenant_id": "ten_1", "prefix": "am_abc", "created_at": T}
STATE_SETTINGS = {"default_ttl": 86400.0, "entries": 3, "bytes": 40}


@dataclass
class Case:
    call: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    answer: Any = None
    returns: Any = None
    """The expected return: a model class (or `[cls]` for a list of it); `None` for no value."""


CASES = [
    Case(
        "memory.list",
        (),
        {},
        "GET",
        "/v1/memory",
        {"scope": "user"},
        answer=[BLOCK],
        returns=[MemoryBlock],
    ),
    Case(
        "memory.list",
        (),
        {"agent_id": "a1"},
        "GET",
        "/v1/memory",
        {"scope": "agent", "agent_id": "a1"},
        answer=[BLOCK],
        returns=[MemoryBlock],
    ),
    Case(
        "memory.list",
        (),
        {"scope": "all", "agent_id": "a1"},
        "GET",
        "/v1/memory",
        {"scope": "all", "agent_id": "a1"},
        answer=[BLOCK],
        returns=[MemoryBlock],
    ),
    Case(
        "memory.get",
        ("archival",),
        {"agent_id": "a1", "start_line": 2, "end_line": 5},
        "GET",
        "/v1/memory/archival",
        {"agent_id": "a1", "start_line": "2", "end_line": "5"},
        answer=BLOCK,
        returns=MemoryBlock,
    ),
    Case(
        "memory.history",
        ("core",),
        {"agent_id": "a1", "limit": 2},
        "GET",
        "/v1/memory/core/history",
        {"agent_id": "a1", "limit": "2"},
        answer=[VERSION],
        returns=[BlockVersion],
    ),
    Case(
        "memory.history",
        ("archival",),
        {},
        "GET",
        "/v1/memory/archival/history",
        {"limit": "20"},
        answer=[VERSION],
        returns=[BlockVersion],
    ),
    Case(
        "memory.update",
        ("core", "new text"),
        {"expected_updated_at": None},
        "PUT",
        "/v1/memory/core",
        body={"content": "new text", "expected_updated_at": None},
        answer=BLOCK,
        returns=MemoryBlock,
    ),
    Case(
        "memory.update",
        ("core", "x"),
        {"expected_updated_at": "2024-05-01T14:00:00.000001+02:00", "agent_id": "a1"},
        "PUT",
        "/v1/memory/core",
        {"agent_id": "a1"},
        body={"content": "x", "expected_updated_at": T},
        answer=BLOCK,
        returns=MemoryBlock,
    ),
    Case(
        "memory.update",
        ("core", "x"),
        {"expected_updated_at": datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC)},
        "PUT",
        "/v1/memory/core",
        body={"content": "x", "expected_updated_at": T},
        answer=BLOCK,
        returns=MemoryBlock,
    ),
    Case(
        "memory.append",
        ("archival", "a\nb"),
        {"agent_id": "a1"},
        "POST",
        "/v1/memory/archival/append",
        {"agent_id": "a1"},
        body={"text": "a\nb"},
        answer=BLOCK,
        returns=MemoryBlock,
    ),
    Case("memory.delete", ("core",), {}, "DELETE", "/v1/memory/core"),
    Case(
        "memory.recall",
        ("tea",),
        {},
        "POST",
        "/v1/memory/recall",
        body={"query": "tea", "scope": "all", "limit": 5, "min_score": 0.0, "mode": "hybrid"},
        answer=[HIT],
        returns=[MemoryRecallResult],
    ),
    Case(
        "memory.recall",
        ("tea",),
        {
            "agent_id": "a1",
            "scope": "agent",
            "limit": 3,
            "min_score": 0.5,
            "mode": "keyword",
            "updated_after": "2024-05-01T12:00:00.000001Z",
            "updated_before": datetime(2024, 5, 1, 13, tzinfo=timezone(timedelta(hours=1))),
        },
        "POST",
        "/v1/memory/recall",
        body={
            "query": "tea",
            "scope": "agent",
            "limit": 3,
            "min_score": 0.5,
            "mode": "keyword",
            "agent_id": "a1",
            "updated_after": T,
            "updated_before": "2024-05-01T12:00:00Z",
        },
        answer=[HIT],
        returns=[MemoryRecallResult],
    ),
    Case(
        "agents.create",
        ("a1",),
        {},
        "POST",
        "/v1/agents",
        body={"agent_id": "a1", "instructions": ""},
        answer=AGENT,
        returns=Agent,
    ),
    Case(
        "agents.create",
        ("a1",),
        {"instructions": "Be brief.", "model": "gpt-x", "metadata": {"team": "travel"}},
        "POST",
        "/v1/agents",
        body={
            "agent_id": "a1",
            "instructions": "Be brief.",
            "model": "gpt-x",
            "metadata": {"team": "travel"},
        },
        answer=AGENT,
        returns=Agent,
    ),
    Case("agents.get", ("a.1",), {}, "GET", "/v1/agents/a.1", answer=AGENT, returns=Agent),
    Case("agents.get", ("..",), {}, "GET", "/v1/agents/%2E%2E", answer=AGENT, returns=Agent),
    Case("agents.list", (), {}, "GET", "/v1/agents", answer=[AGENT], returns=[Agent]),
    Case("agents.delete", ("a1",), {}, "DELETE", "/v1/agents/a1"),
    Case(
        "agents.run",
        ("a1", "hi"),
        {},
        "POST",
        "/v1/agents/a1/runs",
        body={"message": "hi"},
        answer=RUN_RESULT,
        returns=RunResult,
    ),
    Case(
        "agents.run",
        ("a1", "hi"),
        {
            "thread_id": "th_1",
            "options": RunOptions(
                memory_policy=MemoryPolicy(archival_mode="auto", archival_limit=3)
            ),
        },
        "POST",
        "/v1/agents/a1/runs",
        body={
            "message": "hi",
            "thread_id": "th_1",
            "options": {"memory_policy": {"archival_mode": "auto", "archival_limit": 3}},
        },
        answer=RUN_RESULT,
        returns=RunResult,
    ),
    Case("runs.get", ("run_1",), {}, "GET", "/v1/runs/run_1", answer=RUN, returns=Run),
    Case(
        "runs.replay",
        ("run_1",),
        {},
        "POST",
        "/v1/runs/run_1/replay",
        answer=RUN_RESULT,
        returns=RunResult,
    ),
    Case(
        "threads.messages",
        ("th/1",),
        {},
        "GET",
        "/v1/threads/th%2F1/messages",
        {"limit": "100"},
        answer=[MESSAGE],
        returns=[Message],
    ),
    Case(
        "threads.messages",
        ("th_1",),
        {"limit": 5, "before": "msg_9", "after": "msg_2"},
        "GET",
        "/v1/threads/th_1/messages",
        {"limit": "5", "before": "msg_9", "after": "msg_2"},
        answer=[MESSAGE],
        returns=[Message],
    ),
    Case("threads.create", (), {}, "POST", "/v1/threads", body={}, answer=THREAD, returns=Thread),
    Case(
        "threads.create",
        (),
        {"agent_id": "a1", "title": "Trip", "metadata": {"u": 1}},
        "POST",
        "/v1/threads",
        body={"agent_id": "a1", "title": "Trip", "metadata": {"u": 1}},
        answer=THREAD,
        returns=Thread,
    ),
    Case(
        "threads.list",
        (),
        {},
        "GET",
        "/v1/threads",
        {"limit": "20"},
        answer={"data": [THREAD], "next_cursor": "c2"},
        returns=ThreadPage,
    ),
    Case(
        "threads.list",
        (),
        {"agent_id": "a1", "limit": 5, "cursor": "c2"},
        "GET",
        "/v1/threads",
        {"agent_id": "a1", "limit": "5", "cursor": "c2"},
        answer={"data": [THREAD], "next_cursor": None},
        returns=ThreadPage,
    ),
    Case("threads.get", ("th_1",), {}, "GET", "/v1/threads/th_1", answer=THREAD, returns=Thread),
    Case(
        "threads.update",
        ("th_1",),
        {"title": None},
        "PATCH",
        "/v1/threads/th_1",
        body={"title": None},
        answer=THREAD,
        returns=Thread,
    ),
    Case(
        "threads.update",
        ("th_1",),
        {"metadata": {"u": 2}},
        "PATCH",
        "/v1/threads/th_1",
        body={"metadata": {"u": 2}},
        answer=THREAD,
        returns=Thread,
    ),
    Case("threads.delete", ("th_1",), {}, "DELETE", "/v1/threads/th_1"),
    Case(
        "threads.add_messages",
        ("th_1", [{"role": "user", "content": "hi"}, MessageInput(role="assistant", content="yo")]),
        {},
        "POST",
        "/v1/threads/th_1/messages",
        body={
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        },
        answer=[MESSAGE],
        returns=[Message],
    ),
    Case(
        "threads.compact",
        ("th_1",),
        {},
        "POST",
        "/v1/threads/th_1/compact",
        body={"keep_last": 20},
        answer={"thread_id": "th_1", "compacted": 0},
        returns=CompactResult,
    ),
    Case(
        "threads.compact",
        ("th_1",),
        {"keep_last": 4},
        "POST",
        "/v1/threads/th_1/compact",
        body={"keep_last": 4},
        answer={"thread_id": "th_1", "compacted": 0},
        returns=CompactResult,
    ),
    Case(
        "threads.delete_messages",
        ("th_1",),
        {},
        "DELETE",
        "/v1/threads/th_1/messages",
        answer={"deleted": 3},
        returns=int,
    ),
    Case(
        "threads.delete_messages",
        ("th_1",),
        {"before": "msg_4"},
        "DELETE",
        "/v1/threads/th_1/messages",
        {"before": "msg_4"},
        answer={"deleted": 3},
        returns=int,
    ),
    Case(
        "admin.create_tenant",
        ("acme",),
        {},
        "POST",
        "/v1/admin/tenants",
        body={"name": "acme"},
        answer=TENANT,
        returns=Tenant,
    ),
    Case(
        "admin.list_tenants", (), {}, "GET", "/v1/admin/tenants", answer=[TENANT], returns=[Tenant]
    ),
    Case(
        "admin.create_key",
        ("acme",),
        {},
        "POST",
        "/v1/admin/tenants/acme/keys",
        answer={**KEY, "key": "am_secret"},
        returns=ApiKeyCreated,
    ),
    Case(
        "admin.list_keys",
        ("acme",),
        {},
        "GET",
        "/v1/admin/tenants/acme/keys",
        answer=[KEY],
        returns=[ApiKey],
    ),
    Case("admin.revoke_key", ("key_1",), {}, "DELETE", "/v1/admin/keys/key_1"),
    Case(
        "admin.get_state_settings",
        ("acme",),
        {},
        "GET",
        "/v1/admin/tenants/acme/state",
        answer=STATE_SETTINGS,
        returns=StateTenantSettings,
    ),
    Case(
        "admin.update_state_settings",
        ("acme",),
        {"default_ttl": timedelta(days=1)},
        "PUT",
        "/v1/admin/tenants/acme/state",
        body={"default_ttl": 86400.0},
        answer=STATE_SETTINGS,
        returns=StateTenantSettings,
    ),
    Case(
        "admin.update_state_settings",
        ("acme",),
        {"default_ttl": None},
        "PUT",
        "/v1/admin/tenants/acme/state",
        body={"default_ttl": None},
        answer=STATE_SETTINGS,
        returns=StateTenantSettings,
    ),
]


def bound_method(client: Client | AsyncClient, call: str) -> Any:
    resource, method = call.split(".")
    return getattr(getattr(client, resource), method)


def sent(request: httpx.Request) -> tuple[str, str, dict[str, str], Any]:
    path = request.url.raw_path.decode().partition("?")[0]
    body = json.loads(request.content) if request.content else None
    return request.method, path, dict(request.url.params), body


def assert_returns(result: Any, expected: Any) -> None:
    if expected is None:
        assert result is None
    elif isinstance(expected, list):
        assert isinstance(result, list) and result
        assert all(type(item) is expected[0] for item in result)
    else:
        assert type(result) is expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.call}{c.args}{sorted(c.kwargs)}")
async def test_request_sent_and_answer_parsed(
    case: Case, client: Client, async_client: AsyncClient, router: respx.MockRouter
) -> None:
    status = 204 if case.answer is None else 200
    route = router.route().respond(status, json=case.answer)

    result = bound_method(client, case.call)(*case.args, **case.kwargs)
    async_result = await bound_method(async_client, case.call)(*case.args, **case.kwargs)

    expected = (case.method, case.path, case.params, case.body)
    assert [sent(call.request) for call in route.calls] == [expected, expected]
    assert_returns(result, case.returns)
    assert async_result == result


def test_every_public_method_has_a_request_case() -> None:
    covered = {case.call for case in CASES} | {"memory.modify"}  # modify: see test_memory.py
    with Client(api_key="k") as client:
        for resource in ("memory", "agents", "runs", "threads", "admin"):
            for name in dir(getattr(client, resource)):
                if not name.startswith("_"):
                    assert f"{resource}.{name}" in covered
