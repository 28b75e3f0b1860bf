"""Client-side fusion and query rewriting used to study retrieval choices."""

from __future__ import annotations

from evals.tuning import fusion_variants, keywords_only, rrf


def test_rrf_sums_weighted_reciprocal_ranks():
    a, b, c = (1, 2), (3, 4), (5, 6)
    # a: 1/61 + 1/62; b: 1/62; c: 1/61 -> a, c, b
    assert rrf([[a, b], [c, a]], [1, 1], 60) == [a, c, b]
    # Weighting the first list 3x lets its second item beat the other list's first.
    assert rrf([[a, b], [c]], [3, 1], 60) == [a, b, c]


def test_rrf_ties_keep_first_seen_order():
    a, b = (1, 1), (2, 2)
    assert rrf([[a], [b]], [1, 1], 60) == [a, b]


def test_equal_weight_rrf60_is_one_of_the_variants():
    v, k = [(1, 1), (2, 2)], [(2, 2), (3, 3)]
    variants = fusion_variants(v, k, server_hybrid=[(2, 2)])
    assert variants["rrf60"][0] == (2, 2)
    assert (
        variants["vector"] == v
        and variants["keyword"] == k
        and variants["server_hybrid"] == [(2, 2)]
    )


def test_keywords_only_drops_question_and_stop_words():
    assert keywords_only("What is the name of Maya's landlord?") == "Maya's landlord"
    assert keywords_only("Who is it?") == "Who is it?"  # nothing left: keep the question
