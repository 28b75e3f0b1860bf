"""Rank-time ideas for line units, tried offline over the server's own tables in seconds.

    python -m evals.unit_replay --data /tmp/replay --ingest      # once: both sets, ~5 minutes
    python -m evals.unit_replay --data /tmp/replay               # the variants below, ~15 s

`--ingest` writes both of our datasets through an in-process server and the public client
(`archival_units=lines`, one agent per conversation) into a data dir that is kept. Without it,
each conversation's unit table is read back with LanceDB (keys, ranges, the stored vectors) and
every question is replayed: its embedding (the server's embedder, query path), the vector leg
as exact cosine over the rows (what the server's flat search returns), the keyword leg from
LanceDB's own full-text search of the key, then `services.recall.rank` with the server's order.
The `base` variant reproduces `python -m evals.recall_study --keys lines --rank spread`: long
set R@5 0.704 with the same figures per type (short 0.769 overall; two ties order differently
in its types). Each variant changes one thing before `rank` (docs/recall.md, "Long
conversations: what was tried"):

    scaffold  a unit's cosine minus b x the cosine of its own vector and its key's scaffold (the
              key's `[date] Speaker:` prefixes, text dropped): a unit that says little beyond
              who spoke and when sits near every question naming that person (a hub)
    hub       minus b x the mean cosine of the unit to its 10 nearest units of the table (CSLS)
    vdepth    the vector leg reads 2 x limit rows, not limit
    second    a second round with the first new name found in the top results put before the
              question, taking the last place(s) of the top 5 (multi-hop: "Bea's neighbour" ->
              "neighbour Rohan" -> "Rohan has a spaniel")

Penalties change the order only; the score floor (0.25) stays on the true cosine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .dataset import Conversation, load_dataset
from .harness import _AGENT_SAFE, _ingest
from .metrics import TokenCounter, recall_at_k

SETS = ("long", "short")
LIMIT = 5
FTS_DEPTH = 60
HUB_NEIGHBOURS = 10
_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)?([^:\n]{1,40}):")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
_NOT_NAMES = frozenset(
    "I The A An My We He She They It This That What When Where Who Which How Why Yes No Oh Ha "
    "Haha Honestly Well So And But Also Just Last Yesterday Today Tonight Guess Big Goodbye Hey "
    "Hi Thanks Thank Sorry Wow Good Great Not Any Anyway Since Earlier Two Three Four Our Your "
    "His Her Their Ok Okay January February March April May June July August September October "
    "November December Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)


def agent_id(set_name: str, conv: Conversation) -> str:
    return f"{set_name}-" + _AGENT_SAFE.sub("_", conv.conversation_id)


def ingest(data: Path) -> None:
    from agentmem import Client
    from agentmem_server.embedded import serve_in_thread

    data.mkdir(parents=True, exist_ok=True)
    with serve_in_thread({"archival_units": "lines"}, data_dir=data, tenant="evals") as server:
        with Client(api_key=server.api_key, base_url=server.url, timeout=300) as client:
            for name in SETS:
                for conv in load_dataset(name):
                    started = time.monotonic()
                    _ingest(client, conv, agent_id(name, conv))
                    print(f"{name} {conv.conversation_id} {time.monotonic() - started:.1f}s")
        time.sleep(5)  # the last appends' index maintenance


def scaffold_of(key: str) -> str:
    """The key with each line's text dropped: `[8 May 2023] Ana:\\nBen:`."""
    parts = []
    for line in key.split("\n"):
        m = _PREFIX.match(line)
        parts.append(m.group(0) if m else "")
    return "\n".join(parts)


@dataclasses.dataclass
class Table:
    """One conversation's unit rows and its questions' legs."""

    conv: Conversation
    name: str
    ids: list[str]
    texts: list[str]
    start: np.ndarray
    end: np.ndarray
    written: np.ndarray
    vectors: np.ndarray
    scaffold: np.ndarray
    """Cosine of each row's vector and its key's scaffold."""
    hub: np.ndarray
    """Mean cosine of each row to its `HUB_NEIGHBOURS` nearest rows."""
    questions: list[dict[str, Any]]

    def __post_init__(self) -> None:
        self.row = {cid: i for i, cid in enumerate(self.ids)}


