"""The recall ranking policy: pure functions from the legs' hits to the chunks a recall returns.

    depth = candidate_depth(limit)
    by_vector = vector_candidates(vector_legs)              # one VectorHits per scope
    by_text = text_candidates(text_legs, query_vector)      # one TextHits per scope
    chosen = rank(by_vector, by_text, mode="hybrid", limit=5, min_score=0.25, depth=depth)

Score: the cosine similarity of the query and the chunk, clamped to [0, 1], in every mode. The
mode only decides which candidates there are and in what order they come back (`ORDERS`);
`min_score` filters on that one score. docs/recall.md explains the choice and the fusion.

To try another order, write a function `(by_vector, by_text) -> ordered candidates` and put it in
`ORDERS` (or pass it to `rank` as `order=`); what comes after (score floor, limit) stays the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np

from ..dates import find_date

if TYPE_CHECKING:
    from ..storage.base import ChunkHit, TextHits, VectorHits

RecallMode = Literal["hybrid", "vector", "keyword"]

CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 20
"""depth = max(4 x limit, 20): the keyword leg of a hybrid recall returns that many candidates,
enough for fusion to matter (the vector leg needs only `limit`: see `vector_leg_limit`)."""
HYBRID_VECTOR_WEIGHT = 0.9
"""Hybrid order: 0.9 x cosine + 0.1 x BM25 / the query's best BM25, over both legs' candidates.

