"""Recall: isolation by tenant and scope, pre-filtering, time ranges, modes and scores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agentmem_server.errors import InvalidInput
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.storage.base import BlockRef, ScopeKey, from_micros
from agentmem_server.storage.lance.arrow import vectors_of

from support import T0_US


def ref(tenant: str, agent: str | None = None, block: str | None = None) -> BlockRef:
    scope = "agent" if agent else "user"
    return BlockRef(tenant, block or f"blk_{tenant}_{agent or 'user'}", scope, agent)


async def append(
    index: ArchivalIndex, block: BlockRef, lines: list[str], first_line: int = 1, at: int = T0_US
) -> None:
    await index.add(block, await index.prepare(lines), first_line=first_line, written_at=at)


async def test_recall_finds_the_line_and_reports_where_it_is(index: ArchivalIndex) -> None:
    lines = [f"note {i}: the weather was mild" for i in range(1, 40)]
    lines[24] = "note 25: Maria moved to Lisbon and works as a nurse"
    await append(index, ref("t1", "bot"), lines, first_line=101, at=T0_US + 5)
    for mode in ("vector", "keyword", "hybrid"):
        hits = await index.recall(
            "t1", "Maria Lisbon nurse", scopes=[ScopeKey("agent", "bot")], mode=mode, limit=3
        )
        top = hits[0]
        assert "Maria moved to Lisbon" in top.content, mode
        assert top.line_number <= 125 <= top.end_line
        assert top.content.split("\n")[125 - top.line_number] == lines[24]
        assert (top.scope, top.agent_id, top.block_type, top.block_id) == (
            "agent",
            "bot",
            "archival",
            "blk_t1_bot",
        )
        assert top.updated_at == from_micros(T0_US + 5)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_recall_never_returns_rows_of_another_tenant_or_scope(open_index, seed: int) -> None:
    rng = random.Random(seed)
    index = await open_index()
    tenants = ["acme", "globex", "initech"]
    agents = ["a1", "a2", "a.3"]
    words = ["apple", "river", "engine", "garden", "planet", "violin", "copper", "meadow"]
    for _ in range(18):
        tenant, agent = rng.choice(tenants), rng.choice(agents + [None])
        owner = f"{tenant}/{agent or 'user'}"
        lines = [f"{owner} {' '.join(rng.choices(words, k=6))}" for _ in range(rng.randint(1, 12))]
        await append(index, ref(tenant, agent), lines)
    for _ in range(30):
        tenant = rng.choice(tenants)
        agent = rng.choice(agents)
        scope = rng.choice(["user", "agent", "all"])
        scopes = {
            "user": [ScopeKey("user")],
            "agent": [ScopeKey("agent", agent)],
            "all": [ScopeKey("user"), ScopeKey("agent", agent)],
        }[scope]
        allowed = {f"{tenant}/{'user' if s.scope == 'user' else s.agent_id}" for s in scopes}
        mode = rng.choice(["vector", "keyword", "hybrid"])
        hits = await index.recall(
            tenant, " ".join(rng.choices(words, k=3)), scopes=scopes, mode=mode, limit=50
        )
        for hit in hits:
            owner = hit.content.split(" ", 1)[0]
            assert owner in allowed, (tenant, scope, agent, mode, hit)
            assert (hit.agent_id or "user") == owner.split("/")[1]


async def test_prefilter_fills_the_limit_even_when_matches_are_a_small_minority(open_index) -> None:
    # 600 chunks, an ANN index over them, and a time range that only 8 of them fall in: a
    # post-filter over the nearest neighbours would come back short.
    index = await open_index(ann_index_min_rows=300, chunk_tokens=16)
    words = ["apple", "river", "engine", "garden", "planet", "violin"]
    rng = random.Random(7)
    for batch in range(6):
        lines = [" ".join(rng.choices(words, k=5)) for _ in range(100)]
        await append(index, ref("t1"), lines, first_line=1 + 100 * batch, at=T0_US + batch)
    await append(
        index,
        ref("t1"),
        [f"late fact {i} apple river" for i in range(8)],
        first_line=601,
        at=T0_US + 100,
    )
    # Other scopes and tenants hold far more rows than the one searched.
    for tenant in ("t2", "t3"):
        await append(
            index, ref(tenant, "x"), [" ".join(rng.choices(words, k=5)) for _ in range(300)]
        )
    await index.maintain()
    reopened = await open_index(
        ann_index_min_rows=300, chunk_tokens=16
    )  # as a restarted server sees it
    for current in (index, reopened):
        state = await current.store.scope_table("t1", ScopeKey("user"))
        assert state is not None and state.ann_rows > 0, "the ANN index was built and is used"
        for mode in ("vector", "keyword", "hybrid"):
            hits = await current.recall(
                "t1",
                "apple river",
                scopes=[ScopeKey("user")],
                mode=mode,
                limit=5,
                updated_after=T0_US + 50,
            )
            assert len(hits) == 5, mode
            assert all(h.content.startswith("late fact") for h in hits)
        for limit in (20, 100):  # the API's largest limit; HNSW needs ef >= the hits it re-ranks
            hits = await current.recall(
                "t1", "apple river", scopes=[ScopeKey("user")], mode="vector", limit=limit
            )
            assert len(hits) == limit


async def test_vector_scores_through_the_ann_index_are_exact_cosines_of_the_true_nearest(
    open_index, capfd
) -> None:
    # The index ranks by 8-bit quantised vectors; recall must still return the exact top k
    # with scores equal to the cosine of the query and each chunk's stored vector.
    index = await open_index(ann_index_min_rows=300, chunk_tokens=16)
    words = [
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
    rng = random.Random(11)
    await append(
        index, ref("t1"), [" ".join(rng.choices(words, k=4)) + f" {i}" for i in range(600)]
    )
    await index.maintain()
    state = await index.store.scope_table("t1", ScopeKey("user"))
    assert state is not None and state.ann_rows > 0
    stored = await state.table.query().select(["start_line", "vector"]).to_arrow()
    vectors = vectors_of(stored.column("vector"), index.embedder.dimension)
    for query in ("apple river", "violin lantern harbor", "copper meadow engine 17"):
        q = index.embedder.embed([query])[0]
        exact = np.sort(vectors @ q)[::-1][:10]
        for limit in (3, 10):
            hits = await index.recall(
                "t1", query, scopes=[ScopeKey("user")], mode="vector", limit=limit
            )
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
            assert scores == pytest.approx(np.clip(exact[:limit], 0, 1).tolist(), abs=1e-5), (
                query,
                limit,
            )
    # LanceDB's Rust side warns on stderr, once per query, about a search whose columns lack
    # `_distance`: a server log line per recall.
    assert "Deprecation warning" not in capfd.readouterr().err


async def test_time_range_includes_after_and_excludes_before(index: ArchivalIndex) -> None:
    for i in range(4):
        await append(
            index,
            ref("t1"),
            [f"event {i} in the garden"],
            first_line=i + 1,
            at=T0_US + i * 1_000_000,
        )
    at = lambda i: from_micros(T0_US + i * 1_000_000)  # noqa: E731
    hits = await index.recall(
        "t1",
        "garden event",
        scopes=[ScopeKey("user")],
        limit=10,
        updated_after=at(1),
        updated_before=at(3),
    )
    assert sorted(h.line_number for h in hits) == [2, 3]
    assert all(at(1) <= h.updated_at < at(3) for h in hits)
    naive_free = datetime.fromtimestamp(0, tz=UTC) + timedelta(days=365 * 100)
    assert (
        await index.recall("t1", "garden", scopes=[ScopeKey("user")], updated_after=naive_free)
        == []
    )


async def test_scores_lie_in_0_1_and_min_score_filters_in_every_mode(index: ArchivalIndex) -> None:
    await append(
        index,
        ref("t1"),
        ["alpha beta gamma", "delta epsilon", "unrelated words here", "alpha again"],
    )
    for mode in ("vector", "keyword", "hybrid"):
        hits = await index.recall(
            "t1", "alpha gamma", scopes=[ScopeKey("user")], mode=mode, limit=10
        )
        assert hits and all(0.0 <= h.score <= 1.0 for h in hits), mode
        floor = max(h.score for h in hits)
        kept = await index.recall(
            "t1", "alpha gamma", scopes=[ScopeKey("user")], mode=mode, limit=10, min_score=floor
        )
        assert kept and all(h.score >= floor for h in kept)
    # The same chunk scores the same whichever mode found it.
    scores = {
        mode: {
            h.content: h.score
            for h in await index.recall(
                "t1", "alpha gamma", scopes=[ScopeKey("user")], mode=mode, limit=10
            )
        }
        for mode in ("vector", "keyword", "hybrid")
    }
    for content, score in scores["keyword"].items():
        assert scores["hybrid"].get(content, score) == pytest.approx(score)


async def test_keyword_mode_finds_rows_added_after_the_index_was_built(
    index: ArchivalIndex,
) -> None:
    await append(index, ref("t1"), [f"ordinary line {i}" for i in range(20)])
    await index.maintain()  # the FTS index now covers those rows
    await append(
        index, ref("t1"), ["the zanzibar protocol was signed"], first_line=21, at=T0_US + 1
    )
    hits = await index.recall("t1", "zanzibar", scopes=[ScopeKey("user")], mode="keyword", limit=3)
    assert [h.line_number for h in hits] == [21], "unindexed rows are searched too"
    await index.maintain()
    hits = await index.recall("t1", "zanzibar", scopes=[ScopeKey("user")], mode="keyword", limit=3)
    assert [h.line_number for h in hits] == [21]


async def test_recall_of_a_scope_without_memory_is_empty(index: ArchivalIndex) -> None:
    assert (
        await index.recall("nobody", "anything", scopes=[ScopeKey("user"), ScopeKey("agent", "a")])
        == []
    )
    await append(index, ref("t1"), ["something"])
    assert await index.recall("t1", "   ", scopes=[ScopeKey("user")]) == []
    assert await index.recall("t1", "?!", scopes=[ScopeKey("user")], mode="keyword") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"mode": "fuzzy"}, "mode"), ({"limit": 0}, "limit"), ({"min_score": 1.5}, "min_score")],
)
async def test_bad_recall_arguments_are_named(index: ArchivalIndex, kwargs, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        await index.recall("t1", "q", scopes=[ScopeKey("user")], **kwargs)
    assert err.value.field == field


@pytest.mark.slow
async def test_minilm_finds_a_paraphrased_fact(open_index, minilm) -> None:
    index = await open_index(
        embedder=minilm, embedding_model=minilm.model_id, chunk_tokens=32, chunk_overlap_lines=0
    )
    facts = [
        "Maria's sister moved to Lisbon last spring and now works there as a nurse.",
        "The quarterly budget review is scheduled for the second Tuesday of March.",
        "Tom prefers his coffee black, without any sugar.",
        "The office wifi password was changed after the security audit.",
        "Our dog Biscuit is allergic to chicken-based food.",
        "The team offsite will take place in a mountain cabin near Zermatt.",
        "Grandma's apple pie recipe calls for cinnamon and a pinch of nutmeg.",
        "The car needs new winter tyres before November.",
    ]
    await append(index, ref("t1", "bot"), facts)
    questions = {
        "Which city does Maria's sibling live in now?": 1,
        "What can't the pet eat?": 5,
        "How does Tom take his coffee?": 3,
        "Where is the company retreat happening?": 6,
    }
    for question, line in questions.items():
        for mode in ("vector", "hybrid"):
            hits = await index.recall(
                "t1", question, scopes=[ScopeKey("agent", "bot")], mode=mode, limit=3
            )
            assert any(h.line_number <= line <= h.end_line for h in hits[:2]), (
                question,
                mode,
                hits,
            )
            assert 0.0 <= hits[0].score <= 1.0


async def test_hybrid_results_spread_over_the_block_instead_of_repeating_lines(
    open_index, monkeypatch
) -> None:
    from agentmem_server.services import recall

    index = await open_index(chunk_tokens=16, chunk_overlap_lines=1)
    lines = [f"filler line {i} about the weather" for i in range(1, 61)]
    for n in (10, 11, 12, 13):
        lines[n - 1] = "harbor lantern violin copper"
    lines[39] = "harbor lantern violin"
    await append(index, ref("t1"), lines)

    async def spans(limit: int) -> list[tuple[int, int]]:
        hits = await index.recall(
            "t1",
            "harbor lantern violin copper",
            scopes=[ScopeKey("user")],
            mode="hybrid",
            limit=limit,
        )
        return [(h.line_number, h.end_line) for h in hits]

    spread_out = await spans(3)
    assert not any(
        a <= d and c <= b for i, (a, b) in enumerate(spread_out) for c, d in spread_out[i + 1 :]
    ), spread_out
    assert any(a <= 40 <= b for a, b in spread_out), "the distinct match further down is returned"
    # The same store without spreading: neighbours sharing lines crowd the distinct match out.
    monkeypatch.setattr(recall, "SPREAD_HYBRID", False)
    crowded = await spans(3)
    assert not any(a <= 40 <= b for a, b in crowded), crowded
