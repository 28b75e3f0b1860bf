"""The in-memory copies that answer the vector leg: same results as exact search, never stale,
never a deleted row, never over the budget."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.storage.base import BlockRef, ScopeKey
from agentmem_server.storage.lance.arrow import vectors_of
from agentmem_server.storage.lance.schema import block_table_name
from agentmem_server.storage.lance.vector_cache import estimated_bytes

from support import T0_US

USER = BlockRef("t1", "blk_user", "user", None)
NAME = block_table_name("t1", ScopeKey("user"), "blk_user")
WORDS = [
    "apple",
    "river",
    "engine",
    "garden",
    "planet",
    "violin",
    "copper",
    "meadow",
    "harbor",
    "lantern",
]


def lines(n: int, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 4)) + f" {i}" for i in range(n)]


async def recall(index: ArchivalIndex, query: str, **kwargs):
    return await index.recall("t1", query, scopes=[ScopeKey("user")], **kwargs)


async def until_copied(index: ArchivalIndex, seconds: float = 30.0) -> None:
    """Recall once (which starts the copy) and wait until the copy is current."""
    cache = index.store.lance.vector_cache
    await recall(index, "apple", mode="vector")
    for _ in range(int(seconds / 0.02)):
        state = await index.store.lance.table(NAME)
        if await cache.current(NAME, state.table):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the table was not copied into memory")


async def copied(open_index, n: int):
    """An index holding `n` lines of the user scope, copied into memory: (index, cache, state)."""
    index = await open_index(chunk_tokens=16)
    await index.add(USER, await index.prepare(lines(n)), first_line=1, written_at=T0_US)
    await until_copied(index)
    return index, index.store.lance.vector_cache, await index.store.lance.table(NAME)


@pytest.mark.parametrize("rows, exact_below", [(400, 10_000), (900, 300)], ids=["flat", "hnsw"])
async def test_copy_answers_with_the_exact_nearest_chunks_and_scores(
    open_index, rows: int, exact_below: int
) -> None:
    index = await open_index(ann_index_min_rows=exact_below, chunk_tokens=16)
    await index.add(USER, await index.prepare(lines(rows)), first_line=1, written_at=T0_US)
    await until_copied(index)
    state = await index.store.lance.table(NAME)
    stored = await state.table.query().select(["vector"]).to_arrow()
    vectors = vectors_of(stored.column("vector"), index.embedder.dimension)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    served = index.store.lance.vector_cache.served
    for query in ("apple river", "violin lantern harbor", "copper meadow engine 17", "planet 5"):
        q = index.embedder.embed([query])[0]
        exact = np.sort(vectors @ (q / np.linalg.norm(q)))[::-1]
        for limit in (1, 5, 20):
            hits = await recall(index, query, mode="vector", limit=limit)
            assert [h.score for h in hits] == pytest.approx(
                np.clip(exact[:limit], 0, 1).tolist(), abs=1e-5
            ), (query, limit)
    assert index.store.lance.vector_cache.served == served + 12, (
        "every one of them came from the copy"
    )


async def test_a_write_is_found_at_once_and_the_copy_catches_up(open_index) -> None:
    index = await open_index(chunk_tokens=16)
    await index.add(USER, await index.prepare(lines(200)), first_line=1, written_at=T0_US)
    await until_copied(index)
    await index.add(
        USER,
        await index.prepare(["the zeppelin landed on the lighthouse"]),
        first_line=201,
        written_at=T0_US + 1,
    )
    for _ in range(2):  # before the copy has caught up (LanceDB answers), then from the copy
        hits = await recall(index, "zeppelin lighthouse", mode="vector", limit=1)
        assert hits[0].line_number == 201 and "zeppelin" in hits[0].content
        await until_copied(index)
    served = index.store.lance.vector_cache.served
    assert (await recall(index, "zeppelin lighthouse", mode="hybrid", limit=1))[
        0
    ].line_number == 201
    assert index.store.lance.vector_cache.served == served + 1


async def test_replaced_and_discarded_rows_never_come_back(open_index) -> None:
    index = await open_index(chunk_tokens=16)
    await index.replace(
        USER, lines(150) + ["the vault code is kept by the walrus"], written_at=T0_US
    )
    await until_copied(index)
    assert "walrus" in (await recall(index, "vault code walrus", mode="vector", limit=1))[0].content
    await index.replace(USER, lines(150) + ["the vault is empty now"], written_at=T0_US + 1)
    for _ in range(2):
        for mode in ("vector", "hybrid"):
            assert all(
                "walrus" not in h.content
                for h in await recall(index, "vault code walrus", mode=mode, limit=20)
            )
        await until_copied(index)

    prepared = await index.prepare(["a failed append about the pelican"])
    await index.add(USER, prepared, first_line=152, written_at=T0_US + 2, write_id="w-failed")
    await until_copied(index)
    assert "pelican" in (await recall(index, "pelican", mode="vector", limit=1))[0].content
    await index.discard_write("t1", ScopeKey("user"), "w-failed")
    for _ in range(2):
        hits = await recall(index, "pelican", mode="vector", limit=20)
        assert all("pelican" not in h.content and h.line_number < 152 for h in hits)
        await until_copied(index)


async def test_a_scope_re_created_by_another_replica_is_never_answered_from_the_old_copy(
    open_index,
) -> None:
    """Tables are named after their block: a scope deleted and re-created elsewhere is another
    table, whatever its version numbers, and the deleted one answers nothing (not an error)."""
    here = await open_index(chunk_tokens=16)
    elsewhere = await open_index(chunk_tokens=16, recall_cache_mb=0)
    await here.add(
        USER,
        await here.prepare(lines(100) + ["the password is swordfish"]),
        first_line=1,
        written_at=T0_US,
    )
    await until_copied(here)
    old_version = await (await here.store.lance.table(NAME)).table.version()
    await elsewhere.delete_block("t1", "blk_user", scope=ScopeKey("user"))
    other = BlockRef("t1", "blk_user2", "user", None)
    for line in range(1, old_version + 2):  # past the old table's version number
        await elsewhere.add(
            other,
            await elsewhere.prepare([f"harmless note {line}"]),
            first_line=line,
            written_at=T0_US + line,
        )
    assert await (await elsewhere.store.scope_table("t1", other)).table.version() >= old_version
    # What services pass: the block SQL holds now, with its stamp.
    now = BlockRef("t1", "blk_user2", "user", None, updated_at=T0_US + old_version + 1)
    for _ in range(3):
        hits = await here.recall("t1", "password swordfish", scopes=[now], mode="vector", limit=5)
        assert hits and all(
            "swordfish" not in h.content and h.block_id == "blk_user2" for h in hits
        )
    # A handle of the dropped table that is told to look again finds it gone: nothing, no error.
    stale = BlockRef("t1", "blk_user", "user", None, updated_at=T0_US + 10**9)
    for mode in ("vector", "keyword", "hybrid"):
        assert (
            await here.recall("t1", "password swordfish", scopes=[stale], mode=mode, limit=5) == []
        )


async def test_a_table_over_the_budget_is_left_to_lancedb(open_index) -> None:
    index = await open_index(chunk_tokens=16, recall_cache_mb=1)
    await index.add(USER, await index.prepare(lines(3000)), first_line=1, written_at=T0_US)
    rows = await (await index.store.lance.table(NAME)).table.count_rows()
    assert estimated_bytes(rows, index.embedder.dimension) > 2**20
    for _ in range(3):
        assert len(await recall(index, "apple river", mode="vector", limit=5)) == 5
        await asyncio.sleep(0.2)
    state = await index.store.lance.table(NAME)
    assert not await index.store.lance.vector_cache.current(NAME, state.table)
    assert index.store.lance.vector_cache.served == 0


async def test_copies_make_room_only_by_dropping_idle_ones(
    open_index, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two scopes that do not fit the budget together: the busy one keeps its copy (no rebuild
    # churn), the other one gets room once the first has been idle for IDLE_S.
    from agentmem_server.storage.lance import vector_cache

    monkeypatch.setattr(vector_cache, "IDLE_S", 0.5)
    # Sized in chunks: line units make other row counts.
    index = await open_index(chunk_tokens=16, recall_cache_mb=1, archival_units="chunks")
    cache = index.store.lance.vector_cache
    names = {}
    for agent in ("a", "b"):
        block = BlockRef("t1", f"blk_{agent}", "agent", agent)
        await index.add(
            block, await index.prepare(lines(900, seed=7)), first_line=1, written_at=T0_US
        )
        names[agent] = block_table_name("t1", ScopeKey("agent", agent), f"blk_{agent}")
        rows = await (await index.store.lance.table(names[agent])).table.count_rows()
        assert 2**19 < estimated_bytes(rows, index.embedder.dimension) < 2**20, (
            "one fits, two do not"
        )

    async def current(agent: str) -> bool:
        return await cache.current(
            names[agent], (await index.store.lance.table(names[agent])).table
        )

    async def recall_until(agent: str, want: bool, seconds: float = 5.0) -> None:
        for _ in range(int(seconds / 0.05)):
            await index.recall("t1", "apple", scopes=[ScopeKey("agent", agent)], mode="vector")
            if await current(agent) == want:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"copy of {agent} current: {not want}")

    await recall_until("a", True)
    await index.recall("t1", "apple", scopes=[ScopeKey("agent", "b")], mode="vector")
    await asyncio.sleep(0.2)
    assert await current("a") and not await current("b"), "a was used just now: b waits"
    await asyncio.sleep(0.6)  # a idle past IDLE_S, and b's wait is over
    await recall_until("b", True)
    assert not await current("a")
    assert cache.nbytes <= 2**20


async def test_the_table_version_is_read_once_per_change_and_never_kept_stale(
    open_index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recall compares the copy with the handle's version, which only a change through the
    handle moves: it is read once after each change, and a read that a change overtook is not
    remembered (the copy would answer as of before the write)."""
    index = await open_index(chunk_tokens=16)
    await index.add(USER, await index.prepare(lines(60)), first_line=1, written_at=T0_US)
    lance = index.store.lance
    state = await lance.table(NAME)
    real = state.table.version
    reads: list[int] = []
    gate = asyncio.Event()
    gate.set()

    async def version() -> int:
        found = await real()
        reads.append(found)
        await gate.wait()
        return found

    monkeypatch.setattr(state.table, "version", version)
    first = await lance.version(state)
    assert [await lance.version(state) for _ in range(3)] == [first] * 3
    assert len(reads) == 1, "read once while nothing changed"

    await lance.delete_rows(state, "start_line <= 5")
    gate.clear()
    overtaken = asyncio.ensure_future(lance.version(state))
    await asyncio.sleep(0.05)  # it has read the version after the delete, and not returned yet
    assert len(reads) == 2 and not overtaken.done()
    second = reads[-1]
    assert second > first
    await lance.delete_rows(state, "start_line <= 10")
    gate.set()
    assert await overtaken == second
    assert await lance.version(state) == await real() > second
    assert [await lance.version(state) for _ in range(3)] == [await real()] * 3
    assert len(reads) == 3


