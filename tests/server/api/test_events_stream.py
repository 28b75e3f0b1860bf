"""Live event streams (SSE) under a real uvicorn: order and ids, resume without loss or duplicate,
tenant isolation, heartbeats, 410 after retention, bounded queues, 200 streams on one reader."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentmem_server import Settings, create_app
from agentmem_server.app import end_streams
from agentmem_server.services.events import EventFilter, EventHub, EventLog, Overflow, Ready
from agentmem_server.storage.sql.events import NewEvent
from agentmem_server.storage.sql.store import SqlStore

from support import auth, make_settings, new_tenant_key, serve_in_thread

DEADLINE_S = 20.0


class Served:
    def __init__(self, url: str, app: Any):
        self.url = url
        self.app = app

    @property
    def hub(self) -> EventHub:
        return self.app.state.services.event_hub  # type: ignore[no-any-return]

    def key(self, tenant: str) -> dict[str, str]:
        return auth(new_tenant_key(self.url, tenant))


@pytest.fixture
def served_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url, rate_limit_per_s=0)


@pytest.fixture
def served(served_settings: Settings) -> Iterator[Served]:
    app = create_app(served_settings)
    with serve_in_thread(app) as url:
        served = Served(url, app)
        try:
            yield served
        finally:
            end_streams(app)  # uvicorn waits for open responses before it stops


class Reader:
    """One SSE connection: its messages (event name, id, data) as they arrive."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str | None, Any]] = []
        self.comments = 0
        self.arrived = asyncio.Event()
        self.ended = False

    def events(self) -> list[dict[str, Any]]:
        return [data for name, _, data in self.messages if name == "message"]

    async def until(self, predicate: Any, timeout: float = DEADLINE_S) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> AsyncIterator[Reader]:
    reader = Reader()

    async def run() -> None:
        async with http.stream(
            "GET", f"{url}/v1/events/stream", params=params, headers=headers
        ) as r:
            assert r.status_code == 200, await r.aread()
            name, ident, data = "message", None, []
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    reader.comments += 1
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif not line:
                    if not data:
                        continue  # the end of a comment
                    reader.messages.append((name, ident, json.loads("\n".join(data))))
                    name, ident, data = "message", None, []
                else:
                    continue
                reader.arrived.set()
        reader.ended = True
        reader.arrived.set()

    task = asyncio.create_task(run())
    try:
        await reader.until(lambda r: r.messages or task.done())
        if task.done():
            task.result()
        yield reader
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_stream_delivers_each_write_in_order_with_its_seq_as_id(served: Served):
    h = served.key("acme")
    async with httpx.AsyncClient(timeout=30) as http:
        async with stream(http, served.url, h) as reader:
            assert reader.messages[0] == ("ready", "0", {"after": 0})
            for i in range(5):
                r = await http.post(
                    f"{served.url}/v1/memory/core/append", json={"text": f"l{i}"}, headers=h
                )
                assert r.status_code == 200
            await reader.until(lambda r: len(r.events()) == 5)
            got = reader.messages[1:]
            assert [(name, ident) for name, ident, _ in got] == [
                ("message", str(i)) for i in range(1, 6)
            ]
            assert [e["data"]["end_line"] for e in reader.events()] == [1, 2, 3, 4, 5]


async def test_resume_with_last_event_id_loses_nothing_and_repeats_nothing(served: Served):
    h = served.key("acme")
    async with httpx.AsyncClient(timeout=30) as http:

        async def write(n: int) -> None:
            for _ in range(n):
                await http.post(
                    f"{served.url}/v1/memory/core/append", json={"text": "x"}, headers=h
                )

        async with stream(http, served.url, h, after=0) as first:
            await write(3)
            await first.until(lambda r: len(r.events()) == 3)
        await write(4)  # while disconnected
        last = first.events()[-1]["seq"]
        async with stream(http, served.url, {**h, "Last-Event-ID": str(last)}, after=0) as second:
            await write(1)
            await second.until(lambda r: len(r.events()) == 5)
            assert second.messages[0] == ("ready", "3", {"after": 3})
        assert [e["seq"] for e in first.events() + second.events()] == list(range(1, 9))