class Replay:
    def __init__(self, data: Path) -> None:
        import lancedb

        from agentmem_server.embedding.loader import load_embedder
        from agentmem_server.settings import Settings

        self.data = data
        self.db = lancedb.connect(str(data / "lance"))
        # list_tables() pages by 10; the folder names every table.
        self.names = [
            p[: -len(".lance")] for p in os.listdir(data / "lance") if p.endswith(".lance")
        ]
        self.embedder = load_embedder(Settings(data_dir=data / "embedder", admin_key="unused"))
        self._open: dict[str, Any] = {}

    def search_text(self, table: str, query: str) -> list[tuple[str, float]]:
        from agentmem_server.services.recall import keyword_query

        t = self._open.setdefault(table, self.db.open_table(table))
        found = (
            t.search(keyword_query(query), query_type="fts", fts_columns="key")
            .limit(FTS_DEPTH)
            .to_arrow()
        )
        return list(zip(found["chunk_id"].to_pylist(), found["_score"].to_pylist(), strict=True))

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query([text])[0], dtype=np.float32)

    def load(self, set_name: str) -> list[Table]:
        cache = self.data / f"replay-{set_name}.pkl"
        if cache.exists():
            return pickle.loads(cache.read_bytes())  # type: ignore[no-any-return]
        tables = []
        for conv in load_dataset(set_name):
            marker = f"_{agent_id(set_name, conv)}_blk_"
            (name,) = [n for n in self.names if marker in n]
            rows = self.db.open_table(name).to_arrow()
            keys = rows["key"].to_pylist()
            vectors = np.array(rows["vector"].to_pylist(), dtype=np.float32)
            scaffolds = [scaffold_of(k) for k in keys]
            distinct = sorted(set(scaffolds))
            embedded = np.asarray(self.embedder.embed(distinct), dtype=np.float32)
            at = {s: i for i, s in enumerate(distinct)}
            scaffold = (vectors * embedded[[at[s] for s in scaffolds]]).sum(axis=1)
            near = vectors @ vectors.T
            np.fill_diagonal(near, -1.0)
            hub = np.sort(near, axis=1)[:, -HUB_NEIGHBOURS:].mean(axis=1)
            questions = [
                {
                    "q": q,
                    "vector": self.embed_query(q.question),
                    "text": self.search_text(name, q.question),
                    "evidence": conv.evidence_lines(q),
                }
                for q in conv.questions
            ]
            tables.append(
                Table(
                    conv,
                    name,
                    rows["chunk_id"].to_pylist(),
                    rows["text"].to_pylist(),
                    np.array(rows["start_line"].to_pylist()),
                    np.array(rows["end_line"].to_pylist()),
                    np.array(rows["written_at"].to_pylist()),
                    vectors,
                    scaffold,
                    hub,
                    questions,
                )
            )
        cache.write_bytes(pickle.dumps(tables))
        return tables


Ranker = Callable[[Replay, Table, dict[str, Any]], list[Any]]


def ranked(
    replay: Replay,
    t: Table,
    question: str,
    vector: np.ndarray,
    text_hits: Sequence[tuple[str, float]],
    *,
    scaffold: float = 0.0,
    hub: float = 0.0,
    vdepth: int = 1,
) -> list[Any]:
    """The server's hybrid ranking of one question, with the rows' cosines lowered by the
    penalties for ordering only."""
    from agentmem_server.services import recall
    from agentmem_server.storage.base import ChunkHit

    cosine = t.vectors @ vector
    penalty = scaffold * t.scaffold + hub * t.hub

    def candidate(i: int, bm25: Optional[float] = None) -> Any:
        hit = ChunkHit(t.ids[i], int(t.start[i]), int(t.end[i]), t.texts[i], int(t.written[i]))
        return recall.Candidate(0, hit, float(cosine[i] - penalty[i]), bm25)

    # The vector leg is a nearest-neighbour search: it cannot see a penalty.
    by_vector = [candidate(int(i)) for i in np.argsort(-cosine)[: LIMIT * vdepth]]
    depth = recall.candidate_depth(LIMIT)
    by_text = [candidate(t.row[cid], score) for cid, score in text_hits[:depth]]
    order = recall.order_for("hybrid", units=True, query=question)
    chosen = recall.rank(
        by_vector, by_text, mode="hybrid", limit=LIMIT, min_score=-1.0, depth=depth, order=order
    )
    return [c for c in chosen if cosine[t.row[c.hit.chunk_id]] >= 0.25]


