"""Keyed state's lifecycle over real SQL: default TTL, exact usage counts, quotas, the sweep
lease."""

from __future__ import annotations

import random

import pytest

from agentmem_server.errors import NotFound, PayloadTooLarge, QuotaExceeded
from agentmem_server.services.limits import Quotas
from agentmem_server.services.state import StateService
from agentmem_server.storage.base import from_micros
from agentmem_server.storage.sql import state as state_sql
from agentmem_server.storage.sql.store import SqlStore

from support import T0_US, FakeClock


@pytest.fixture
def state(sql_store: SqlStore, clock: FakeClock) -> StateService:
    return StateService(sql_store, clock=clock)


def usage(sql_store: SqlStore, tenant_id: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(what the bookkeeping row says, what the rows hold)."""
    with sql_store.begin() as conn:
        kept = state_sql.tenant_state(conn, tenant_id)
        return (kept.entries, kept.bytes), state_sql.count_entries(conn, tenant_id)


async def test_the_tenant_default_ttl_applies_to_entries_set_without_one(
    state: StateService, clock: FakeClock
):
    await state.set("t1", (), "before", 1)
    settings = await state.set_default_ttl("t1", 60)
    assert settings.default_ttl == 60
    defaulted = await state.set("t1", (), "k", 1)
    own = await state.set("t1", (), "own", 1, ttl=3600)
    other = await state.set("t2", (), "k", 1)
    assert defaulted.expires_at == from_micros(T0_US + 60_000_000)
    assert own.expires_at == from_micros(T0_US + 3600_000_000)
    assert other.expires_at is None
    clock.now += 60_000_000
    with pytest.raises(NotFound):
        await state.get("t1", (), "k")
    assert (await state.get("t1", (), "before")).expires_at is None  # kept its expiry
    assert (await state.set_default_ttl("t1", None)).default_ttl is None
    assert (await state.set("t1", (), "k", 2)).expires_at is None


async def test_usage_counts_stay_exact_through_every_write_path(
    state: StateService, sql_store: SqlStore, clock: FakeClock
):
    rng = random.Random(7)
    namespaces = [(), ("agent", "a"), ("agent", "a", "sub"), ("session", "s")]
    for step in range(200):
        ns, key = rng.choice(namespaces), rng.choice("abcdef")
        op = rng.random()
        if op < 0.5:
            await state.set("t1", ns, key, "x" * rng.randrange(50), ttl=rng.choice([None, 1.0]))
        elif op < 0.6:
            entry = None
            try:
                entry = await state.get("t1", ns, key)
            except NotFound:
                pass
            try:
                await state.set(
                    "t1",
                    ns,
                    key,
                    step,
                    guarded=True,
                    expected_updated_at=entry.updated_at if entry else None,
                )
            except Exception:  # noqa: BLE001 - a lost guard changes nothing, which is the point
                pass
        elif op < 0.8:
            await state.delete("t1", ns, key)
        elif op < 0.85:
            await state.clear("t1", ns)
        elif op < 0.9:
            await state.delete_agent_namespace("t1", "a")
        elif op < 0.95:
            clock.now += 600_000
        else:
            await state.sweep()
        kept, counted = usage(sql_store, "t1")
        assert kept == counted, step


async def test_entry_quota_is_429_naming_the_limit_and_changes_nothing(
    sql_store: SqlStore, clock: FakeClock
):
    state = StateService(
        sql_store, clock=clock, quotas=Quotas(sql_store, {"state_entries": 3, "state_bytes": 0})
    )
    for key in "abc":
        await state.set("t1", (), key, 1)
    await state.set("t1", (), "a", 2)  # replacing an entry adds none
    with pytest.raises(QuotaExceeded) as exc:
        await state.set("t1", (), "d", 1)
    assert exc.value.field == "key" and exc.value.limit == 3 and exc.value.status_code == 429
    assert (await state.list("t1", ())).items.__len__() == 3
    await state.set("t2", (), "d", 1)  # another tenant has its own
    await state.delete("t1", (), "a")
    await state.set("t1", (), "d", 1)


async def test_byte_quota_counts_values_and_413s_a_value_larger_than_it(
    sql_store: SqlStore, clock: FakeClock
):
    state = StateService(
        sql_store, clock=clock, quotas=Quotas(sql_store, {"state_entries": 0, "state_bytes": 100})
    )
    await state.set("t1", (), "a", "x" * 58)  # 60 bytes
    with pytest.raises(QuotaExceeded) as full:
        await state.set("t1", (), "b", "x" * 48)  # 50 more: 110 > 100
    assert full.value.field == "value" and full.value.limit == 100
    await state.set("t1", (), "a", "x" * 8)  # shrinking frees room
    await state.set("t1", (), "b", "x" * 48)
    with pytest.raises(PayloadTooLarge) as huge:
        await state.set("t1", (), "c", "x" * 200)
    assert huge.value.field == "value" and huge.value.limit == 100
    assert usage(sql_store, "t1")[0] == (2, 60)


async def test_expired_rows_count_until_swept(sql_store: SqlStore, clock: FakeClock):
    state = StateService(sql_store, clock=clock, quotas=Quotas(sql_store, {"state_entries": 2}))
    await state.set("t1", (), "a", 1, ttl=1)
    await state.set("t1", (), "b", 1, ttl=1)
    clock.now += 1_000_000
    await state.set("t1", (), "a", 2)  # over its own expired row: no new row
    with pytest.raises(QuotaExceeded):
        await state.set("t1", (), "c", 1)
    assert await state.sweep() == 1
    await state.set("t1", (), "c", 1)
    assert usage(sql_store, "t1")[0][0] == 2


async def test_one_replica_sweeps_at_a_time_and_another_takes_over(
    sql_store: SqlStore, clock: FakeClock
):
    a, b = StateService(sql_store, clock=clock), StateService(sql_store, clock=clock)
    a.lease_us = b.lease_us = 3_600_000_000
    await a.set("t1", (), "k", 1, ttl=1)
    clock.now += 1_000_000
    assert await b.sweep_if_leader() == 1  # b takes the free lease
    assert await a.sweep_if_leader() is None  # while b holds it, a does not sweep
    assert await b.sweep_if_leader() == 0  # b renews its own
    await b.close()  # gives the lease up
    assert await a.sweep_if_leader() == 0
    await a.close()


async def test_sweeper_runs_in_the_background_and_stops_on_close(sql_store: SqlStore):
    import asyncio

    state = StateService(sql_store)
    await state.set("t1", (), "k", 1, ttl=0.001)
    state.start_sweeping(0.01)
    try:
        for _ in range(500):
            if usage(sql_store, "t1")[1][0] == 0:
                break
            await asyncio.sleep(0.01)
        assert usage(sql_store, "t1") == ((0, 0), (0, 0))
    finally:
        await state.close()