async def test_an_append_is_added_to_the_copy_as_it_is_written(open_index) -> None:
    """This process's own small append moves the copy with it: the next recall is answered from
    the copy, with the new row, and no catch-up runs."""
    index, cache, state = await copied(open_index, 200)
    before = await state.table.version()
    await index.add(
        USER,
        await index.prepare(["the zeppelin landed on the lighthouse"]),
        first_line=201,
        written_at=T0_US + 1,
    )
    assert await state.table.version() == before + 1
    assert cache.written_through == 1 and await cache.current(NAME, state.table)
    served = cache.served
    hits = await recall(index, "zeppelin lighthouse", mode="vector", limit=3)
    assert hits[0].line_number == 201 and "zeppelin" in hits[0].content
    assert cache.served == served + 1 and NAME not in cache._syncs, "from the copy, no catch-up"
    # The same hits and scores as LanceDB's exact search over the table.
    lance_hits = await index.store.lance.vector_search(
        state, index.embedder.embed(["zeppelin lighthouse"])[0], limit=3, where="true"
    )
    assert [h.score for h in hits] == pytest.approx(
        [1.0 - d for d in lance_hits.column("_distance").to_pylist()], abs=1e-5
    )


async def test_an_append_after_another_replicas_write_leaves_the_copy_to_catch_up(
    open_index,
) -> None:
    """A commit of another replica that this handle has not seen lies between the copy's version
    and this process's append: the copy must not claim the append's version without that row."""
    here = await open_index(chunk_tokens=16)
    elsewhere = await open_index(chunk_tokens=16, recall_cache_mb=0)
    await here.add(USER, await here.prepare(lines(100)), first_line=1, written_at=T0_US)
    await until_copied(here)
    cache = here.store.lance.vector_cache
    state = await here.store.lance.table(NAME)
    copied = cache._copies[NAME].version
    await elsewhere.add(
        USER,
        await elsewhere.prepare(["the walrus guards the vault"]),
        first_line=101,
        written_at=T0_US + 1,
    )
    assert await state.table.version() == copied, "this handle has not looked since"
    await here.add(
        USER,
        await here.prepare(["the zeppelin landed on the lighthouse"]),
        first_line=102,
        written_at=T0_US + 2,
    )
    assert await state.table.version() == copied + 2
    assert cache.written_through == 0 and cache._copies[NAME].version == copied
    assert not await cache.current(NAME, state.table)
    for _ in range(2):  # LanceDB answers, then the caught-up copy: both rows either way
        for query, line in (("walrus vault", 101), ("zeppelin lighthouse", 102)):
            assert (await recall(here, query, mode="vector", limit=1))[0].line_number == line
        await until_copied(here)
    assert NAME in cache._copies and cache._copies[NAME].version == copied + 2


