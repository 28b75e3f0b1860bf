"""Ranking metrics on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from evals.metrics import (
    aggregate,
    hit_at_k,
    ndcg_at_k,
    new_hits,
    percentile,
    question_metrics,
    recall_at_k,
    recall_within_tokens,
    reciprocal_rank,
)

L2 = 1 / math.log2(3)  # discount at rank 2
L3 = 1 / math.log2(4)  # discount at rank 3 (= 0.5)


def test_a_chunk_counts_for_every_evidence_line_it_covers():
    assert new_hits([(1, 5)], {2, 4, 9}) == [2]


def test_a_line_covered_twice_counts_once():
    # Overlapping chunks (the server repeats a line across chunk boundaries) must not inflate
    # scores.
    assert new_hits([(1, 5), (5, 9), (3, 4)], {5, 9}) == [1, 1, 0]
    assert recall_at_k([(1, 5), (5, 9)], {5}, 2) == 1.0


def test_recall_at_k_is_the_share_of_evidence_lines_covered():
    ranked = [(10, 14), (20, 24), (40, 44)]
    evidence = {12, 41}
    assert recall_at_k(ranked, evidence, 1) == 0.5
    assert recall_at_k(ranked, evidence, 2) == 0.5
    assert recall_at_k(ranked, evidence, 3) == 1.0
    assert recall_at_k(ranked, evidence, 10) == 1.0


def test_hit_at_k_needs_any_evidence_line():
    ranked = [(1, 2), (7, 8)]
    assert hit_at_k(ranked, {8, 30}, 1) == 0.0
    assert hit_at_k(ranked, {8, 30}, 2) == 1.0
    assert hit_at_k([], {1}, 5) == 0.0


def test_reciprocal_rank_of_first_covering_chunk():
    assert reciprocal_rank([(1, 2), (3, 4), (5, 6)], {5}) == pytest.approx(1 / 3)
    assert reciprocal_rank([(1, 2)], {9}) == 0.0
    assert reciprocal_rank([(1, 9)], {9}) == 1.0


def test_ndcg_single_evidence_line_is_the_usual_discount():
    assert ndcg_at_k([(1, 1), (5, 6)], {6}, 5) == pytest.approx(L2)
    assert ndcg_at_k([(1, 1), (5, 6)], {6}, 1) == 0.0


def test_ndcg_two_evidence_lines_in_separate_chunks():
    # Evidence at ranks 1 and 3; ideal puts them at ranks 1 and 2.
    ranked = [(1, 3), (10, 12), (20, 22)]
    expected = (1 + L3) / (1 + L2)
    assert ndcg_at_k(ranked, {2, 21}, 3) == pytest.approx(expected)
    # At k=1 the ideal only has room for one line, and rank 1 delivers it.
    assert ndcg_at_k(ranked, {2, 21}, 1) == 1.0


def test_ndcg_is_capped_when_one_chunk_covers_all_evidence():
    assert ndcg_at_k([(1, 10)], {2, 3, 4}, 5) == 1.0
    # Both lines found together at rank 2: DCG = 2*L2 against the ideal 1 + L2.
    assert ndcg_at_k([(50, 60), (1, 10)], {2, 3}, 5) == pytest.approx(2 * L2 / (1 + L2))


def test_question_metrics_keys():
    m = question_metrics([(1, 2)], {2})
    assert set(m) == {
        f"{name}@{k}" for name in ("recall", "hit", "ndcg") for k in (1, 3, 5, 10, 20)
    } | {"mrr"}
    assert all(v == 1.0 for v in m.values())


def test_empty_evidence_is_an_error_not_a_zero():
    with pytest.raises(ValueError):
        recall_at_k([(1, 2)], set(), 5)


def test_percentile_interpolates_like_numpy():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([7.0], 95) == 7.0
    np = pytest.importorskip("numpy")
    data = [3.1, 9.4, 0.2, 5.5, 8.8, 1.0, 2.2]
    for q in (5, 50, 95):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))


def test_aggregate_means_and_latency():
    out = aggregate([{"recall@5": 1.0}, {"recall@5": 0.0}, {"recall@5": 0.5}], [10.0, 30.0, 20.0])
    assert out["recall@5"] == 0.5
    assert out["n"] == 3
    assert out["latency_p50_ms"] == 20.0


def test_token_counter_uses_cl100k():
    from evals.metrics import TokenCounter

    count = TokenCounter()
    assert count("hello world") == 2
    assert count("") == 0


def test_recall_within_a_token_budget_counts_only_chunks_that_fit():
    ranked = [(1, 4), (10, 14), (20, 24)]
    evidence = {2, 12, 22}
    assert recall_within_tokens(ranked, evidence, [200, 300, 100], 512) == pytest.approx(2 / 3)
    assert recall_within_tokens(ranked, evidence, [200, 300, 100], 600) == 1.0
    # The prefix stops at the first chunk that overflows, even if a later one would fit.
    assert recall_within_tokens(ranked, evidence, [600, 10, 10], 512) == 0.0
    assert question_metrics(ranked, evidence, token_counts=[200, 300, 100])[
        "recall@512tok"
    ] == pytest.approx(2 / 3)
