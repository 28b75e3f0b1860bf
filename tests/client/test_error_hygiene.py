"""Every error the client raises is an `AgentMemError`, and none of them shows the API key."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import respx

from agentmem import (
    AgentMemError,
    APIConnectionError,
    ArgumentError,
    ArgumentTypeError,
    AsyncClient,
    Client,
    NotFoundError,
)

BASE_URL = "http://agentmem.test"
KEY = "am_s3cr3t-K3y_that-must-never-show"


def everything_printed(exc: BaseException) -> str:
    """What a user could ever see of an error: message, repr, and the whole printed chain."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


# (call, the exception class it must also be). Each call is made on a fresh client.
BAD_CALLS: list[tuple[str, Callable[[Any], Any], type[Exception]]] = [
    ("unknown block type", lambda c: c.memory.get("bogus"), ValueError),
    ("bad agent id", lambda c: c.memory.get("core", agent_id="../x"), ValueError),
    ("non-str content", lambda c: c.memory.update("core", 5, expected_updated_at=None), TypeError),
    (
        "naive timestamp",
        lambda c: c.memory.update("core", "x", expected_updated_at=datetime(2025, 1, 1)),
        ValueError,
    ),
    ("empty append", lambda c: c.memory.append("archival", ""), ValueError),
    ("recall limit", lambda c: c.memory.recall("q", limit=0), ValueError),
    ("max_attempts", lambda c: c.memory.modify("core", str.upper, max_attempts=0), ValueError),
    ("metadata not JSON", lambda c: c.agents.create("a", metadata={"when": object()}), ValueError),
    ("metadata not a dict", lambda c: c.agents.create("a", metadata=["x"]), ValueError),
    ("instructions not a str", lambda c: c.agents.create("a", instructions=3), ValueError),
    ("options not RunOptions", lambda c: c.agents.run("a", "hi", options="fast"), ValueError),
    ("thread id not a str", lambda c: c.agents.run("a", "hi", thread_id=7), ValueError),
    ("bad tenant name", lambda c: c.admin.create_key("no spaces allowed"), ValueError),
    ("timeout not a number", lambda c: c.agents.list(timeout="soon"), TypeError),
    ("negative timeout", lambda c: c.agents.list(timeout=-1), ValueError),
    ("bad idempotency key", lambda c: c.memory.append("core", "x", idempotency_key=""), ValueError),
    (
        "idempotency key not a str",
        lambda c: c.memory.append("core", "x", idempotency_key=5),
        TypeError,
    ),
]