async def test_an_hnsw_copy_takes_only_the_smallest_appends_on_the_event_loop(open_index) -> None:
    """Each row added to an HNSW copy is a graph insertion (~0.75 ms at 100k rows): an append of
    more than `WRITE_THROUGH_HNSW_ROWS` leaves the copy to the background catch-up instead of
    holding the event loop, and recall still finds its rows."""
    index = await open_index(ann_index_min_rows=300, chunk_tokens=16)
    await index.add(USER, await index.prepare(lines(900)), first_line=1, written_at=T0_US)
    await until_copied(index)
    cache = index.store.lance.vector_cache
    state = await index.store.lance.table(NAME)
    assert cache._copies[NAME].hnsw
    await index.add(
        USER, await index.prepare(["the zeppelin landed"]), first_line=901, written_at=T0_US + 1
    )
    assert cache.written_through == 1 and await cache.current(NAME, state.table)
    three = ["the walrus guards the vault", "a comet over the quarry", "the oboe in the attic"]
    version = cache._copies[NAME].version
    await index.add(USER, await index.prepare(three), first_line=902, written_at=T0_US + 2)
    assert cache.written_through == 1 and cache._copies[NAME].version == version
    for _ in range(2):  # LanceDB answers, then the caught-up copy: the new rows either way
        for text in three:
            hit = (await recall(index, text, mode="vector", limit=1))[0]
            assert hit.line_number >= 902 and text in hit.content
        await until_copied(index)


