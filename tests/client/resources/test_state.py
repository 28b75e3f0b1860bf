"""State: requests as sent, views and contexts, argument checks, `modify` after a lost race."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from agentmem import ArgumentError, AsyncClient, Client, ConflictError
from agentmem.resources.state import UNSET

T0_ISO = "2025-03-01T12:00:00.000001+00:00"
T1_ISO = "2025-03-01T12:00:00.000002+00:00"


def entry(
    key: str, value: Any, updated_at: str = T0_ISO, namespace: list[str] | None = None
) -> dict[str, Any]:
    return {
        "namespace": namespace or [],
        "key": key,
        "value": value,
        "created_at": T0_ISO,
        "updated_at": updated_at,
        "expires_at": None,
    }


def test_views_send_their_namespace(client: Client, router: respx.MockRouter):
    route = router.put(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(200, json=entry("k", 1))
    )
    client.state.set("k", 1)
    client.state.agent("bot").set("k", 1)
    client.state.session("u1").set("k", 1)
    client.state.workflow("wf-1").set("k", 1)
    client.state.namespace("team", "blue").set("k", 1)
    client.state.tenant.set("k", 1)
    client.state.context(session_id="u1", agent_id="bot").set("k", 1)
    client.state.context(agent_id="bot").set("k", 1)
    sent = [c.request.url.params.get("namespace") for c in route.calls]
    assert sent == [
        None,
        "agent/bot",
        "session/u1",
        "workflow/wf-1",
        "team/blue",
        None,
        "session/u1",
        "agent/bot",
    ]


def test_set_body_distinguishes_unset_none_and_a_time(client: Client, router: respx.MockRouter):
    route = router.put(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(200, json=entry("k", 1))
    )
    client.state.set("k", {"a": 1})
    client.state.set("k", 1, expected_updated_at=None, ttl=timedelta(minutes=1))
    client.state.set("k", 1, expected_updated_at=T0_ISO, ttl=5)
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert bodies == [
        {"value": {"a": 1}},
        {"value": 1, "ttl": 60.0, "expected_updated_at": None},
        {"value": 1, "ttl": 5.0, "expected_updated_at": "2025-03-01T12:00:00.000001Z"},
    ]
    assert repr(UNSET) == "UNSET"


def test_keys_are_escaped_as_one_path_segment(client: Client, router: respx.MockRouter):
    route = router.get(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(200, json=entry("a/b c", 1))
    )
    client.state.get("a/b c?")
    client.state.get("..")
    assert route.calls[0].request.url.raw_path.startswith(b"/v1/state/entries/a%2Fb%20c%3F")
    assert route.calls[1].request.url.raw_path.startswith(b"/v1/state/entries/%2E%2E")


def test_context_reads_look_up_the_chain(client: Client, router: respx.MockRouter):
    lookup = router.get(url__regex=r"/v1/state/lookup/.*").mock(
        return_value=httpx.Response(200, json=entry("tier", "gold", namespace=["agent", "bot"]))
    )
    ctx = client.state.context(workflow_id="wf-1", agent_id="bot")
    assert ctx.namespace == ("workflow", "wf-1")
    assert ctx.get_value("tier", default="standard") == "gold"
    assert ctx.exists("tier") is True
    params = dict(lookup.calls[0].request.url.params)
    assert params == {"workflow_id": "wf-1", "agent_id": "bot"}
    lookup.mock(
        return_value=httpx.Response(404, json={"error": {"type": "not_found", "message": "no"}})
    )
    assert ctx.get_value("tier", default="standard") == "standard"
    assert ctx.exists("tier") is False


def test_get_value_and_exists_on_a_view(client: Client, router: respx.MockRouter):
    route = router.get(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(404, json={"error": {"type": "not_found", "message": "no"}})
    )
    view = client.state.session("u1")
    assert view.get_value("prefs", default={"theme": "light"}) == {"theme": "light"}
    assert view.exists("prefs") is False
    route.mock(return_value=httpx.Response(200, json=entry("prefs", {"theme": "dark"})))
    assert view.get_value("prefs") == {"theme": "dark"}


def test_delete_list_and_clear_return_plain_answers(client: Client, router: respx.MockRouter):
    router.delete(url__regex=r"/v1/state/entries/.+").mock(
        return_value=httpx.Response(200, json={"deleted": True})
    )
    clear = router.delete(url__regex=r"/v1/state/entries(\?.*)?$").mock(
        return_value=httpx.Response(200, json={"deleted": 3})
    )
    listing = router.get(url__regex=r"/v1/state/entries(\?.*)?$").mock(
        return_value=httpx.Response(
            200, json={"items": [{"key": "a", "updated_at": T0_ISO}], "next_cursor": "YQ"}
        )
    )
    assert client.state.session("s").delete("k") is True
    assert client.state.session("s").clear() == 3
    assert clear.calls[0].request.url.params["namespace"] == "session/s"
    page = client.state.workflow("w").list(prefix="a", limit=10, cursor="xyz")
    assert [i.key for i in page.items] == ["a"] and page.next_cursor == "YQ"
    assert dict(listing.calls[0].request.url.params) == {
        "namespace": "workflow/w",
        "prefix": "a",
        "limit": "10",
        "cursor": "xyz",
    }


INVALID = [
    (lambda s: s.set("", 1), "key must be 1-255"),
    (lambda s: s.set("k" * 256, 1), "key must be 1-255"),
    (lambda s: s.get("a\nb"), "control"),
    (lambda s: s.set("k", 1, namespace="session/u1"), "tuple of segments"),
    (lambda s: s.set("k", 1, namespace=("a",) * 9), "at most 8"),
    (lambda s: s.agent("has space"), "agent_id"),
    (lambda s: s.session(""), "session_id"),
    (lambda s: s.namespace("a/b"), "segment 'a/b'"),
    (lambda s: s.set("k", 1, ttl=0), "ttl"),
    (lambda s: s.set("k", 1, ttl=timedelta(seconds=-1)), "ttl"),
    (lambda s: s.set("k", 1, expected_updated_at="yesterday"), "expected_updated_at"),
    (lambda s: s.list(limit=1001), "limit"),
    (lambda s: s.lookup("k", agent_id="a b"), "agent_id"),
    (lambda s: s.modify("k", str, max_attempts=0), "max_attempts"),
]


@pytest.mark.parametrize(("call", "message"), INVALID)
def test_bad_arguments_fail_before_any_request(client: Client, call, message):
    with pytest.raises((ArgumentError, TypeError), match=message):
        call(client.state)


def conflict(current: dict[str, Any] | None) -> httpx.Response:
    error: dict[str, Any] = {"type": "conflict", "message": "stale", "field": "expected_updated_at"}
    if current is not None:
        error["current"] = current
        error["current_updated_at"] = current["updated_at"]
    return httpx.Response(409, json={"error": error})


def test_modify_applies_fn_to_the_winners_value_without_rereading(
    client: Client, router: respx.MockRouter, sleeps
):
    router.get(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(200, json=entry("n", 1))
    )
    put = router.put(url__regex=r"/v1/state/entries/.*").mock(
        side_effect=[
            conflict(entry("n", 5, T1_ISO)),
            httpx.Response(200, json=entry("n", 6, T1_ISO)),
        ]
    )
    result = client.state.modify("n", lambda v: v + 1, default=0)
    assert result.value == 6
    bodies = [json.loads(c.request.content) for c in put.calls]
    assert bodies == [
        {"value": 2, "expected_updated_at": "2025-03-01T12:00:00.000001Z"},
        {"value": 6, "expected_updated_at": "2025-03-01T12:00:00.000002Z"},
    ]
    assert len(sleeps) == 1


def test_modify_creates_from_default_and_gives_up_after_max_attempts(
    client: Client, router: respx.MockRouter, sleeps
):
    router.get(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(404, json={"error": {"type": "not_found", "message": "no"}})
    )
    put = router.put(url__regex=r"/v1/state/entries/.*").mock(return_value=conflict(None))
    with pytest.raises(ConflictError):
        client.state.modify("n", lambda v: v + 1, default=0, max_attempts=3)
    bodies = [json.loads(c.request.content) for c in put.calls]
    assert bodies == [{"value": 1, "expected_updated_at": None}] * 3


async def test_async_twin_sends_the_same_requests(
    async_client: AsyncClient, router: respx.MockRouter, sleeps
):
    put = router.put(url__regex=r"/v1/state/entries/.*").mock(
        side_effect=[
            conflict(entry("n", 5, T1_ISO)),
            httpx.Response(200, json=entry("n", 6, T1_ISO)),
        ]
    )
    router.get(url__regex=r"/v1/state/entries/.*").mock(
        return_value=httpx.Response(200, json=entry("n", 1))
    )
    lookup = router.get(url__regex=r"/v1/state/lookup/.*").mock(
        return_value=httpx.Response(200, json=entry("tier", "gold", namespace=["session", "u1"]))
    )

    async def bump(v: int) -> int:
        return v + 1

    result = await async_client.state.session("u1").modify("n", bump)
    assert result.value == 6 and put.calls[0].request.url.params["namespace"] == "session/u1"
    ctx = async_client.state.context(session_id="u1", agent_id="bot")
    assert await ctx.get_value("tier") == "gold"
    assert dict(lookup.calls[0].request.url.params) == {"session_id": "u1", "agent_id": "bot"}
