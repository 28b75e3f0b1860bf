"""Retries: only transient failures, with capped jittered backoff or the server's Retry-After."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from agentmem import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    Client,
    ConflictError,
    InternalServerError,
    RateLimitError,
)
from agentmem._base_client import backoff_delay, parse_retry_after
from agentmem._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, RETRY_JITTER

BASE_URL = "http://agentmem.test"
AGENTS: list[object] = []


def backoff_bounds(retries_taken: int) -> tuple[float, float]:
    full = min(INITIAL_RETRY_DELAY * 2**retries_taken, MAX_RETRY_DELAY)
    return full * (1 - RETRY_JITTER), full


def test_503_is_retried_after_the_retry_after_seconds(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200, json=AGENTS),
    ]
    assert client.agents.list() == []
    assert route.call_count == 2
    assert sleeps == [2.0]


def test_429_honours_retry_after_http_date(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    route = router.get("/v1/agents")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(200, json=AGENTS),
    ]
    client.agents.list()
    assert route.call_count == 2
    [wait] = sleeps
    assert 28 <= wait <= 30  # the header has whole seconds


def test_connection_error_is_retried_with_backoff(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=AGENTS)]
    assert client.agents.list() == []
    [wait] = sleeps
    low, high = backoff_bounds(0)
    assert low <= wait <= high


def test_max_retries_bounds_the_attempts(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents").respond(503)
    with pytest.raises(InternalServerError):
        client.agents.list()
    assert route.call_count == 1 + client.max_retries == 3
    assert len(sleeps) == 2
    for retries_taken, wait in enumerate(sleeps):
        low, high = backoff_bounds(retries_taken)
        assert low <= wait <= high


def test_max_retries_zero_sends_once(router: respx.MockRouter, sleeps: list[float]) -> None:
    route = router.get("/v1/agents").respond(429)
    with Client(api_key="k", base_url=BASE_URL, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            client.agents.list()
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_client_errors_are_never_retried(
    status: int, client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.put("/v1/memory/core").respond(
        status, json={"error": {"type": "x", "message": "no"}}
    )
    with pytest.raises(APIStatusError) as info:
        client.memory.update("core", "text", expected_updated_at=None)
    assert info.value.status_code == status
    assert route.call_count == 1
    assert sleeps == []


def test_server_saying_should_not_retry_is_obeyed_even_for_5xx(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post("/v1/agents/a1/runs").respond(
        502,
        json={"error": {"type": "provider_error", "message": "LLM down"}},
        headers={"x-should-retry": "false"},
    )
    with pytest.raises(APIStatusError) as info:
        client.agents.run("a1", "hi")
    assert info.value.status_code == 502
    assert route.call_count == 1 and sleeps == []


def test_retry_after_longer_than_the_cap_is_not_waited_for(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents").respond(503, headers={"Retry-After": "3600"})
    with pytest.raises(InternalServerError):
        client.agents.list()
    assert route.call_count == 1
    assert sleeps == []


def test_timeouts_are_retried_then_raise_api_timeout_error(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        client.agents.list()
    assert route.call_count == 3
    assert len(sleeps) == 2


def test_unsupported_protocol_is_not_retried(
    client: Client, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents").mock(side_effect=httpx.UnsupportedProtocol("gopher"))
    with pytest.raises(APIConnectionError):
        client.agents.list()
    assert route.call_count == 1


def test_every_retry_decision_is_logged(
    client: Client, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.get("/v1/agents").respond(503, headers={"Retry-After": "1"})
    with caplog.at_level(logging.DEBUG, logger="agentmem"):
        with pytest.raises(InternalServerError):
            client.agents.list()
    messages = [r.getMessage() for r in caplog.records if r.name == "agentmem"]
    assert sum("Retrying GET /v1/agents in 1.00s after status 503" in m for m in messages) == 2
    assert any(m.startswith("Not retrying GET /v1/agents") for m in messages)


def test_conflict_refusal_is_logged(
    client: Client, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.put("/v1/memory/core").respond(409, json={"error": {"type": "conflict", "message": "x"}})
    with caplog.at_level(logging.DEBUG, logger="agentmem"):
        with pytest.raises(ConflictError):
            client.memory.update("core", "text", expected_updated_at=None)
    assert any("409 is not retryable" in r.getMessage() for r in caplog.records)


async def test_async_client_retries_with_retry_after(
    async_client: AsyncClient, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get("/v1/agents")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "0.5"}),
        httpx.ConnectError("reset"),
        httpx.Response(200, json=AGENTS),
    ]
    assert await async_client.agents.list() == []
    assert route.call_count == 3
    assert sleeps[0] == 0.5
    low, high = backoff_bounds(1)
    assert low <= sleeps[1] <= high


async def test_async_client_gives_up_and_never_retries_409(
    async_client: AsyncClient, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get("/v1/agents").mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(APITimeoutError):
        await async_client.agents.list()
    assert len(sleeps) == 2
    route = router.put("/v1/memory/core").respond(409)
    with pytest.raises(ConflictError):
        await async_client.memory.update("core", "x", expected_updated_at=None)
    assert route.call_count == 1
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.25", 0.25),
        ("0", 0.0),
        ("-5", 0.0),
        ("Wed, 01 May 2024 12:00:10 GMT", 10.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


def test_backoff_is_capped_and_jittered() -> None:
    waits = {backoff_delay(20) for _ in range(50)}
    assert all(MAX_RETRY_DELAY * (1 - RETRY_JITTER) <= w <= MAX_RETRY_DELAY for w in waits)
    assert len(waits) > 1
