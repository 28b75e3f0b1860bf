"""Events: the list request, SSE parsing, resuming after a cut stream without loss or duplicate."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from agentmem import AsyncClient, Client, GoneError
from agentmem._exceptions import ArgumentError, AuthenticationError
from agentmem.resources import events as events_module

from support import T0_ISO

BASE_URL = "http://agentmem.test"


def event(seq: int, key: str = "k") -> dict[str, Any]:
    return {
        "seq": seq,
        "at": T0_ISO,
        "kind": "state",
        "action": "set",
        "namespace": [],
        "key": key,
        "data": {"value": seq},
    }


def sse(*parts: str) -> bytes:
    return "".join(parts).encode()


def ready(after: int) -> str:
    return f"event: ready\nid: {after}\ndata: {json.dumps({'after': after})}\n\n"


def msg(seq: int, key: str = "k") -> str:
    return f"id: {seq}\ndata: {json.dumps(event(seq, key))}\n\n"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    got: list[float] = []

    async def async_sleep(seconds: float) -> None:
        got.append(seconds)

    monkeypatch.setattr(events_module, "_sleep", got.append)
    monkeypatch.setattr(events_module, "_async_sleep", async_sleep)
    return got


def test_list_sends_the_filters(router: respx.MockRouter) -> None:
    route = router.get("/v1/events").mock(
        return_value=httpx.Response(
            200, json={"events": [event(4)], "next_after": 4, "has_more": False}
        )
    )
    with Client(api_key="k", base_url=BASE_URL) as client:
        page = client.events.list(
            after=3, patterns=["a*", "b?"], kinds=["state", "core"], namespace=("agent", "x")
        )
    assert page.events[0].seq == 4 and page.next_after == 4
    url = route.calls.last.request.url
    assert url.params.get_list("patterns") == ["a*", "b?"]
    assert url.params.get_list("kinds") == ["state", "core"]
    assert url.params["namespace"] == "agent/x" and url.params["after"] == "3"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kinds": ["blocks"]}, "kinds"),
        ({"kinds": "state"}, "lists"),
        ({"after": -1}, "after"),
        ({"limit": 0}, "limit"),
        ({"namespace": ["a/b"]}, "namespace"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    router: respx.MockRouter, kwargs: dict[str, Any], match: str
) -> None:
    with (
        Client(api_key="k", base_url=BASE_URL) as client,
        pytest.raises(ArgumentError, match=match),
    ):
        client.events.list(**kwargs)
    assert not router.calls


def test_stream_resumes_after_a_cut_without_loss_or_duplicate(
    router: respx.MockRouter, waits: list[float]
) -> None:
    answers = [
        httpx.Response(200, content=sse(ready(0), ": keepalive\n\n", msg(1), msg(2))),
        httpx.ConnectError("refused"),
        # The server resends from Last-Event-ID; an event the client already has is skipped.
        httpx.Response(
            200,
            content=sse(ready(2), msg(2), msg(3), 'event: overflow\ndata: {"resume_after": 3}\n\n'),
        ),
        httpx.Response(200, content=sse(ready(3), msg(4))),
    ]
    route = router.get("/v1/events/stream").mock(side_effect=answers)
    got: list[int] = []
    with Client(api_key="k", base_url=BASE_URL) as client:
        for e in client.events.stream(kinds=["state"]):
            got.append(e.seq)
            if e.seq == 4:
                break
    assert got == [1, 2, 3, 4]
    sent = [c.request for c in route.calls]
    assert [r.headers.get("last-event-id") for r in sent] == [None, "2", "2", "3"]
    assert sent[0].url.params.get_list("kinds") == ["state"] and "after" not in sent[0].url.params
    assert sent[3].url.params["after"] == "3"
    assert len(waits) == 1  # only the refused connection waited; clean ends reconnect at once


async def test_async_stream_resumes_the_same_way(
    router: respx.MockRouter, waits: list[float]
) -> None:
    router.get("/v1/events/stream").mock(
        side_effect=[
            httpx.Response(200, content=sse(ready(5), msg(6))),
            httpx.Response(503, json={"error": {"type": "internal_error", "message": "busy"}}),
            httpx.Response(200, content=sse(ready(6), msg(7))),
        ]
    )
    got: list[int] = []
    async with AsyncClient(api_key="k", base_url=BASE_URL) as client:
        stream = client.events.stream(after=5)
        async for e in stream:
            got.append(e.seq)
            if e.seq == 7:
                break
        await stream.aclose()  # type: ignore[attr-defined]
    assert got == [6, 7] and len(waits) == 1


def test_gone_and_auth_errors_are_raised_not_retried(
    router: respx.MockRouter, waits: list[float]
) -> None:
    router.get("/v1/events/stream").mock(
        side_effect=[
            httpx.Response(
                410, json={"error": {"type": "gone", "message": "pruned", "oldest_seq": 40}}
            ),
            httpx.Response(401, json={"error": {"type": "authentication_error", "message": "no"}}),
        ]
    )
    with Client(api_key="k", base_url=BASE_URL) as client:
        with pytest.raises(GoneError) as gone:
            next(iter(client.events.stream(after=3)))
        assert gone.value.oldest_seq == 40
        with pytest.raises(AuthenticationError):
            next(iter(client.events.stream()))
    assert waits == []


def test_max_reconnects_bounds_consecutive_failures(
    router: respx.MockRouter, waits: list[float]
) -> None:
    router.get("/v1/events/stream").mock(side_effect=httpx.ConnectError("refused"))
    with Client(api_key="k", base_url=BASE_URL) as client:
        with pytest.raises(Exception, match="gave up after 3 failed connections"):
            next(iter(client.events.stream(max_reconnects=2)))
    assert len(waits) == 2
