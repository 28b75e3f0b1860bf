"""When a written table is maintained: after a quiet period, and while it is written without one,
once it holds enough writes or its oldest write is old enough (maintenance.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from agentmem_server.storage.lance.maintenance import Maintenance, Pending


class _RecordingStore:
    def __init__(self) -> None:
        self.passes: list[str] = []

    async def maintain(self, name: str, *, prune_older_than: timedelta) -> None:
        self.passes.append(name)


def _maintenance(**pacing: float) -> tuple[Maintenance, _RecordingStore]:
    store = _RecordingStore()
    # A long grace: no pruning pass gets in the way of what is counted.
    m = Maintenance(store, prune_grace=timedelta(hours=1), background=True, **pacing)  # type: ignore[arg-type]
    return m, store


async def _until(condition, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time")


def test_due_after_a_quiet_period_or_many_writes_or_the_longest_wait() -> None:
    rule = {"delay_s": 2.0, "max_wait_s": 30.0, "max_writes": 64}
    assert Pending(first=100.0, last=100.0).due_at(**rule) == 102.0
    # The quiet period counts from the last write, not the first.
    assert Pending(first=100.0, last=101.5, writes=2).due_at(**rule) == 103.5
    # Written every second: never quiet, so due 30 s after the first of its writes.
    assert Pending(first=100.0, last=129.0, writes=30).due_at(**rule) == 130.0
    # Written faster: due at its 64th write, however recent.
    assert Pending(first=100.0, last=110.0, writes=64).due_at(**rule) == 110.0


async def test_a_table_written_without_pause_is_maintained_at_its_max_writes() -> None:
    m, store = _maintenance(delay_s=60.0, max_wait_s=60.0, max_writes=5)
    for _ in range(4):
        m.mark("a")
    await asyncio.sleep(0.2)
    assert store.passes == [], "4 writes, no quiet period yet: not due"
    m.mark("a")
    await _until(lambda: store.passes == ["a"])
    assert "a" not in m._dirty
    m.mark("a")  # counted afresh after the pass
    await asyncio.sleep(0.2)
    assert store.passes == ["a"]
    await m.aclose()


async def test_a_table_written_without_pause_is_maintained_within_max_wait() -> None:
    m, store = _maintenance(delay_s=60.0, max_wait_s=0.3, max_writes=10_000)
    writes = 0
    while not store.passes:
        m.mark("a")
        writes += 1
        await asyncio.sleep(0.01)
        assert writes < 1000, "no pass while the table was written without pause"
    assert store.passes == ["a"]
    await m.aclose()


async def test_a_burst_of_writes_costs_one_pass_after_the_quiet_period() -> None:
    m, store = _maintenance(delay_s=0.05, max_wait_s=60.0, max_writes=10_000)
    for _ in range(200):
        m.mark("a")
        m.mark("b")
    await _until(lambda: len(store.passes) == 2)
    await asyncio.sleep(0.2)
    assert sorted(store.passes) == ["a", "b"]
    await m.aclose()


async def test_only_due_tables_are_maintained() -> None:
    m, store = _maintenance(delay_s=60.0, max_wait_s=60.0, max_writes=3)
    m.mark("quiet")
    for _ in range(3):
        m.mark("busy")
    await _until(lambda: store.passes == ["busy"])
    await asyncio.sleep(0.2)
    assert store.passes == ["busy"] and "quiet" in m._dirty
    await m.aclose()


def test_a_table_is_maintained_at_most_once_per_quiet_period() -> None:
    rule = {"delay_s": 2.0, "max_wait_s": 30.0, "max_writes": 64}
    # 64 writes within a second of the previous pass: not before 2 s after it began.
    assert Pending(first=100.1, last=101.0, writes=64, not_before=102.0).due_at(**rule) == 102.0


async def test_a_table_written_very_fast_is_not_maintained_more_often_than_before() -> None:
    m, store = _maintenance(delay_s=0.3, max_wait_s=60.0, max_writes=2)
    loop = asyncio.get_running_loop()
    began: list[float] = []
    real = store.maintain

    async def timed(name: str, *, prune_older_than: timedelta) -> None:
        began.append(loop.time())
        await real(name, prune_older_than=prune_older_than)

    store.maintain = timed  # type: ignore[method-assign]
    started = loop.time()
    while loop.time() - started < 1.0:
        m.mark("a")
        await asyncio.sleep(0.01)
    # Due at every second write, yet each pass begins a quiet period after the one before.
    assert began and all(b - a >= 0.3 for a, b in zip(began[:-1], began[1:], strict=True)), began
    await m.aclose()
