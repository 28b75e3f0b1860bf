"""Every write carries an `Idempotency-Key`: one per logical call, the same on each retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from agentmem import (
    AsyncClient,
    Client,
    ConflictError,
    RequestInProgressError,
    RequestInterruptedError,
)

BLOCK = {
    "id": "blk_1",
    "block_type": "core",
    "content": "1",
    "scope": "user",
    "created_at": "2025-01-01T00:00:00+00:00",
    "updated_at": "2025-01-01T00:00:01+00:00",
}
AGENT = {
    "id": "a",
    "created_at": "2025-01-01T00:00:00+00:00",
    "updated_at": "2025-01-01T00:00:00+00:00",
}
RUN = {"id": "run_1", "agent_id": "a", "thread_id": "thr_1", "output": "hi"}
IN_PROGRESS = httpx.Response(
    409,
    headers={"x-should-retry": "true", "retry-after": "1"},
    json={"error": {"type": "in_progress", "message": "a request with this key is still running"}},
)

# Every write method: (route method, path, answer, call).
WRITES: list[tuple[str, str, httpx.Response, Callable[[Any], Any]]] = [
    (
        "PUT",
        "/v1/memory/core",
        httpx.Response(200, json=BLOCK),
        lambda c, **k: c.memory.update("core", "1", expected_updated_at=None, **k),
    ),
    (
        "POST",
        "/v1/memory/archival/append",
        httpx.Response(200, json=BLOCK),
        lambda c, **k: c.memory.append("archival", "x", **k),
    ),
    ("DELETE", "/v1/memory/core", httpx.Response(204), lambda c, **k: c.memory.delete("core", **k)),
    (
        "POST",
        "/v1/agents",
        httpx.Response(201, json=AGENT),
        lambda c, **k: c.agents.create("a", **k),
    ),
    ("DELETE", "/v1/agents/a", httpx.Response(204), lambda c, **k: c.agents.delete("a", **k)),
    (
        "POST",
        "/v1/agents/a/runs",
        httpx.Response(200, json=RUN),
        lambda c, **k: c.agents.run("a", "hi", **k),
    ),
    (
        "POST",
        "/v1/runs/run_1/replay",
        httpx.Response(200, json=RUN),
        lambda c, **k: c.runs.replay("run_1", **k),
    ),
    (
        "POST",
        "/v1/admin/tenants",
        httpx.Response(201, json={"id": "t", "name": "acme", "created_at": AGENT["created_at"]}),
        lambda c, **k: c.admin.create_tenant("acme", **k),
    ),
    (
        "POST",
        "/v1/admin/tenants/acme/keys",
        httpx.Response(
            201,
            json={
                "id": "k",
                "tenant_id": "t",
                "prefix": "am_",
                "key": "am_x",
                "created_at": AGENT["created_at"],
            },
        ),
        lambda c, **k: c.admin.create_key("acme", **k),
    ),
    (
        "DELETE",
        "/v1/admin/keys/k",
        httpx.Response(204),
        lambda c, **k: c.admin.revoke_key("k", **k),
    ),
]
IDS = [f"{w[0]} {w[1]}" for w in WRITES]


def keys_sent(route: respx.Route) -> list[str]:
    return [call.request.headers.get("idempotency-key") for call in route.calls]


@pytest.mark.parametrize(("method", "path", "answer", "call"), WRITES, ids=IDS)
def test_a_retried_write_sends_the_same_key_and_the_next_call_a_new_one(
    method: str,
    path: str,
    answer: httpx.Response,
    call: Callable[..., Any],
    client: Client,
    router: respx.MockRouter,
    sleeps: list[float],
) -> None:
    route = router.route(method=method, path=path)
    route.side_effect = [httpx.ReadTimeout("late"), httpx.Response(503), answer, answer]
    call(client)
    call(client)
    first, retry1, retry2, second = keys_sent(route)
    assert first and first == retry1 == retry2
    assert second and second != first


@pytest.mark.parametrize(("method", "path", "answer", "call"), WRITES, ids=IDS)
async def test_async_writes_send_keys_the_same_way(
    method: str,
    path: str,
    answer: httpx.Response,
    call: Callable[..., Any],
    async_client: AsyncClient,
    router: respx.MockRouter,
    sleeps: list[float],
) -> None:
    route = router.route(method=method, path=path)
    route.side_effect = [httpx.ConnectError("reset"), answer, answer]
    await call(async_client)
    await call(async_client, idempotency_key="order-42/step-1")
    first, retry, own = keys_sent(route)
    assert first == retry and own == "order-42/step-1"


def test_reads_carry_no_key(client: Client, router: respx.MockRouter) -> None:
    route = router.get("/v1/memory/core").respond(200, json=BLOCK)
    client.memory.get("core")
    assert "idempotency-key" not in route.calls.last.request.headers


def test_in_progress_is_retried_with_the_same_key_after_retry_after(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post("/v1/memory/archival/append")
    route.side_effect = [
        IN_PROGRESS,
        httpx.Response(200, json=BLOCK, headers={"idempotent-replayed": "true"}),
    ]
    assert client.memory.append("archival", "x").content == "1"
    assert sleeps == [1.0]
    assert len(set(keys_sent(route))) == 1


def test_in_progress_after_every_retry_is_not_a_conflict(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.put("/v1/memory/core").mock(return_value=IN_PROGRESS)
    with pytest.raises(RequestInProgressError) as caught:
        client.memory.update("core", "x", expected_updated_at=None)
    assert not isinstance(caught.value, ConflictError)
    assert caught.value.status_code == 409 and caught.value.error_type == "in_progress"


def test_modify_never_applies_fn_again_while_its_write_may_still_land(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    # The first PUT is still running on the server after every retry: re-reading and applying
    # `fn` again could stack a second change on the first once it commits.
    router.get("/v1/memory/core").respond(200, json={**BLOCK, "content": "0"})
    router.put("/v1/memory/core").mock(return_value=IN_PROGRESS)
    calls: list[str] = []

    def plus_one(text: str) -> str:
        calls.append(text)
        return str(int(text) + 1)

    with pytest.raises(RequestInProgressError):
        client.memory.modify("core", plus_one)
    assert calls == ["0"]


async def test_async_modify_gets_the_first_answer_of_a_retried_put(
    async_client: AsyncClient, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get("/v1/memory/core").respond(200, json={**BLOCK, "content": "0"})
    put = router.put("/v1/memory/core")
    put.side_effect = [
        httpx.ReadTimeout("late"),
        httpx.Response(200, json=BLOCK, headers={"idempotent-replayed": "true"}),
    ]
    calls: list[str] = []

    def plus_one(text: str) -> str:
        calls.append(text)
        return str(int(text) + 1)

    block = await async_client.memory.modify("core", plus_one)
    assert block.content == "1" and calls == ["0"]
    assert len(set(keys_sent(put))) == 1


def test_an_interrupted_first_request_is_reported_not_retried(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post("/v1/agents/a/runs").respond(
        409,
        headers={"x-should-retry": "false"},
        json={
            "error": {
                "type": "interrupted",
                "message": "the first request with this key stopped midway",
            }
        },
    )
    with pytest.raises(RequestInterruptedError):
        client.agents.run("a", "hi")
    assert route.call_count == 1 and sleeps == []
