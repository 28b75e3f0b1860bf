"""The API-key cache of TenantService over real SQL (SQLite and PostgreSQL): trusted keys skip
SQL, revocations through the service end a key at once, other processes' within the cache time,
and a lookup overtaken by a revocation is never remembered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentmem_server.services.tenants import TenantService
from agentmem_server.storage.sql.store import SqlStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class CountingStore:
    """The store, counting `tenant_for_key` lookups; `gate` (when set) holds them before SQL."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.lookups = 0
        self.gate: asyncio.Event | None = None

    async def run_autocommit(self, fn: Any, *args: Any) -> Any:
        if fn.__name__ != "tenant_for_key":
            return await self.store.run_autocommit(fn, *args)
        self.lookups += 1
        result = await self.store.run_autocommit(fn, *args)
        if self.gate is not None:
            await self.gate.wait()  # answered from SQL, not yet returned
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def service(store: SqlStore, clock: Clock, cache_s: float = 1.0) -> tuple[TenantService, Any]:
    counting = CountingStore(store)
    return TenantService(counting, key_cache_s=cache_s, clock=clock), counting  # type: ignore[arg-type]


async def test_a_trusted_key_skips_sql_until_the_cache_time_passes(sql_store, clock):
    tenants, sql = service(sql_store, clock)
    created = await tenants.create_key("acme")
    tenant_id = await tenants.tenant_id("acme")
    assert await tenants.tenant_for_key(created.key) == tenant_id
    assert await tenants.tenant_for_key(created.key) == tenant_id
    assert sql.lookups == 1
    clock.now += 1.0
    assert await tenants.tenant_for_key(created.key) == tenant_id
    assert sql.lookups == 2


async def test_unknown_keys_are_never_remembered(sql_store, clock):
    tenants, sql = service(sql_store, clock)
    for _ in range(3):
        assert await tenants.tenant_for_key("am_not-a-key") is None
    assert sql.lookups == 3


async def test_a_revocation_here_ends_the_key_at_once(sql_store, clock):
    tenants, _ = service(sql_store, clock)
    created = await tenants.create_key("acme")
    other = await tenants.create_key("acme")
    assert await tenants.tenant_for_key(created.key) is not None
    assert await tenants.tenant_for_key(other.key) is not None
    await tenants.revoke_key(created.id)
    assert await tenants.tenant_for_key(created.key) is None
    assert await tenants.tenant_for_key(other.key) is not None


async def test_a_revocation_elsewhere_ends_the_key_within_the_cache_time(sql_store, clock):
    tenants, _ = service(sql_store, clock)
    created = await tenants.create_key("acme")
    assert await tenants.tenant_for_key(created.key) is not None
    TenantService(sql_store).revoke_key_sync(created.id)  # as `agentmem keys revoke` does
    clock.now += 0.5
    assert await tenants.tenant_for_key(created.key) is not None  # trusted for up to 1 s
    clock.now += 0.5
    assert await tenants.tenant_for_key(created.key) is None


async def test_a_lookup_overtaken_by_a_revocation_is_not_remembered(sql_store, clock):
    tenants, sql = service(sql_store, clock)
    created = await tenants.create_key("acme")
    sql.gate = asyncio.Event()
    lookup = asyncio.ensure_future(tenants.tenant_for_key(created.key))
    while sql.lookups == 0:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)  # the lookup has read the key as active and waits at the gate
    await tenants.revoke_key(created.id)  # commits meanwhile
    sql.gate.set()
    assert await lookup is not None  # it began before the revocation
    sql.gate = None
    assert await tenants.tenant_for_key(created.key) is None
    assert sql.lookups == 2


async def test_no_cache_asks_sql_every_time(sql_store, clock):
    tenants, sql = service(sql_store, clock, cache_s=0.0)
    created = await tenants.create_key("acme")
    await tenants.tenant_for_key(created.key)
    await tenants.tenant_for_key(created.key)
    assert sql.lookups == 2
