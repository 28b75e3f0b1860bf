"""The change feed end to end with real server processes: a stream on one replica sees writes made
through another (PostgreSQL) within a second, in order; a client stream resumes across a server
restart with nothing lost or repeated; a server killed mid-write leaves no gap in the log."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentmem import Client
from agentmem.types import MemoryEvent

import support
from support import ServerProcess, create_key

pytestmark = pytest.mark.e2e

DEADLINE_S = 30.0


class Collector:
    """`client.events.stream(...)` on a thread: every event with the time it arrived."""

    def __init__(self, client: Client, **filters: Any):
        self.got: list[tuple[float, MemoryEvent]] = []
        self.changed = threading.Condition()
        self._stop = False
        self.error: Exception | None = None

        def run() -> None:
            try:
                for event in client.events.stream(**filters):
                    if self._stop:
                        return  # leaving the loop closes the stream's connection
                    with self.changed:
                        self.got.append((time.perf_counter(), event))
                        self.changed.notify_all()
            except Exception as exc:  # noqa: BLE001 - kept for the test, not raised on a thread
                # Raised on this thread, it would fail whichever test runs when the client of a
                # failed test is closed under it.
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self, write: Any) -> None:
        """Stop after the next event, which `write()` makes."""
        self._stop = True
        write()
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive()

    def wait_for(self, n: int, timeout: float = DEADLINE_S) -> None:
        with self.changed:
            done = self.changed.wait_for(lambda: len(self.got) >= n, timeout)
            assert done, (len(self.got), n, self.seqs(), self.error)

    def seqs(self) -> list[int]:
        return [e.seq for _, e in self.got]


def _wait_ready_stream(client: Client, collector: Collector, write: Any) -> None:
    """Write until the stream sees one event: it is connected and live."""
    deadline = time.monotonic() + DEADLINE_S
    while not collector.got:
        assert time.monotonic() < deadline, "the stream never delivered"
        write()
        with collector.changed:
            collector.changed.wait_for(lambda: bool(collector.got), 0.5)


@pytest.mark.postgres
def test_a_stream_on_one_replica_sees_writes_through_another_within_a_second(
    start_server: Any, postgres_url: str, tmp_path: Path
) -> None:
    a = start_server(tmp_path / "a", database_url=postgres_url)
    b = start_server(tmp_path / "b", database_url=postgres_url)
    key = create_key(a.env, "acme")
    with Client(api_key=key, base_url=a.url) as via_a, Client(api_key=key, base_url=b.url) as via_b:
        collector = Collector(via_b, patterns=["core"])
        _wait_ready_stream(via_b, collector, lambda: via_a.memory.append("core", "warm-up"))
        start = len(collector.got)
        sent: list[float] = []
        for i in range(20):
            sent.append(time.perf_counter())
            via_a.memory.append("core", f"line {i}", agent_id="bot")
            collector.wait_for(start + i + 1)
        collector.stop(lambda: via_a.memory.append("core", "stop"))
        got = collector.got[start:]
        latencies = [arrived - t0 for (arrived, _), t0 in zip(got, sent, strict=False)]
        assert [e.data["content"].split("\n")[-1] for _, e in got] == [
            f"line {i}" for i in range(20)
        ]  # type: ignore[index]
        seqs = collector.seqs()
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert max(latencies) < 1.0, latencies
        print(
            f"cross-replica delivery p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )


def test_a_client_stream_resumes_across_a_server_restart_losing_nothing(
    start_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(tmp_path / "data")
    key = create_key(server.env, "acme")
    with (
        Client(api_key=key, base_url=server.url) as writer,
        Client(api_key=key, base_url=server.url) as reader,
    ):
        collector = Collector(reader, kinds=["core"])
        _wait_ready_stream(reader, collector, lambda: writer.memory.append("core", "first"))
        # The stream starts at "now": a warm-up write made before it was live is not in it.
        first = collector.seqs()[0]
        for i in range(3):
            writer.memory.append("core", f"before {i}")
        collector.wait_for(4)

        server.stop()  # ends the stream; the client keeps trying to reconnect
        monkeypatch.setattr(support, "free_port", lambda: server.port)
        again = ServerProcess(server.env, tmp_path / "restarted.log").wait_ready()
        try:
            with Client(api_key=key, base_url=again.url) as writer2:
                for i in range(3):
                    writer2.memory.append("core", f"after {i}")
                last = writer2.events.list(kinds=["core"], limit=1000).events[-1].seq
                collector.wait_for(last - first + 1)
                collector.stop(lambda: writer2.memory.append("core", "stop"))
            # nothing lost, nothing twice
            assert collector.seqs() == list(range(first, last + 1))
        finally:
            again.stop()


def test_a_server_killed_mid_write_leaves_no_gap_and_no_unlogged_write(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data")
    key = create_key(server.env, "acme")

    some_done = threading.Event()
    done = [0]

    def hammer(worker: int) -> None:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            for i in range(100_000):
                try:
                    r = http.post(
                        "/v1/memory/core/append",
                        params={"agent_id": f"a{worker}"},
                        json={"text": f"{i}"},
                    )
                except httpx.HTTPError:
                    return
                assert r.status_code == 200, r.text
                done[0] += 1
                if done[0] >= 40:
                    some_done.set()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer, w) for w in range(4)]
        assert some_done.wait(DEADLINE_S)  # writes are in flight: kill without warning
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
        for f in futures:
            f.result()

    again = start_server(tmp_path / "data")
    with Client(api_key=key, base_url=again.url) as client:
        events: list[MemoryEvent] = []
        after = 0
        while True:
            page = client.events.list(after=after, limit=1000)
            events += page.events
            after = page.next_after
            if not page.has_more:
                break
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        for worker in range(4):
            agent = f"a{worker}"
            logged = [e for e in events if e.agent_id == agent]
            try:
                block = client.memory.get("core", agent_id=agent)
            except Exception:  # noqa: BLE001 - no write of this worker committed
                assert not logged
                continue
            # Every committed append has its event, and every event its committed append.
            assert len(logged) == block.line_count
            assert logged[-1].data is not None and logged[-1].data["content"] == block.content
