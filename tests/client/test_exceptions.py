"""Every error status becomes its own exception carrying the server's error body."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

import agentmem
from agentmem import (
    AgentMemError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

STATUS_ERRORS = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (413, PayloadTooLargeError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, InternalServerError),
    (504, InternalServerError),
    (418, APIStatusError),
]


def error_body(**fields: object) -> dict[str, object]:
    return {"error": {"type": "some_type", "message": "it failed", **fields}}


@pytest.fixture
def no_retry_client(router: respx.MockRouter) -> Iterator[Client]:
    # Retries are tested elsewhere; here each status must surface on the first answer.
    with Client(api_key="am_test", base_url="http://agentmem.test", max_retries=0) as client:
        yield client


@pytest.mark.parametrize(("status", "exc_type"), STATUS_ERRORS)
def test_status_maps_to_exception_with_body_fields(
    status: int, exc_type: type[APIStatusError], no_retry_client: Client, router: respx.MockRouter
) -> None:
    body = error_body(field="body.content", limit=8000, request_id="req_body")
    router.get("/v1/agents/a1").respond(status, json=body)

    with pytest.raises(exc_type) as info:
        no_retry_client.agents.get("a1")

    exc = info.value
    assert type(exc) is exc_type
    assert exc.status_code == status
    assert exc.response.status_code == status
    assert exc.body == body
    assert exc.error_type == "some_type"
    assert exc.field == "body.content"
    assert exc.limit == 8000
    assert exc.request_id == "req_body"
    assert "it failed" in str(exc) and "req_body" in str(exc)


def test_request_id_falls_back_to_header(no_retry_client: Client, router: respx.MockRouter) -> None:
    router.get("/v1/agents/a1").respond(
        404,
        json={"error": {"type": "not_found", "message": "no agent"}},
        headers={"x-request-id": "req_header"},
    )
    with pytest.raises(NotFoundError) as info:
        no_retry_client.agents.get("a1")
    assert info.value.request_id == "req_header"
    assert info.value.field is None and info.value.limit is None


def test_body_request_id_wins_over_header(
    no_retry_client: Client, router: respx.MockRouter
) -> None:
    router.get("/v1/agents/a1").respond(
        404, json=error_body(request_id="req_body"), headers={"x-request-id": "req_header"}
    )
    with pytest.raises(NotFoundError) as info:
        no_retry_client.agents.get("a1")
    assert info.value.request_id == "req_body"


def test_conflict_carries_current_updated_at_as_datetime(
    no_retry_client: Client, router: respx.MockRouter
) -> None:
    router.put("/v1/memory/core").respond(
        409,
        json=error_body(
            type="conflict", request_id="req_1", current_updated_at="2024-05-01T12:00:00.000007Z"
        ),
    )
    with pytest.raises(ConflictError) as info:
        no_retry_client.memory.update("core", "x", expected_updated_at=None)
    assert info.value.current_updated_at == datetime(2024, 5, 1, 12, 0, 0, 7, tzinfo=UTC)
    assert info.value.error_type == "conflict"


def test_non_json_error_body_still_maps(no_retry_client: Client, router: respx.MockRouter) -> None:
    router.get("/v1/agents").respond(502, text="<html>Bad gateway</html>")
    with pytest.raises(InternalServerError) as info:
        no_retry_client.agents.list()
    exc = info.value
    assert exc.body is None and exc.error_type is None and exc.request_id is None
    assert "Bad gateway" in str(exc)


def test_exception_tree() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APIConnectionError, AgentMemError)
    assert issubclass(APIStatusError, AgentMemError)
    for _, exc_type in STATUS_ERRORS:
        assert issubclass(exc_type, APIStatusError)
    assert not issubclass(AgentMemError, ValueError)
    documented = agentmem._exceptions.__doc__ or ""
    for name in agentmem._exceptions.__all__:
        assert name in documented, f"{name} missing from the tree in the module docstring"


def test_timeout_raises_api_timeout_error(
    no_retry_client: Client, router: respx.MockRouter
) -> None:
    router.get("/v1/agents").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError) as info:
        no_retry_client.agents.list()
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert info.value.request.url.path == "/v1/agents"


def test_connection_error_raises_api_connection_error(
    no_retry_client: Client, router: respx.MockRouter
) -> None:
    router.get("/v1/agents").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as info:
        no_retry_client.agents.list()
    assert not isinstance(info.value, APITimeoutError)
    assert "refused" in str(info.value)
