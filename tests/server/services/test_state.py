"""Keyed state, service over real SQL (SQLite and PostgreSQL): writes, guards, expiry, lookup."""

from __future__ import annotations

import itertools
import random

import pytest

from agentmem_server.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from agentmem_server.services.state import StateService
from agentmem_server.storage.base import from_micros
from agentmem_server.storage.sql.store import SqlStore

from support import T0_US, FakeClock


@pytest.fixture
def state(sql_store: SqlStore, clock: FakeClock) -> StateService:
    return StateService(sql_store, value_max_bytes=1024, clock=clock)


@pytest.mark.parametrize(
    "value", [{"a": 1, "b": [1, 2.5, None, True]}, [1, "two"], "text", 42, 3.25, True, None, {}]
)
async def test_any_json_value_round_trips(state: StateService, value):
    await state.set("t1", ("session", "u1"), "k", value)
    entry = await state.get("t1", ("session", "u1"), "k")
    assert entry.value == value and entry.namespace == ["session", "u1"] and entry.key == "k"


async def test_namespaces_and_tenants_are_separate_keyspaces(state: StateService):
    await state.set("t1", (), "k", "root")
    await state.set("t1", ("session", "s"), "k", "session")
    await state.set("t1", ("session", "s", "sub"), "k", "below")
    await state.set("t2", (), "k", "other tenant")
    assert (await state.get("t1", (), "k")).value == "root"
    assert (await state.get("t1", ("session", "s"), "k")).value == "session"
    assert (await state.get("t1", ("session", "s", "sub"), "k")).value == "below"
    assert (await state.get("t2", (), "k")).value == "other tenant"
    with pytest.raises(NotFound):
        await state.get("t3", (), "k")


async def test_last_write_wins_and_updated_at_strictly_increases(
    state: StateService, clock: FakeClock
):
    first = await state.set("t1", (), "k", 1)
    second = await state.set("t1", (), "k", 2)  # same microsecond
    clock.now -= 5_000_000  # the clock steps back
    third = await state.set("t1", (), "k", 3)
    assert [e.value for e in (first, second, third)] == [1, 2, 3]
    assert first.updated_at < second.updated_at < third.updated_at
    assert third.created_at == first.created_at == from_micros(T0_US)


async def test_guarded_writes(state: StateService):
    created = await state.set("t1", (), "k", "v1", guarded=True, expected_updated_at=None)
    with pytest.raises(Conflict) as exists:
        await state.set("t1", (), "k", "again", guarded=True, expected_updated_at=None)
    assert exists.value.extra["current"]["value"] == "v1"
    replaced = await state.set(
        "t1", (), "k", "v2", guarded=True, expected_updated_at=created.updated_at
    )
    with pytest.raises(Conflict) as stale:
        await state.set("t1", (), "k", "lost", guarded=True, expected_updated_at=created.updated_at)
    err = stale.value
    assert err.field == "expected_updated_at"
    assert err.extra["current"]["value"] == "v2"
    assert err.extra["current_updated_at"] == replaced.updated_at.isoformat()
    assert (await state.get("t1", (), "k")).value == "v2"
    await state.delete("t1", (), "k")
    with pytest.raises(Conflict) as gone:
        await state.set("t1", (), "k", "x", guarded=True, expected_updated_at=replaced.updated_at)
    assert gone.value.extra["current"] is None


async def test_delete_is_idempotent_and_says_whether_it_deleted(state: StateService):
    await state.set("t1", (), "k", 1)
    assert await state.delete("t1", (), "k") is True
    assert await state.delete("t1", (), "k") is False
    with pytest.raises(NotFound):
        await state.get("t1", (), "k")