Measured on our eval set (evals/bench_archival.py --parts fusion, 336 questions): R@5 0.780 vs
0.751 for vector alone, 0.589 for keyword alone and 0.689 for equal-weight RRF (k=60), which
let weak keyword hits push out good vector hits on paraphrased questions."""
HYBRID_UNIT_VECTOR_WEIGHT = 0.93
"""The hybrid weight when every searched index holds line units, whose BM25 reads a key with
resolved dates: docs/recall.md, "Line units"."""
DATED_QUERY_VECTOR_WEIGHT: Optional[float] = 0.8
"""Hybrid over line units weighs cosine this much for a query that names a calendar date ("what
did Ana do on 6 May 2023?"): the keys' resolved dates are matched by BM25 only. On our long set
temporal R@5 0.759 -> 0.815 (overall 0.693 -> 0.704), the short set unchanged (its questions
name no dates); 0.7 scored within 0.002 of it. None: off."""
SCAFFOLD_PENALTY = 0.2
"""Hybrid orders a line unit by its cosine minus this share of its cosine to its own `[date]
Speaker:` scaffold (`ChunkHit.scaffold`; 0 for chunks): a unit whose line says little beyond
who spoke when sits near every question naming that person. Measured offline over the server's
tables (`evals/unit_replay.py`): long set R@5 0.704 -> 0.738 (temporal 0.815 -> 0.880,
multi-hop 0.449 -> 0.457), short set 0.769 -> 0.787; 0.1 and 0.3 scored less on the long set.
The score (and `min_score`) stays the plain cosine."""
SPREAD_HYBRID = True
"""Hybrid results are spread over the block (`spread`): on our long-conversation set hybrid R@5
0.640 -> 0.658 (multi-hop 0.367 -> 0.395, temporal 0.732 -> 0.750), the short set 0.786 ->
0.784 (docs/recall.md, "Spreading")."""

VECTOR_DEPTH = 2
"""The vector leg reads `VECTOR_DEPTH x limit` rows (`vector_leg_limit`): 2 since `DIVERSITY`,
which can pass over a near hit for one further down (replayed on the long set: with the
diversity below, 1 -> 2 rows per result took multi-hop 0.465 -> 0.502)."""
DIVERSITY = 0.3
"""Hybrid picks its results one at a time by fused value minus this much of the candidate's
highest cosine to a result already picked (maximal marginal relevance, `diverse`): a question
whose evidence is several different turns (multi-hop: "which cities has Elena been to") gets
them, rather than one turn's near-copies. Replayed over the server's tables
(`evals/unit_replay.py`, with the vector leg at 2 x limit): long set multi-hop 0.468 -> 0.502,
overall 0.740 -> 0.739, single-hop 0.816 -> 0.802; short set 0.790 -> 0.795; 0.1 / 0.25 / 0.4 /
0.5 gave multi-hop 0.475 / 0.491 / 0.491 / 0.468. 0: off (`spread` alone)."""
SPREAD_PER_WRITE: Optional[int] = None
"""With a number n, hybrid results beyond the n-th of one write (one append: a session of a
chat) wait behind the rest too, like spans sharing a line. None: off."""

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A chunk one of the legs found, in the scope `scope` (its index among the recall's scopes)."""

    scope: int
    hit: ChunkHit
    cosine: float
    """Query-chunk cosine similarity: what the result's score is made of."""
    bm25: Optional[float] = None
    """The keyword leg's BM25 score; None when only the vector leg found it."""
    vector: Optional[np.ndarray] = field(default=None, compare=False)
    """The chunk's stored vector (unit length) when its leg read it."""
    fused: Optional[float] = None
    """Its value in the hybrid order (`order_hybrid`); None in other orders."""

    @property
    def key(self) -> tuple[int, str]:
        return self.scope, self.hit.chunk_id

    @property
    def score(self) -> float:
        """The result's score: the cosine clamped to [0, 1]."""
        return min(1.0, max(0.0, self.cosine))


Order = Callable[[list[Candidate], list[Candidate]], list[Candidate]]
"""`(by_vector, by_text) -> candidates in result order`; each leg comes best first, cut to depth."""


def candidate_depth(limit: int) -> int:
    return max(limit * CANDIDATES_PER_RESULT, MIN_CANDIDATES)


def keyword_query(query: str) -> str:
    """The query as the keyword leg searches it: its words, without punctuation (which the
    full-text query parser would read as syntax)."""
    return " ".join(_WORD.findall(query))


def text_leg_limit(mode: RecallMode, limit: int) -> int:
    """The keyword order needs only `limit` hits; the hybrid order may pick any of depth."""
    return limit if mode == "keyword" else candidate_depth(limit)


def vector_leg_limit(limit: int) -> int:
    """Mostly only the `limit` nearest can win: a vector-only hit scores 0.9 x cosine in hybrid,
    at most what each of the `limit` nearer ones scores, and hits of both legs come with the
    keyword leg. Reading 5 rows instead of 20 saved ~2.5 ms at 100k. Spreading can defer one of
    them, and the scaffold penalty can sink one, so a vector-only hit below them could then take
    its place: reading 2 x limit moved R@5 by 0.001 in an offline replica, and by +0.002 (long
    set) with the penalty (`evals/unit_replay.py`). `VECTOR_DEPTH` multiplies it (a study
    switch)."""
    return limit * VECTOR_DEPTH


def vector_candidates(legs: Sequence[VectorHits]) -> list[Candidate]:
    """The vector legs' hits (leg i searched scope i), in leg order."""
    return [
        Candidate(scope, hit, cosine, vector=None if leg.vectors is None else leg.vectors[k])
        for scope, leg in enumerate(legs)
        for k, (hit, cosine) in enumerate(zip(leg.hits, leg.cosines, strict=True))
    ]


def text_candidates(legs: Sequence[TextHits], query_vector: np.ndarray) -> list[Candidate]:
    """The keyword legs' hits (leg i searched scope i), scored by cosine with the query."""
    found: list[Candidate] = []
    for scope, leg in enumerate(legs):
        if not leg.hits:
            continue
        cosines = (leg.vectors @ query_vector).tolist()
        found.extend(
            Candidate(scope, hit, cosine, bm25, vector=leg.vectors[k])
            for k, (hit, bm25, cosine) in enumerate(zip(leg.hits, leg.bm25, cosines, strict=True))
        )
    return found


def order_by_vector(by_vector: list[Candidate], by_text: list[Candidate]) -> list[Candidate]:
    return by_vector


def order_by_keyword(by_vector: list[Candidate], by_text: list[Candidate]) -> list[Candidate]:
    return by_text


def order_hybrid(
    by_vector: list[Candidate], by_text: list[Candidate], *, weight: float = HYBRID_VECTOR_WEIGHT
) -> list[Candidate]:
    """Both legs' candidates by `weight` x cosine + (1 - weight) x BM25 / the best BM25, the
    cosine lowered by `SCAFFOLD_PENALTY` x the candidate's scaffold cosine.

    A chunk both legs found counts once, with the vector leg's cosine and the keyword leg's BM25.
    """
    best = max((c.bm25 or 0.0 for c in by_text), default=0.0) or 1.0
    merged = {c.key: c for c in by_vector}
    for c in by_text:
        seen = merged.get(c.key)
        merged[c.key] = (
            c if seen is None else replace(seen, bm25=c.bm25, vector=_either(seen.vector, c.vector))
        )

    def fused(c: Candidate) -> Candidate:
        cosine = c.cosine - SCAFFOLD_PENALTY * c.hit.scaffold
        return replace(c, fused=weight * cosine + (1 - weight) * ((c.bm25 or 0.0) / best))

    return sorted((fused(c) for c in merged.values()), key=lambda c: -(c.fused or 0.0))


def _either(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return a if a is not None else b


ORDERS: dict[str, Order] = {
    "vector": order_by_vector,
    "keyword": order_by_keyword,
    "hybrid": order_hybrid,
}


def order_for(mode: RecallMode, *, units: bool, query: str = "") -> Order:
    """The mode's order; hybrid over indexes of line units only weighs BM25 less."""
    if mode == "hybrid" and units and ORDERS["hybrid"] is order_hybrid:
        weight = HYBRID_UNIT_VECTOR_WEIGHT
        if DATED_QUERY_VECTOR_WEIGHT is not None and find_date(query) is not None:
            weight = DATED_QUERY_VECTOR_WEIGHT
        return lambda by_vector, by_text: order_hybrid(by_vector, by_text, weight=weight)
    return ORDERS[mode]


def choose(ordered: Sequence[Candidate], *, limit: int, min_score: float) -> list[Candidate]:
    """The first `limit` candidates scoring at least `min_score`."""
    chosen = []
    for c in ordered:
        if c.score >= min_score:
            chosen.append(c)
            if len(chosen) == limit:
                break
    return chosen


Span = tuple[int, int, int]
"""`(scope, first line, last line)` of a candidate."""


def share_a_line(a: Span, b: Span) -> bool:
    """Two spans of one scope that hold a common line."""
    return a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]


def spread(
    spans: Sequence[Span],
    limit: int,
    groups: Optional[Sequence[object]] = None,
    per_group: Optional[int] = None,
) -> list[int]:
    """Indexes into `spans` (`(scope, first line, last line)`, in rank order) of the `limit` to
    return, in order: a span sharing a line with a chosen one of its scope waits behind the rest.

    Consecutive chunks share `chunk_overlap_lines` lines, and the neighbours of one strong match
    often rank right behind it, so a plain top `limit` can spend several places on one stretch of
    text, while a question about several moments (one per session of a chat) needs evidence from
    different places. Deferred spans are not dropped: they fill the list when nothing else is left.

        spread([(0, 1, 5), (0, 5, 9), (0, 40, 44)], limit=2) == [0, 2]
    """
    chosen: list[int] = []
    deferred: list[int] = []
    in_group: dict[object, int] = {}
    for i, span in enumerate(spans):
        if any(share_a_line(span, spans[j]) for j in chosen):
            deferred.append(i)
            continue
        if groups is not None and per_group is not None:
            if in_group.get(groups[i], 0) >= per_group:
                deferred.append(i)
                continue
            in_group[groups[i]] = in_group.get(groups[i], 0) + 1
        chosen.append(i)
        if len(chosen) == limit:
            return chosen
    return chosen + deferred[: limit - len(chosen)]


def diverse(ordered: Sequence[Candidate], limit: int, weight: float) -> list[int]:
    """Indexes into `ordered` (hybrid candidates with `fused` and `vector`, best first) of the
    `limit` to return: each next one has the highest `fused - weight x` its highest cosine to
    those already picked. A candidate sharing a line with a picked one of its scope waits behind
    the rest, as in `spread`."""
    if not ordered:
        return []
    vectors = np.stack([c.vector for c in ordered if c.vector is not None])
    if len(vectors) != len(ordered):
        raise ValueError("diverse() needs every candidate's vector")
    similarity = (vectors @ vectors.T).tolist()  # one product for the pool (~30 x 384)
    fused = [c.fused or 0.0 for c in ordered]
    spans = [(c.scope, c.hit.start_line, c.hit.end_line) for c in ordered]
    chosen: list[int] = []
    deferred: list[int] = []
    nearest: list[Optional[float]] = [None] * len(ordered)
    rest = list(range(len(ordered)))
    while rest and len(chosen) < limit:
        best = max(rest, key=lambda i: fused[i] - weight * (nearest[i] or 0.0))
        rest.remove(best)
        if any(share_a_line(spans[best], spans[j]) for j in chosen):
            deferred.append(best)
            continue
        chosen.append(best)
        for i in rest:
            seen, now = nearest[i], similarity[i][best]
            nearest[i] = now if seen is None else max(seen, now)
    return chosen + sorted(deferred)[: limit - len(chosen)]


def distinct(ordered: Sequence[Candidate]) -> list[Candidate]:
    """`ordered` without a candidate that repeats an earlier one's text at the same lines of the
    same scope. Line units show a line with its neighbours, so two units can return the same
    lines: in a two-line append both show lines 1-2. A caller should never get one text twice."""
    seen: set[tuple[int, int, int, str]] = set()
    kept = []
    for c in ordered:
        shown = (c.scope, c.hit.start_line, c.hit.end_line, c.hit.text)
        if shown not in seen:
            seen.add(shown)
            kept.append(c)
    return kept


def rank(
    by_vector: Sequence[Candidate],
    by_text: Sequence[Candidate],
    *,
    mode: RecallMode,
    limit: int,
    min_score: float,
    depth: int,
    order: Optional[Order] = None,
) -> list[Candidate]:
    """The candidates to return, in order: each leg's best `depth`, ordered by the mode."""
    vector_best = sorted(by_vector, key=lambda c: -c.cosine)[:depth]
    text_best = sorted(by_text, key=lambda c: -(c.bm25 or 0.0))[:depth]
    ordered = distinct((order or ORDERS[mode])(vector_best, text_best))
    if mode != "hybrid" or not SPREAD_HYBRID:
        return choose(ordered, limit=limit, min_score=min_score)  # each leg's own order
    passing = [c for c in ordered if c.score >= min_score]
    if (
        DIVERSITY
        and SPREAD_PER_WRITE is None
        and all(c.vector is not None and c.fused is not None for c in passing)
    ):
        pool = passing[:depth]
        picked = diverse(pool, limit, DIVERSITY)
        return [pool[i] for i in picked] + passing[depth : depth + limit - len(picked)]
    picked = spread(
        [(c.scope, c.hit.start_line, c.hit.end_line) for c in passing],
        limit,
        groups=[(c.scope, c.hit.written_at) for c in passing],
        per_group=SPREAD_PER_WRITE,
    )
    return [passing[i] for i in picked]