async def test_a_stream_filters_by_pattern_kind_and_namespace(served: Served):
    h = served.key("acme")
    async with httpx.AsyncClient(timeout=30) as http:
        async with (
            stream(http, served.url, h, patterns=["customer_*"], kinds=["agent"]) as agents,
            stream(http, served.url, h, namespace="agent/customer_1") as scoped,
        ):
            for agent_id in ("customer_1", "other", "customer_2"):
                await http.post(f"{served.url}/v1/agents", json={"agent_id": agent_id}, headers=h)
            await http.post(
                f"{served.url}/v1/memory/core/append",
                params={"agent_id": "customer_1"},
                json={"text": "x"},
                headers=h,
            )
            await agents.until(lambda r: len(r.events()) == 2)
            await scoped.until(lambda r: len(r.events()) == 2)
            assert [e["key"] for e in agents.events()] == ["customer_1", "customer_2"]
            assert [(e["kind"], e["key"]) for e in scoped.events()] == [
                ("agent", "customer_1"),
                ("core", "core"),
            ]


async def test_a_stream_never_carries_another_tenants_event_randomized(served: Served):
    rng = random.Random(1515)
    keys = {name: served.key(name) for name in ("t1", "t2", "t3")}
    written = {name: 0 for name in keys}
    async with httpx.AsyncClient(timeout=30) as http:
        async with (
            stream(http, served.url, keys["t1"]) as r1,
            stream(http, served.url, keys["t2"]) as r2,
            stream(http, served.url, keys["t3"]) as r3,
        ):
            readers = {"t1": r1, "t2": r2, "t3": r3}
            for i in range(45):
                name = rng.choice(list(keys))
                await http.post(
                    f"{served.url}/v1/memory/core/append",
                    json={"text": f"{name}:{i}"},
                    headers=keys[name],
                )
                written[name] += 1
            for name, reader in readers.items():
                await reader.until(lambda r, n=written[name]: len(r.events()) == n)
                contents = [e["data"]["content"].split("\n")[-1] for e in reader.events()]
                assert all(c.startswith(f"{name}:") for c in contents), contents
                assert [e["seq"] for e in reader.events()] == list(range(1, written[name] + 1))


async def test_idle_streams_send_heartbeats(tmp_path: Path):
    app = create_app(make_settings(tmp_path, events_heartbeat_s=0.05))
    with serve_in_thread(app) as url:
        h = Served(url, app).key("acme")
        try:
            async with httpx.AsyncClient(timeout=30) as http, stream(http, url, h) as reader:
                await reader.until(lambda r: r.comments >= 3)
        finally:
            end_streams(app)


async def test_resuming_before_the_oldest_kept_event_is_410_with_its_seq(served: Served):
    h = served.key("acme")
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(3):
            await http.post(f"{served.url}/v1/memory/core/append", json={"text": "x"}, headers=h)
        pruned = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(
                served.app.state.services.events.prune(0.0), _loop_of(served)
            )
        )
        assert pruned == 3
        for path, extra in (("/v1/events/stream", {"Last-Event-ID": "1"}), ("/v1/events", {})):
            r = await http.get(f"{served.url}{path}", params={"after": 1}, headers={**h, **extra})
            assert r.status_code == 410, r.text
            err = r.json()["error"]
            assert err["type"] == "gone" and err["oldest_seq"] == 4 and err["field"] == "after"
        # Resuming from the prune point is fine, and new events follow.
        async with stream(http, served.url, h, after=3) as reader:
            await http.post(f"{served.url}/v1/memory/core/append", json={"text": "y"}, headers=h)
            await reader.until(lambda r: len(r.events()) == 1)
            assert reader.events()[0]["seq"] == 4


def _loop_of(served: Served) -> asyncio.AbstractEventLoop:
    return served.hub._loop  # type: ignore[attr-defined,no-any-return]


