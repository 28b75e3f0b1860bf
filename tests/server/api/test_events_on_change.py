"""`client.state.history` and `client.state.on_change` (seed 002) against a real server: every
version with a guarded revert, and handlers on a thread or a task seeing each matching change in
order, scoped views included; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import AsyncClient, Client, ConflictError
from agentmem.types import MemoryEvent
from agentmem_server import create_app
from agentmem_server.app import end_streams

from support import make_settings, new_tenant_key, serve_in_thread

DEADLINE_S = 20.0


@pytest.fixture
def served_url(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    app = create_app(make_settings(tmp_path, database_url=database_url))
    with serve_in_thread(app) as url:
        try:
            yield url, new_tenant_key(url, "acme")
        finally:
            end_streams(app)


def test_state_history_lists_versions_and_the_documented_revert_works(served_url: tuple[str, str]):
    url, key = served_url
    with Client(api_key=key, base_url=url) as client:
        cart = client.state.session("u1")
        cart.set("cart", {"items": 1})
        cart.set("cart", {"items": 2})
        cart.set("other", 0)
        cart.delete("cart")
        cart.set("cart", {"items": 9})
        versions = cart.history("cart")
        assert [(v.action, v.value) for v in versions] == [
            ("set", {"items": 9}),
            ("delete", None),
            ("set", {"items": 2}),
            ("set", {"items": 1}),
        ]
        assert versions[0].updated_at == cart.get("cart").updated_at
        # docs/events.md: revert the last write, guarded.
        v = client.state.history("cart", namespace=("session", "u1"))
        client.state.set(
            "cart", v[2].value, namespace=("session", "u1"), expected_updated_at=v[0].updated_at
        )
        assert cart.get_value("cart") == {"items": 2}
        with pytest.raises(ConflictError):
            cart.set("cart", v[2].value, expected_updated_at=v[0].updated_at)
        cart.clear()
        assert cart.history("cart", limit=1)[0].action == "clear"


def test_on_change_runs_the_handler_on_a_thread_for_each_matching_change(
    served_url: tuple[str, str],
):
    url, key = served_url
    seen: list[MemoryEvent] = []
    scoped: list[MemoryEvent] = []
    arrived = threading.Condition()
    with Client(api_key=key, base_url=url) as client:

        @client.state.on_change(["customer_*", "user_*.preferences"])
        def handle(event: MemoryEvent) -> None:
            with arrived:
                seen.append(event)
                arrived.notify_all()

        @client.state.session("u1").on_change()
        def handle_session(event: MemoryEvent) -> None:
            if event.key == "boom":
                raise RuntimeError("a failing handler is logged; the next event still comes")
            with arrived:
                scoped.append(event)
                arrived.notify_all()

        assert handle.running and handle_session.running
        # The listeners connect in the background: write until the first change arrives.
        with arrived:
            while not seen:
                client.state.set("customer_0", "warm-up")
                arrived.wait(0.5)
        start = len(seen)
        client.state.set("customer_1", {"tier": "gold"})
        client.state.set("unrelated", 1)
        client.state.namespace("team").set("user_7.preferences", {"lang": "fr"})
        client.state.set("customer_1", {"tier": "platinum"})
        client.state.delete("customer_1")
        s = client.state.session("u1")
        s.set("boom", 1)
        s.set("customer_2", 2)
        with arrived:
            assert arrived.wait_for(lambda: len(seen) >= start + 5 and len(scoped) >= 1, DEADLINE_S)
        got = [(e.action, e.key, e.data) for e in seen[start:]]
        assert got == [
            ("set", "customer_1", {"tier": "gold"}),
            ("set", "user_7.preferences", {"lang": "fr"}),
            ("set", "customer_1", {"tier": "platinum"}),
            ("delete", "customer_1", None),
            ("set", "customer_2", 2),
        ]
        assert [(e.key, e.namespace) for e in scoped] == [("customer_2", ["session", "u1"])]
        assert handle_session.last_seq == scoped[-1].seq
        handle_session.stop()
        assert not handle_session.running
    assert not handle.running  # closing the client ended the rest


async def test_async_on_change_runs_coroutine_handlers_on_a_task(served_url: tuple[str, str]):
    url, key = served_url
    seen: list[MemoryEvent] = []
    changed = asyncio.Event()
    async with AsyncClient(api_key=key, base_url=url) as client:

        @client.state.workflow("wf-1").on_change("step*")
        async def on_step(event: MemoryEvent) -> None:
            seen.append(event)
            changed.set()

        wf = client.state.workflow("wf-1")
        async with asyncio.timeout(DEADLINE_S):
            while not seen:
                await wf.set("step0", "warm-up")
                with_timeout = asyncio.ensure_future(changed.wait())
                await asyncio.wait({with_timeout}, timeout=0.5)
                with_timeout.cancel()
        start = len(seen)
        await wf.set("step1", "validate")
        await wf.set("notes", "x")
        await client.state.set("step1", "root scope: not this listener's")
        await wf.set("step2", "ship")
        async with asyncio.timeout(DEADLINE_S):
            while len(seen) < start + 2:
                changed.clear()
                await changed.wait()
        assert [(e.key, e.data) for e in seen[start:]] == [("step1", "validate"), ("step2", "ship")]
        assert on_step.running
    assert not on_step.running