async def test_list_is_lexicographic_with_prefix_and_pages(state: StateService):
    keys = ["b", "a", "a/b", "a.c", "ab", "é", "z", "A", "a\U0010ffff", "a\uffff", "a\ud7ff\ue000"]
    for k in keys:
        await state.set("t1", ("ns",), k, k)
    await state.set("t1", ("ns", "below"), "a", "not listed")
    await state.set("t1", (), "a", "not listed")
    page = await state.list("t1", ("ns",), limit=1000)
    assert [i.key for i in page.items] == sorted(keys) and page.next_cursor is None
    with_a = await state.list("t1", ("ns",), prefix="a")
    assert [i.key for i in with_a.items] == sorted(k for k in keys if k.startswith("a"))
    seen, cursor = [], None
    while True:
        page = await state.list("t1", ("ns",), limit=3, cursor=cursor)
        seen += [i.key for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(keys)


async def test_lookup_takes_the_first_level_present_for_every_subset(state: StateService):
    ids = {"workflow": "wf-1", "session": "s:1", "agent": "bot@a"}
    levels = ["workflow", "session", "agent", "tenant"]
    for present in itertools.chain.from_iterable(
        itertools.combinations(levels, n) for n in range(5)
    ):
        tenant = "t-" + "-".join(present)
        for level in present:
            ns = () if level == "tenant" else (level, ids[level])
            await state.set(tenant, ns, "k", level)
        for given in itertools.chain.from_iterable(
            itertools.combinations(ids, n) for n in range(4)
        ):
            kwargs = {f"{level}_id": ids[level] for level in given}
            chain = [level for level in levels if level in given or level == "tenant"]
            expected = next((level for level in chain if level in present), None)
            if expected is None:
                with pytest.raises(NotFound):
                    await state.lookup(tenant, "k", **kwargs)
                continue
            entry = await state.lookup(tenant, "k", **kwargs)
            assert entry.value == expected, (present, given)
            assert entry.namespace == ([] if expected == "tenant" else [expected, ids[expected]])


async def test_expiry_at_the_boundary(state: StateService, clock: FakeClock):
    await state.set("t1", (), "k", "root")
    entry = await state.set("t1", ("session", "s"), "k", "soon gone", ttl=10)
    assert entry.expires_at == from_micros(T0_US + 10_000_000)
    clock.now = T0_US + 10_000_000 - 1
    assert (await state.get("t1", ("session", "s"), "k")).value == "soon gone"
    assert (await state.lookup("t1", "k", session_id="s")).value == "soon gone"
    clock.now = T0_US + 10_000_000
    with pytest.raises(NotFound):
        await state.get("t1", ("session", "s"), "k")
    assert (await state.list("t1", ("session", "s"))).items == []
    assert (await state.lookup("t1", "k", session_id="s")).value == "root"
    assert await state.delete("t1", ("session", "s"), "k") is False  # invisible: nothing deleted


async def test_a_write_over_an_expired_entry_creates_it_anew(state: StateService, clock: FakeClock):
    old = await state.set("t1", (), "k", "old", ttl=1)
    clock.now += 2_000_000
    with pytest.raises(Conflict):  # the old version is gone: a guard on it loses
        await state.set("t1", (), "k", "x", guarded=True, expected_updated_at=old.updated_at)
    created = await state.set("t1", (), "k", "new", guarded=True, expected_updated_at=None)
    assert created.value == "new" and created.expires_at is None
    assert created.created_at == from_micros(clock.now)
    clock.now += 1
    again = await state.set("t1", (), "k2", "old", ttl=1)
    clock.now += 2_000_000
    lww = await state.set("t1", (), "k2", "new")
    assert lww.created_at > again.created_at and lww.expires_at is None


async def test_sweep_removes_only_expired_rows(
    state: StateService, sql_store: SqlStore, clock: FakeClock
):
    for i in range(5):
        await state.set("t1", (), f"gone{i}", i, ttl=1)
    await state.set("t2", (), "gone", 1, ttl=1)
    await state.set("t1", (), "kept", 1, ttl=100)
    await state.set("t1", (), "forever", 1)
    clock.now += 1_000_000
    assert await state.sweep() == 6
    assert await state.sweep() == 0
    from agentmem_server.storage.sql import state as state_sql

    with sql_store.begin() as conn:
        assert state_sql.count_entries(conn, "t1")[0] == 2
        assert state_sql.count_entries(conn, "t2")[0] == 0


async def test_clear_and_agent_namespace_deletion(state: StateService):
    await state.set("t1", ("session", "s"), "a", 1)
    await state.set("t1", ("session", "s"), "b", 1)
    await state.set("t1", ("session", "s", "sub"), "a", 1)
    assert await state.clear("t1", ("session", "s")) == 2
    assert (await state.list("t1", ("session", "s"))).items == []
    assert len((await state.list("t1", ("session", "s", "sub"))).items) == 1
    for ns in [
        ("agent", "bot"),
        ("agent", "bot", "x"),
        ("agent", "bot", "x", "y"),
        ("agent", "bot2"),
        ("agent", "bo"),
    ]:
        await state.set("t1", ns, "k", 1)
    await state.set("t2", ("agent", "bot"), "k", 1)
    assert await state.delete_agent_namespace("t1", "bot") == 3
    for ns, alive in [
        (("agent", "bot"), False),
        (("agent", "bot", "x"), False),
        (("agent", "bot2"), True),
        (("agent", "bo"), True),
    ]:
        assert bool((await state.list("t1", ns)).items) is alive, ns
    assert (await state.get("t2", ("agent", "bot"), "k")).value == 1


@pytest.mark.parametrize(
    ("namespace", "key", "field", "limit"),
    [
        ((), "", "key", 255),
        ((), "k" * 256, "key", 255),
        ((), "a\nb", "key", 255),
        ((), "a\x7fb", "key", 255),
        (("a",) * 9, "k", "namespace", 8),
        (("has space",), "k", "namespace", None),
        (("a/b",), "k", "namespace", None),
        (("x" * 129,), "k", "namespace", None),
    ],
)
async def test_bad_keys_and_namespaces_name_the_field(
    state: StateService, namespace, key, field, limit
):
    with pytest.raises(InvalidInput) as exc:
        await state.set("t1", namespace, key, 1)
    assert exc.value.field == field and exc.value.limit == limit
    assert (await state.list("t1", ())).items == []


async def test_value_size_limit_names_field_and_limit(state: StateService):
    await state.set("t1", (), "k", "x" * 1000)  # 1002 bytes as JSON
    with pytest.raises(PayloadTooLarge) as exc:
        await state.set("t1", (), "k", "é" * 600)  # 1202 bytes as UTF-8 JSON
    assert exc.value.field == "value" and exc.value.limit == 1024
    assert (await state.get("t1", (), "k")).value == "x" * 1000


async def test_tenants_never_see_each_other_randomized(state: StateService):
    rng = random.Random(14)
    tenants = ["ta", "tb", "tc"]
    model: dict[tuple[str, tuple[str, ...], str], int] = {}
    namespaces = [(), ("agent", "a"), ("session", "s"), ("workflow", "w")]
    for step in range(300):
        tenant, ns, key = rng.choice(tenants), rng.choice(namespaces), rng.choice("abcde")
        if rng.random() < 0.7:
            await state.set(tenant, ns, key, step)
            model[(tenant, ns, key)] = step
        else:
            existed = (tenant, ns, key) in model
            assert await state.delete(tenant, ns, key) is existed
            model.pop((tenant, ns, key), None)
    for tenant in tenants:
        for ns in namespaces:
            listed = {i.key for i in (await state.list(tenant, ns)).items}
            assert listed == {k for (t, n, k) in model if t == tenant and n == ns}
            for key in "abcde":
                if (tenant, ns, key) in model:
                    assert (await state.get(tenant, ns, key)).value == model[(tenant, ns, key)]
        for key in "abcde":
            chain = [("workflow", "w"), ("session", "s"), ("agent", "a"), ()]
            hit = next(
                (model[(tenant, ns, key)] for ns in chain if (tenant, ns, key) in model), None
            )
            if hit is None:
                with pytest.raises(NotFound):
                    await state.lookup(tenant, key, workflow_id="w", session_id="s", agent_id="a")
            else:
                assert (
                    await state.lookup(tenant, key, workflow_id="w", session_id="s", agent_id="a")
                ).value == hit