@pytest.mark.parametrize(("what", "call", "also"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_argument_errors_are_agentmem_errors_raised_before_any_request(
    what: str, call: Callable[[Any], Any], also: type[Exception], router: respx.MockRouter
) -> None:
    with Client(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(AgentMemError) as caught:
            call(client)
    assert isinstance(caught.value, also)
    assert isinstance(caught.value, ArgumentTypeError if also is TypeError else ArgumentError)
    assert not router.calls, "an argument error must be raised before anything is sent"


@pytest.mark.parametrize(("what", "call", "also"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
async def test_async_argument_errors_are_the_same(
    what: str, call: Callable[[Any], Any], also: type[Exception], router: respx.MockRouter
) -> None:
    async with AsyncClient(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(AgentMemError) as caught:
            await call(client)
    assert isinstance(caught.value, also)
    assert not router.calls


@pytest.mark.parametrize(
    "kwargs, also",
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": "2"}, TypeError),
        ({"base_url": "ftp://x"}, ValueError),
        ({"timeout": "60"}, TypeError),
        ({"http_client": object()}, TypeError),
    ],
)
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_constructor_argument_errors_are_agentmem_errors(
    cls: type, kwargs: dict[str, Any], also: type
) -> None:
    kwargs = {"base_url": BASE_URL, **kwargs}
    with pytest.raises(AgentMemError) as caught:
        cls(api_key=KEY, **kwargs)
    assert isinstance(caught.value, also)


@pytest.mark.parametrize(
    "bad_key",
    [
        " " + KEY,
        KEY + " ",
        KEY + "\n",
        KEY + "\r\n",
        "\t" + KEY,
        KEY[:8] + " " + KEY[8:],
        KEY[:8] + "\n" + KEY[8:],
    ],
    ids=[
        "leading space",
        "trailing space",
        "trailing newline",
        "trailing CRLF",
        "leading tab",
        "inner space",
        "inner newline",
    ],
)
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_key_with_whitespace_is_refused_without_showing_it(
    cls: type, bad_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ArgumentError, match="whitespace") as caught:
        cls(api_key=bad_key, base_url=BASE_URL)
    assert KEY[:8] not in everything_printed(caught.value)
    # The same key read from the environment (a file read with its newline is the usual way).
    monkeypatch.setenv("AGENTMEM_API_KEY", bad_key)
    with pytest.raises(ArgumentError, match="AGENTMEM_API_KEY") as caught:
        cls(base_url=BASE_URL)
    assert KEY[:8] not in everything_printed(caught.value)


def test_a_key_that_cannot_be_sent_in_a_header_is_refused() -> None:
    accented = "am_" + "cl\u00e9"
    with pytest.raises(ArgumentError, match="printable ASCII") as caught:
        Client(api_key=accented, base_url=BASE_URL)
    assert accented not in everything_printed(caught.value)
    with pytest.raises(ArgumentTypeError):
        Client(api_key=b"am_bytes", base_url=BASE_URL)  # type: ignore[arg-type]


def test_a_transport_error_that_quotes_the_key_is_wrapped_without_it(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    # h11 and proxies quote offending header values in their messages; ours must not repeat them.
    router.get("/v1/agents").mock(
        side_effect=httpx.LocalProtocolError(f"Illegal header value b'Bearer {KEY}'")
    )
    with Client(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(APIConnectionError) as caught:
            client.agents.list()
    printed = everything_printed(caught.value)
    assert KEY not in printed
    assert "Illegal header value" in printed  # the reason itself still shows


async def test_async_transport_error_that_quotes_the_key_is_wrapped_without_it(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get("/v1/agents").mock(
        side_effect=httpx.ConnectError(f"proxy refused Authorization: Bearer {KEY}")
    )
    async with AsyncClient(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.agents.list()
    assert KEY not in everything_printed(caught.value)


def test_a_status_error_whose_body_echoes_the_key_does_not_show_it(
    router: respx.MockRouter,
) -> None:
    # A misconfigured proxy that reflects the request headers into its error page.
    router.get("/v1/agents/a").respond(404, text=f"no route; you sent Authorization: Bearer {KEY}")
    with Client(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(NotFoundError) as caught:
            client.agents.get("a")
    assert KEY not in everything_printed(caught.value)


def test_retry_logs_never_show_the_key(
    router: respx.MockRouter, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    router.get("/v1/agents").mock(
        side_effect=[httpx.ConnectError(f"reset; sent {KEY}"), httpx.Response(200, json=[])]
    )
    with caplog.at_level("DEBUG", logger="agentmem"):
        with Client(api_key=KEY, base_url=BASE_URL) as client:
            assert client.agents.list() == []
    assert caplog.records and KEY not in caplog.text


def test_an_unexpected_response_is_reported_without_quoting_its_body(
    router: respx.MockRouter,
) -> None:
    # The body of a key-creating call holds a secret; a malformed one must not land in a message.
    router.post("/v1/admin/tenants/acme/keys").respond(
        201, json={"key": "am_fresh-secret", "id": 5}
    )
    with Client(api_key=KEY, base_url=BASE_URL) as client:
        with pytest.raises(AgentMemError, match="Unexpected response") as caught:
            client.admin.create_key("acme")
    assert "am_fresh-secret" not in everything_printed(caught.value)


def test_a_closed_client_raises_an_agentmem_error(router: respx.MockRouter) -> None:
    client = Client(api_key=KEY, base_url=BASE_URL)
    client.close()
    with pytest.raises(AgentMemError, match="closed"):
        client.agents.list()


async def test_a_closed_async_client_raises_an_agentmem_error(router: respx.MockRouter) -> None:
    client = AsyncClient(api_key=KEY, base_url=BASE_URL)
    await client.aclose()
    with pytest.raises(AgentMemError, match="closed"):
        await client.agents.list()


def test_the_client_repr_never_shows_the_key() -> None:
    with Client(api_key=KEY, base_url=BASE_URL) as client:
        assert KEY not in repr(client) and KEY not in repr(client.memory)