@pytest.mark.slow
async def test_200_open_streams_share_one_reader_and_all_get_the_write(served: Served):
    h = served.key("acme")
    limits = httpx.Limits(max_connections=260, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        async with asynccontext_group([stream(http, served.url, h) for _ in range(200)]) as readers:
            assert served.hub.stats() == {"channels": 1, "streams": 200, "queued": 0, "readers": 1}
            r = await http.post(
                f"{served.url}/v1/memory/core/append", json={"text": "hello"}, headers=h
            )
            assert r.status_code == 200
            for reader in readers:
                await reader.until(lambda r: len(r.events()) == 1)
            assert {reader.events()[0]["seq"] for reader in readers} == {1}
    async with asyncio.timeout(DEADLINE_S):
        while served.hub.stats()["streams"]:
            await asyncio.sleep(0.05)
    assert served.hub.stats() == {"channels": 0, "streams": 0, "queued": 0, "readers": 0}


@asynccontextmanager
async def asynccontext_group(managers: list[Any]) -> AsyncIterator[list[Any]]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        entered = await asyncio.gather(*(stack.enter_async_context(m) for m in managers))
        yield list(entered)


# ---- the hub itself: bounded queues ------------------------------------------------------------


async def test_a_subscriber_that_falls_behind_gets_overflow_with_a_resume_point(tmp_path: Path):
    sql = SqlStore.open(f"sqlite:///{tmp_path / 'e.db'}")
    log = EventLog(sql)
    hub = EventHub(log, queue_size=5, heartbeat_s=30, poll_s=30)
    log.hub = hub
    hub.start()
    try:

        def write(n: int) -> None:
            with sql.begin() as conn:
                for i in range(n):
                    log.record(conn, "t", NewEvent("state", "set", f"k{i}"))

        items = hub.stream("t", after=None, filter=EventFilter())
        assert await anext(items) == Ready(0)
        first = asyncio.create_task(anext(items))  # reads the (empty) backlog, then waits live
        await until_live(hub, "t")
        await asyncio.to_thread(write, 1)
        log.committed("t")
        assert (await first).seq == 1  # type: ignore[union-attr]
        # The consumer stops reading; 20 more events pass the queue limit of 5.
        await asyncio.to_thread(write, 20)
        log.committed("t")
        async with asyncio.timeout(DEADLINE_S):
            while not next(iter(hub._channels["t"].subs)).overflowed:  # noqa: SLF001
                await asyncio.sleep(0.01)
        assert hub.stats()["queued"] == 0  # the overflowed queue was dropped, not kept
        assert [item async for item in items] == [Overflow(resume_after=1)]
        # Resuming from there reads the rest from the log.
        again = hub.stream("t", after=1, filter=EventFilter())
        assert await anext(again) == Ready(1)
        seqs = [(await anext(again)).seq for _ in range(20)]  # type: ignore[union-attr]
        assert seqs == list(range(2, 22))
        await again.aclose()
    finally:
        await hub.close()
        await sql.aclose()


async def until_live(hub: EventHub, tenant: str) -> None:
    """Until the tenant's stream has read its backlog and queues live events."""
    async with asyncio.timeout(DEADLINE_S):
        while not (
            tenant in hub._channels and not next(iter(hub._channels[tenant].subs)).catching_up
        ):  # noqa: SLF001
            await asyncio.sleep(0.01)


async def test_a_write_on_another_store_reaches_the_stream_by_the_poll(tmp_path: Path):
    """Two processes on one SQLite file: no notification crosses, the log-head poll does."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    reader_sql, writer_sql = SqlStore.open(url), SqlStore.open(url)
    hub = EventHub(EventLog(reader_sql), queue_size=100, heartbeat_s=30, poll_s=0.05)
    hub.start()
    try:
        items = hub.stream("t", after=None, filter=EventFilter())
        assert await anext(items) == Ready(0)
        waiting = asyncio.create_task(anext(items))
        await until_live(hub, "t")
        with writer_sql.begin() as conn:
            EventLog(writer_sql).record(conn, "t", NewEvent("state", "set", "k"))
        async with asyncio.timeout(DEADLINE_S):
            event = await waiting
        assert event.seq == 1  # type: ignore[union-attr]
        await items.aclose()
    finally:
        await hub.close()
        await reader_sql.aclose()
        writer_sql.close()
