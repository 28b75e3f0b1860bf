"""The recall ranking policy as pure functions: candidates in, ordered results out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agentmem_server.services import recall
from agentmem_server.services.recall import Candidate, rank
from agentmem_server.storage.base import ChunkHit, TextHits, VectorHits


def hit(chunk_id: str, line: int = 1) -> ChunkHit:
    return ChunkHit(chunk_id, line, line, f"text of {chunk_id}", 0)


def vec(*pairs: tuple[str, float], scope: int = 0) -> list[Candidate]:
    return [Candidate(scope, hit(c), cosine) for c, cosine in pairs]


def kw(*triples: tuple[str, float, float], scope: int = 0) -> list[Candidate]:
    return [Candidate(scope, hit(c), cosine, bm25) for c, cosine, bm25 in triples]


def ids(chosen: list[Candidate]) -> list[str]:
    return [c.hit.chunk_id for c in chosen]


def test_hybrid_fuses_cosine_with_bm25_relative_to_the_best_keyword_hit():
    by_vector = vec(("a", 0.80), ("b", 0.78))
    # c: keyword only; b: both legs (its cosine comes from the vector leg, its BM25 from keywords)
    by_text = kw(("c", 0.70, 10.0), ("b", 0.10, 5.0))
    chosen = rank(by_vector, by_text, mode="hybrid", limit=3, min_score=0.0, depth=20)
    # a: 0.9*0.80 = 0.72; b: 0.9*0.78 + 0.1*0.5 = 0.752; c: 0.9*0.70 + 0.1*1.0 = 0.73
    assert ids(chosen) == ["b", "c", "a"]
    b = chosen[0]
    assert (b.cosine, b.bm25, b.score) == (0.78, 5.0, 0.78), "one candidate per chunk, both scores"


def test_vector_and_keyword_modes_keep_their_legs_order_and_score_by_cosine():
    by_vector = vec(("a", 0.5), ("b", 0.9))
    by_text = kw(("c", 0.2, 1.0), ("d", 0.6, 7.0))
    assert ids(rank(by_vector, [], mode="vector", limit=5, min_score=0, depth=20)) == ["b", "a"]
    keyword = rank([], by_text, mode="keyword", limit=5, min_score=0, depth=20)
    assert ids(keyword) == ["d", "c"] and [c.score for c in keyword] == [0.6, 0.2]


def test_min_score_filters_on_the_clamped_cosine_and_limit_stops_early():
    by_vector = vec(("a", 1.2), ("b", 0.4), ("c", 0.3), ("d", -0.1), ("e", 0.35))
    chosen = rank(by_vector, [], mode="vector", limit=2, min_score=0.33, depth=20)
    assert ids(chosen) == ["a", "b"] and chosen[0].score == 1.0
    everything = rank(by_vector, [], mode="vector", limit=10, min_score=0.0, depth=20)
    assert [c.score for c in everything][-1] == 0.0, "a negative cosine scores 0"


def test_each_leg_is_cut_to_depth_before_the_order_is_decided():
    by_text = kw(*[(f"k{i}", 0.5, float(100 - i)) for i in range(30)])
    # The keyword hit ranked 25th never reaches the fusion, however close it is to the query.
    by_text[24] = Candidate(0, hit("close"), 0.99, 76.0)
    chosen = rank([], by_text, mode="hybrid", limit=30, min_score=0.0, depth=20)
    assert len(chosen) == 20 and "close" not in ids(chosen)


def test_ties_keep_the_vector_leg_first_then_the_keyword_legs_order():
    by_vector = vec(("v", 0.5))
    by_text = kw(("t", 0.5, 0.0))
    assert ids(rank(by_vector, by_text, mode="hybrid", limit=2, min_score=0, depth=20)) == [
        "v",
        "t",
    ]


def test_the_same_chunk_id_in_two_scopes_is_two_candidates():
    by_vector = vec(("same", 0.9), scope=0) + vec(("same", 0.8), scope=1)
    chosen = rank(by_vector, [], mode="hybrid", limit=5, min_score=0, depth=20)
    assert [c.key for c in chosen] == [(0, "same"), (1, "same")]


def test_candidates_come_from_each_scopes_leg_and_keyword_hits_are_scored_against_the_query():
    query = np.array([1.0, 0.0], dtype=np.float32)
    vector_legs = [VectorHits([hit("a")], [0.7]), VectorHits([hit("b")], [0.6])]
    text_legs = [
        TextHits([], [], np.zeros((0, 2), dtype=np.float32)),
        TextHits([hit("c"), hit("d")], [3.0, 2.0], np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)),
    ]
    by_vector = recall.vector_candidates(vector_legs)
    by_text = recall.text_candidates(text_legs, query)
    assert [(c.scope, c.hit.chunk_id, c.cosine) for c in by_vector] == [
        (0, "a", 0.7),
        (1, "b", 0.6),
    ]
    assert [(c.scope, c.hit.chunk_id, c.bm25) for c in by_text] == [(1, "c", 3.0), (1, "d", 2.0)]
    assert [c.cosine for c in by_text] == pytest.approx([0.6, 0.0])


def test_another_order_plugs_in_and_keeps_the_score_floor_and_limit():
    def newest_line_first(by_vector: list[Candidate], by_text: list[Candidate]) -> list[Candidate]:
        return sorted(by_vector + by_text, key=lambda c: -c.hit.start_line)

    by_vector = [Candidate(0, hit("old", line=1), 0.9), Candidate(0, hit("low", line=9), 0.1)]
    by_text = [Candidate(0, hit("new", line=5), 0.5, 1.0)]
    chosen = rank(
        by_vector, by_text, mode="hybrid", limit=5, min_score=0.2, depth=20, order=newest_line_first
    )
    assert ids(chosen) == ["new", "old"]


def test_query_words_and_depths():
    assert (
        recall.keyword_query("Where's Maria's flat? (in Lisbon!)")
        == "Where s Maria s flat in Lisbon"
    )
    assert recall.candidate_depth(1) == 20 and recall.candidate_depth(10) == 40
    assert recall.text_leg_limit("keyword", 5) == 5 and recall.text_leg_limit("hybrid", 5) == 20


# --- spreading (hybrid) -------------------------------------------------------------------------


def test_spread_defers_overlapping_neighbours_and_moves_distinct_regions_up():
    # (1,5) and (5,9) share line 5, as consecutive chunks with one line of overlap do.
    spans = [(0, 1, 5), (0, 5, 9), (0, 40, 44), (0, 80, 84)]
    assert recall.spread(spans, limit=3) == [0, 2, 3]


def test_spread_fills_with_deferred_spans_when_nothing_else_is_left():
    assert recall.spread([(0, 1, 5), (0, 5, 9), (0, 3, 4)], limit=3) == [0, 1, 2]
    assert recall.spread([(0, 1, 5), (0, 5, 9), (0, 3, 4)], limit=2) == [0, 1]
    assert recall.spread([], limit=5) == []


def test_spread_keeps_adjacent_spans_and_treats_scopes_apart():
    assert recall.spread([(0, 1, 4), (0, 5, 9)], limit=2) == [0, 1]
    assert recall.spread([(0, 1, 5), (1, 1, 5), (0, 2, 3)], limit=2) == [0, 1]


def test_hybrid_spreads_its_results_while_vector_mode_keeps_cosine_order(monkeypatch):
    def span(chunk_id: str, first: int, last: int, cosine: float) -> Candidate:
        return Candidate(0, ChunkHit(chunk_id, first, last, chunk_id, 0), cosine)

    # b shares line 5 with a (a chunk overlap); c is a distinct, slightly weaker match.
    by_vector = [span("a", 1, 5, 0.90), span("b", 5, 9, 0.88), span("c", 40, 44, 0.80)]
    assert ids(rank(by_vector, [], mode="hybrid", limit=2, min_score=0.0, depth=20)) == ["a", "c"]
    all_three = rank(by_vector, [], mode="hybrid", limit=3, min_score=0.0, depth=20)
    assert ids(all_three) == ["a", "c", "b"]
    assert ids(rank(by_vector, [], mode="vector", limit=2, min_score=0.0, depth=20)) == ["a", "b"]
    # min_score applies before spreading: a deferred candidate below it never fills the list.
    assert ids(rank(by_vector, [], mode="hybrid", limit=3, min_score=0.85, depth=20)) == ["a", "b"]
    monkeypatch.setattr(recall, "SPREAD_HYBRID", False)
    assert ids(rank(by_vector, [], mode="hybrid", limit=2, min_score=0.0, depth=20)) == ["a", "b"]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_two_units_showing_the_same_lines_come_back_once(mode):
    # A two-line append makes two line units, each shown with its neighbour: lines 1-2 twice.
    shown = "one\ntwo"
    first, second = ChunkHit("u1", 1, 2, shown, 0), ChunkHit("u2", 1, 2, shown, 0)
    other_scope = ChunkHit("u1", 1, 2, shown, 0)
    by_vector = [
        Candidate(0, first, 0.9),
        Candidate(0, second, 0.8),
        Candidate(1, other_scope, 0.7),
    ]
    by_text = [Candidate(c.scope, c.hit, c.cosine, 1.0) for c in by_vector]
    chosen = rank(by_vector, by_text, mode=mode, limit=5, min_score=0, depth=20)
    assert [c.key for c in chosen] == [(0, "u1"), (1, "u1")]


def test_the_same_lines_with_other_text_are_both_kept():
    # While an update's old rows are still searchable, lines 1-2 may hold two versions.
    by_vector = [
        Candidate(0, ChunkHit("new", 1, 2, "one\nTWO", 0), 0.9),
        Candidate(0, ChunkHit("old", 1, 2, "one\ntwo", 0), 0.8),
    ]
    chosen = rank(by_vector, [], mode="vector", limit=5, min_score=0, depth=20)
    assert ids(chosen) == ["new", "old"]


def test_hybrid_orders_a_unit_close_to_its_own_scaffold_behind_one_that_says_more():
    hub = Candidate(0, ChunkHit("hub", 1, 1, "Ana: any news?", 0, scaffold=0.9), 0.62)
    fact = Candidate(0, ChunkHit("fact", 9, 9, "Ana: I got the job", 0, scaffold=0.3), 0.55)
    # 0.62 - 0.2 x 0.9 = 0.44 < 0.55 - 0.2 x 0.3 = 0.49
    chosen = rank([hub, fact], [], mode="hybrid", limit=2, min_score=0.0, depth=20)
    assert ids(chosen) == ["fact", "hub"]
    assert [c.score for c in chosen] == [0.55, 0.62], "the score is still the plain cosine"
    vector = rank([hub, fact], [], mode="vector", limit=2, min_score=0.0, depth=20)
    assert ids(vector) == ["hub", "fact"], "vector mode keeps the nearest first"


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_hybrid_passes_over_a_near_copy_of_a_picked_result_for_another_turn():
    first = Candidate(0, hit("first", 1), 0.80, vector=unit(1, 0, 0))
    copy = Candidate(0, hit("copy", 10), 0.78, vector=unit(1, 0.05, 0))
    other = Candidate(0, hit("other", 20), 0.70, vector=unit(0, 1, 0))
    chosen = rank([first, copy, other], [], mode="hybrid", limit=2, min_score=0.0, depth=20)
    # copy: 0.9 x 0.78 - 0.3 x ~1.0 < other: 0.9 x 0.70 - 0.3 x 0.0
    assert ids(chosen) == ["first", "other"]
    assert ids(rank([first, copy, other], [], mode="hybrid", limit=3, min_score=0.0, depth=20)) == [
        "first",
        "other",
        "copy",
    ]


def test_diversity_still_defers_a_result_sharing_lines_with_a_picked_one():
    a = Candidate(0, ChunkHit("a", 1, 3, "a", 0), 0.9, vector=unit(1, 0, 0))
    b = Candidate(0, ChunkHit("b", 3, 5, "b", 0), 0.85, vector=unit(0, 1, 0))
    c = Candidate(0, ChunkHit("c", 9, 11, "c", 0), 0.5, vector=unit(0, 0, 1))
    chosen = rank([a, b, c], [], mode="hybrid", limit=3, min_score=0.0, depth=20)
    assert ids(chosen) == ["a", "c", "b"]


def test_without_vectors_hybrid_falls_back_to_spreading(monkeypatch):
    a, b = Candidate(0, hit("a", 1), 0.9), Candidate(0, hit("b", 5), 0.8)
    assert ids(rank([a, b], [], mode="hybrid", limit=2, min_score=0.0, depth=20)) == ["a", "b"]
    monkeypatch.setattr(recall, "DIVERSITY", 0.0)
    with_vectors = [replace(a, vector=unit(1, 0)), replace(b, vector=unit(1, 0))]
    assert ids(rank(with_vectors, [], mode="hybrid", limit=2, min_score=0.0, depth=20)) == [
        "a",
        "b",
    ]