def penalised(scaffold: float = 0.0, hub: float = 0.0, vdepth: int = 1) -> Ranker:
    def rank(replay: Replay, t: Table, qd: dict[str, Any]) -> list[Any]:
        return ranked(
            replay,
            t,
            qd["q"].question,
            qd["vector"],
            qd["text"],
            scaffold=scaffold,
            hub=hub,
            vdepth=vdepth,
        )

    return rank


def second_round(scaffold: float, from_top: int, places: int) -> Ranker:
    """The first round, then a round for `<first new name in its top from_top> <question>`."""

    def rank(replay: Replay, t: Table, qd: dict[str, Any]) -> list[Any]:
        question = qd["q"].question
        first = ranked(replay, t, question, qd["vector"], qd["text"], scaffold=scaffold)
        known = set(t.conv.speakers) | set(_CAPITALISED.findall(question))
        name = next(
            (n for c in first[:from_top] for n in _names(c.hit.text) if n not in known), None
        )
        if name is None:
            return first
        seeded = f"{name} {question}"
        extra = ranked(
            replay,
            t,
            seeded,
            replay.embed_query(seeded),
            replay.search_text(t.name, seeded),
            scaffold=scaffold,
        )
        kept = first[: LIMIT - places]
        for c in extra + first[LIMIT - places :]:
            if len(kept) == LIMIT:
                break
            if not any(
                c.hit.start_line <= k.hit.end_line and k.hit.start_line <= c.hit.end_line
                for k in kept
            ):
                kept.append(c)
        return kept

    return rank


def _names(text: str) -> list[str]:
    body = re.sub(r"\[[^\]]*\]", " ", text)
    body = re.sub(r"(^|\n)\s*[^:\n]{1,40}:", " ", body)  # speaker labels
    return [w for w in dict.fromkeys(_CAPITALISED.findall(body)) if w not in _NOT_NAMES]


VARIANTS: dict[str, Ranker] = {
    "base": penalised(),
    "scaffold0.1": penalised(scaffold=0.1),
    "scaffold0.2": penalised(scaffold=0.2),
    "scaffold0.3": penalised(scaffold=0.3),
    "scaffold0.2-vdepth2": penalised(scaffold=0.2, vdepth=2),
    "hub0.3": penalised(hub=0.3),
    "hub0.3-vdepth4": penalised(hub=0.3, vdepth=4),
    "scaffold0.2-hub0.2-vdepth2": penalised(scaffold=0.2, hub=0.2, vdepth=2),
    "scaffold0.2-second1": second_round(0.2, from_top=1, places=1),
    "scaffold0.2-second2": second_round(0.2, from_top=2, places=1),
}


def evaluate(replay: Replay, tables: Sequence[Table], rank: Ranker, tokens: TokenCounter) -> dict:
    by_type: dict[str, list[float]] = {}
    spent = []
    for t in tables:
        for qd in t.questions:
            got = rank(replay, t, qd)
            spans = [(c.hit.start_line, c.hit.end_line) for c in got]
            by_type.setdefault(qd["q"].type, []).append(recall_at_k(spans, qd["evidence"], LIMIT))
            spent.append(sum(tokens(c.hit.text) for c in got))
    every = [r for rs in by_type.values() for r in rs]
    return {
        "R@5": float(np.mean(every)),
        **{k: float(np.mean(v)) for k, v in by_type.items()},
        "tok/q": float(np.mean(spent)),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--ingest", action="store_true")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--sets", default=",".join(SETS))
    args = p.parse_args(argv)
    if args.ingest:
        ingest(args.data)
        return 0
    replay = Replay(args.data)
    tokens = TokenCounter()
    for name in args.sets.split(","):
        tables = replay.load(name)
        for variant in args.variants.split(","):
            res = evaluate(replay, tables, VARIANTS[variant], tokens)
            cells = " ".join(
                f"{k} {v:.3f}" if k != "tok/q" else f"{k} {v:.0f}" for k, v in res.items()
            )
            print(f"{name:>5} {variant:>28}  {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