async def test_the_keyword_leg_takes_its_rows_from_the_copy_and_finds_the_same(
    open_index, monkeypatch
) -> None:
    """With a current copy, LanceDB's BM25 query reads only ids and scores; text, lines and
    vectors come from the copy. The answers are those of LanceDB reading the rows itself (a
    replica without copies for the keyword mode; the same index with `rows` refused for hybrid,
    whose vector leg, from the copy, may order equal cosines otherwise than LanceDB), and a row
    written since the copy is found through LanceDB as before."""
    here = await open_index(chunk_tokens=16)
    without = await open_index(chunk_tokens=16, recall_cache_mb=0)
    await here.add(USER, await here.prepare(lines(300)), first_line=1, written_at=T0_US)
    await until_copied(here)
    cache = here.store.lance.vector_cache
    served = cache.rows_served
    queries = ("apple river", "violin lantern harbor 17", "copper meadow", "planet 5", "nothing")

    def seen(hits):
        return [(h.line_number, h.end_line, h.content, round(h.score, 5)) for h in hits]

    answers = {}
    for query in queries:
        for limit in (1, 5, 20):
            got = await recall(here, query, mode="keyword", limit=limit)
            assert seen(got) == seen(await recall(without, query, mode="keyword", limit=limit))
            answers[query, limit] = seen(await recall(here, query, mode="hybrid", limit=limit))
    assert cache.rows_served == served + 2 * 3 * len(queries), "every keyword leg used the copy"
    with monkeypatch.context() as m:
        m.setattr(cache, "rows", lambda *args, **kwargs: None)
        for query, limit in answers:
            want = seen(await recall(here, query, mode="hybrid", limit=limit))
            assert answers[query, limit] == want, (query, limit)

    await here.add(
        USER, await here.prepare(["the zeppelin landed"]), first_line=301, written_at=T0_US + 1
    )
    hits = await recall(here, "zeppelin", mode="keyword", limit=1)
    assert hits[0].line_number == 301, "a row the copy lacks is read from LanceDB"


async def test_rows_of_a_copy_are_refused_for_an_id_it_lacks_or_a_row_it_masked(
    open_index,
) -> None:
    _, cache, state = await copied(open_index, 50)
    version = await state.table.version()
    ids = (await state.table.query().select(["chunk_id"]).to_arrow()).column("chunk_id")
    first, second = ids[0].as_py(), ids[1].as_py()
    rows = cache.rows(NAME, state.table, [second, first], version=version)
    assert rows is not None and rows.column("chunk_id").to_pylist() == [second, first]
    assert cache.rows(NAME, state.table, [first, "w-unknown-0"], version=version) is None
    assert cache.rows(NAME, state.table, [first], version=version + 1) is None
    cache._copies[NAME].alive[cache._copies[NAME].positions[first]] = False
    assert cache.rows(NAME, state.table, [first], version=version) is None
