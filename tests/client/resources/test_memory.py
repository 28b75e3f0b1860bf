"""Memory: argument checks before any request, `modify` under contention, tolerant parsing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from agentmem import AgentMemError, AsyncClient, Client, ConflictError
from agentmem._constants import MODIFY_MAX_CONFLICT_DELAY

from support import T0, T0_ISO


def block(content: str, updated_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "blk_1",
        "block_type": "core",
        "content": content,
        "scope": "agent",
        "agent_id": "a1",
        "created_at": T0_ISO,
        "updated_at": updated_at,
        **extra,
    }


def conflict(current: str) -> httpx.Response:
    return httpx.Response(
        409, json={"error": {"type": "conflict", "message": "stale", "current_updated_at": current}}
    )


INVALID_CALLS = [
    ("get", ("working",), {}, "block_type.*'working'"),
    ("get", ("core",), {"agent_id": "bad id!"}, "agent_id.*'bad id!'"),
    ("get", ("core",), {"agent_id": "x" * 129}, "agent_id"),
    ("get", ("core",), {"agent_id": ""}, "agent_id.*''"),
    ("get", ("archival",), {"start_line": 5, "end_line": 2}, r"start_line \(5\).*end_line \(2\)"),
    ("get", ("archival",), {"start_line": 0}, "start_line.*0"),
    ("list", (), {"scope": "team"}, "scope.*'team'"),
    ("list", (), {"scope": "agent"}, "scope 'agent' needs an agent_id"),
    ("update", ("core", "x"), {"expected_updated_at": "yesterday"}, "updated_at.*'yesterday'"),
    ("update", ("core", "x"), {"expected_updated_at": datetime(2024, 5, 1)}, "timezone-aware"),
    ("update", ("notes", "x"), {"expected_updated_at": None}, "block_type.*'notes'"),
    ("append", ("archival", ""), {}, "text.*''"),
    ("delete", ("Core",), {}, "block_type.*'Core'"),
    ("recall", ("tea",), {"limit": 0}, "limit.*0"),
    ("recall", ("tea",), {"limit": 101}, "limit.*101"),
    ("recall", ("tea",), {"min_score": 1.5}, "min_score.*1.5"),
    ("recall", ("tea",), {"min_score": -0.1}, "min_score.*-0.1"),
    ("recall", ("tea",), {"mode": "semantic"}, "mode.*'semantic'"),
    ("recall", ("tea",), {"scope": "everything"}, "scope.*'everything'"),
    ("recall", ("tea",), {"scope": "agent"}, "scope 'agent' needs an agent_id"),
    ("recall", ("",), {}, "query.*''"),
    ("recall", ("tea",), {"agent_id": "a/b"}, "agent_id.*'a/b'"),
    ("recall", ("tea",), {"updated_after": "not a time"}, "updated_after.*'not a time'"),
    ("modify", ("core", str.upper), {"max_attempts": 0}, "max_attempts.*0"),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "match"), INVALID_CALLS)
async def test_invalid_arguments_fail_before_any_request(
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    match: str,
    client: Client,
    async_client: AsyncClient,
    router: respx.MockRouter,
) -> None:
    route = router.route().respond(200, json={})
    with pytest.raises(ValueError, match=match):
        getattr(client.memory, method)(*args, **kwargs)
    with pytest.raises(ValueError, match=match):
        await getattr(async_client.memory, method)(*args, **kwargs)
    assert not route.called


@pytest.mark.parametrize(
    ("call", "args", "match"),
    [
        ("agents.get", ("bad id",), "agent_id.*'bad id'"),
        ("agents.create", ("",), "agent_id.*''"),
        ("agents.run", ("a1", ""), "message.*''"),
        ("runs.get", ("",), "run_id.*''"),
        ("threads.messages", ("",), "thread_id.*''"),
        ("admin.create_key", ("acme corp",), "tenant name.*'acme corp'"),
        ("admin.revoke_key", ("",), "key_id.*''"),
    ],
)
def test_other_resources_validate_before_any_request(
    call: str, args: tuple[Any, ...], match: str, client: Client, router: respx.MockRouter
) -> None:
    route = router.route().respond(200, json={})
    resource, method = call.split(".")
    with pytest.raises(ValueError, match=match):
        getattr(getattr(client, resource), method)(*args)
    assert not route.called


def test_modify_writes_fn_of_the_current_text_guarded_by_its_timestamp(
    client: Client, router: respx.MockRouter
) -> None:
    router.get("/v1/memory/core").respond(200, json=block("likes tea", T0_ISO))
    put = router.put("/v1/memory/core").respond(200, json=block("x", T0_ISO))

    client.memory.modify("core", lambda text: text + "\nhates coffee", agent_id="a1")

    request = put.calls.last.request
    assert request.url.params["agent_id"] == "a1"
    assert json.loads(request.content) == {
        "content": "likes tea\nhates coffee",
        "expected_updated_at": T0_ISO,
    }


def test_modify_creates_a_missing_block(client: Client, router: respx.MockRouter) -> None:
    not_found = {"error": {"type": "not_found", "message": "no block"}}
    router.get("/v1/memory/core").respond(404, json=not_found)
    put = router.put("/v1/memory/core").respond(200, json=block("first", T0_ISO))

    client.memory.modify("core", lambda text: text + "first")

    assert json.loads(put.calls.last.request.content) == {
        "content": "first",
        "expected_updated_at": None,
    }


def test_modify_rereads_after_each_conflict(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    reads = [
        block("v1", "2024-05-01T12:00:01Z"),
        block("v2", "2024-05-01T12:00:02Z"),
        block("v3", "2024-05-01T12:00:03Z"),
    ]
    router.get("/v1/memory/core").side_effect = [httpx.Response(200, json=r) for r in reads]
    put = router.put("/v1/memory/core")
    put.side_effect = [
        conflict("2024-05-01T12:00:02Z"),
        conflict("2024-05-01T12:00:03Z"),
        httpx.Response(200, json=block("v3+", "2024-05-01T12:00:04Z")),
    ]
    seen: list[str] = []

    def fn(text: str) -> str:
        seen.append(text)
        return text + "+"

    result = client.memory.modify("core", fn, agent_id="a1")

    assert result.content == "v3+"
    assert seen == ["v1", "v2", "v3"]
    assert [json.loads(c.request.content) for c in put.calls] == [
        {"content": "v1+", "expected_updated_at": "2024-05-01T12:00:01Z"},
        {"content": "v2+", "expected_updated_at": "2024-05-01T12:00:02Z"},
        {"content": "v3+", "expected_updated_at": "2024-05-01T12:00:03Z"},
    ]
    assert len(sleeps) == 2 and all(0 <= s <= MODIFY_MAX_CONFLICT_DELAY for s in sleeps)


def test_modify_gives_up_after_max_attempts(client: Client, router: respx.MockRouter) -> None:
    get = router.get("/v1/memory/core").respond(200, json=block("v", T0_ISO))
    put = router.put("/v1/memory/core").mock(return_value=conflict("2024-05-01T12:00:09Z"))

    with pytest.raises(ConflictError) as info:
        client.memory.modify("core", str.upper, max_attempts=3)

    assert info.value.current_updated_at == datetime(2024, 5, 1, 12, 0, 9, tzinfo=UTC)
    assert get.call_count == 3 and put.call_count == 3


async def test_async_modify_accepts_sync_and_async_fn(
    async_client: AsyncClient, router: respx.MockRouter
) -> None:
    router.get("/v1/memory/core").respond(200, json=block("tea", T0_ISO))
    put = router.put("/v1/memory/core")
    put.side_effect = [
        conflict(T0_ISO),
        httpx.Response(200, json=block("x", T0_ISO)),
        httpx.Response(200, json=block("x", T0_ISO)),
    ]

    async def shout(text: str) -> str:
        return text.upper()

    await async_client.memory.modify("core", shout)
    await async_client.memory.modify("core", lambda text: text + "!")

    assert [json.loads(c.request.content)["content"] for c in put.calls] == ["TEA", "TEA", "tea!"]


async def test_async_modify_gives_up_after_max_attempts(
    async_client: AsyncClient, router: respx.MockRouter
) -> None:
    router.get("/v1/memory/core").respond(200, json=block("v", T0_ISO))
    put = router.put("/v1/memory/core").mock(return_value=conflict(T0_ISO))
    with pytest.raises(ConflictError):
        await async_client.memory.modify("core", str.upper, max_attempts=2)
    assert put.call_count == 2


def test_responses_tolerate_unknown_fields(client: Client, router: respx.MockRouter) -> None:
    router.get("/v1/memory/core").respond(
        200, json=block("hi", T0_ISO, embedding_model="minilm", shards={"n": 2})
    )
    result = client.memory.get("core")
    assert result.content == "hi"
    assert result.model_extra == {"embedding_model": "minilm", "shards": {"n": 2}}


def test_malformed_success_body_is_an_agentmem_error(
    client: Client, router: respx.MockRouter
) -> None:
    router.get("/v1/memory/core").respond(200, json={"content": "no id"})
    with pytest.raises(AgentMemError, match="GET /v1/memory/core"):
        client.memory.get("core")


def test_concurrent_modify_loses_no_update(client: Client, router: respx.MockRouter) -> None:
    """Threads share one client against a fake server that compares-and-sets like the real one."""
    lock = threading.Lock()
    stored: dict[str, Any] = {"content": "0", "version": 0}

    def stamp(version: int) -> str:
        return (T0 + timedelta(microseconds=version)).isoformat()

    def read(request: httpx.Request) -> httpx.Response:
        with lock:
            return httpx.Response(200, json=block(stored["content"], stamp(stored["version"])))

    def write(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with lock:
            if body["expected_updated_at"] != stamp(stored["version"]).replace("+00:00", "Z"):
                return conflict(stamp(stored["version"]))
            stored.update(content=body["content"], version=stored["version"] + 1)
            return httpx.Response(200, json=block(stored["content"], stamp(stored["version"])))

    router.get("/v1/memory/core").mock(side_effect=read)
    router.put("/v1/memory/core").mock(side_effect=write)

    def writer() -> None:
        for _ in range(10):
            client.memory.modify("core", lambda text: str(int(text) + 1), max_attempts=1000)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stored["content"] == "80"
