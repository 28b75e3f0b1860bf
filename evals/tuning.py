"""Measure fusion and query-handling alternatives the server does not expose as settings.

    python -m evals.tuning --out evals/out/tuning                 # default server settings
    python -m evals.tuning --set chunk_tokens=96 --max-questions 120

The real server's two legs are fetched through the public client (`mode="vector"` and
`mode="keyword"`, deep lists), then fused here in several ways and scored with the same
metrics as the harness. `rrf60` (equal weights, k = 60) mirrors the server's own hybrid mode and
is checked against it, so the other rows are what the server would score with that change.
Query variants rewrite the question before it is sent, as a server-side query step would.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Optional

from .dataset import Conversation, load_dataset
from .harness import _ingest, _parse_setting, _type_order, local_server, select_questions
from .metrics import aggregate, question_metrics
from .text import STOP_WORDS

Span = tuple[int, int]
DEPTH = 40
"""Candidates per leg: the server fuses max(4 * limit, 20) per leg, 40 for `limit` 10."""

_QUESTION_WORDS = frozenset("what which who whom whose when where why how name called kind".split())


def keywords_only(question: str) -> str:
    """The question without stop and question words: full-text search then scores only content."""
    words = [w.strip("?.,!'\"") for w in question.split()]
    kept = [
        w for w in words if w and w.lower().replace("'s", "") not in STOP_WORDS | _QUESTION_WORDS
    ]
    return " ".join(kept) or question


QUERY_VARIANTS: dict[str, Callable[[str], str]] = {
    "raw": lambda q: q,
    "keywords_only": keywords_only,
}


def rrf(rankings: Sequence[Sequence[Span]], weights: Sequence[float], k: int = 60) -> list[Span]:
    """Weighted reciprocal-rank fusion; ties keep the order of the first ranking (vector)."""
    fused: dict[Span, float] = defaultdict(float)
    first_seen: dict[Span, int] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, span in enumerate(ranking):
            fused[span] += w / (k + rank + 1)
            first_seen.setdefault(span, len(first_seen))
    return sorted(fused, key=lambda s: (-fused[s], first_seen[s]))


def fusion_variants(
    vector: Sequence[Span], keyword: Sequence[Span], server_hybrid: Sequence[Span]
) -> dict[str, list[Span]]:
    return {
        "server_hybrid": list(server_hybrid),
        "vector": list(vector),
        "keyword": list(keyword),
        "rrf60": rrf([vector, keyword], [1, 1], 60),
        "rrf10": rrf([vector, keyword], [1, 1], 10),
        "rrf60_v2k1": rrf([vector, keyword], [2, 1], 60),
        "rrf60_v3k1": rrf([vector, keyword], [3, 1], 60),
        "rrf10_v2k1": rrf([vector, keyword], [2, 1], 10),
        # Keyword hits only where they also rank high: the top of the text leg, then vector.
        "vector+kw_top3": rrf([vector, keyword[:3]], [1, 1], 60),
    }


def run_study(
    conversations: Sequence[Conversation],
    base_url: str,
    api_key: str,
    *,
    limit: int = 10,
    progress: Optional[Callable[[], None]] = None,
) -> list[dict]:
    from agentmem import Client

    records = []
    with Client(api_key=api_key, base_url=base_url, timeout=120) as client:
        tag = secrets.token_hex(3)
        for conv in conversations:
            agent_id = f"tune-{tag}-{conv.conversation_id}"
            _ingest(client, conv, agent_id)

            def spans(query: str, mode: str, n: int, agent_id: str = agent_id) -> list[Span]:
                hits = client.memory.recall(
                    query, agent_id=agent_id, scope="agent", limit=n, mode=mode
                )
                return [(h.line_number, h.end_line) for h in hits]

            for q in conv.questions:
                evidence = conv.evidence_lines(q)
                for qname, rewrite in QUERY_VARIANTS.items():
                    query = rewrite(q.question)
                    variants = fusion_variants(
                        spans(query, "vector", DEPTH),
                        spans(query, "keyword", DEPTH),
                        spans(query, "hybrid", limit),
                    )
                    for vname, ranked in variants.items():
                        records.append(
                            {
                                "variant": f"{qname}/{vname}",
                                "type": q.type,
                                "question_id": q.question_id,
                                "metrics": question_metrics(ranked[:limit], evidence),
                                "latency_ms": 0.0,
                            }
                        )
                if progress:
                    progress()
    return records


def summarise(records: Sequence[dict]) -> dict[str, dict[str, dict[str, float]]]:
    by_variant: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_variant[r["variant"]]["overall"].append(r["metrics"])
        by_variant[r["variant"]][r["type"]].append(r["metrics"])
    return {
        v: {t: {k: round(x, 4) for k, x in aggregate(ms, []).items()} for t, ms in groups.items()}
        for v, groups in by_variant.items()
    }


def render(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str = "recall@5"
) -> str:
    types = _type_order({t: None for g in summary.values() for t in g if t != "overall"})
    head = ["variant", "overall", *types, "MRR"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for v, g in summary.items():
        cells = [f"{g['overall'][metric]:.3f}"] + [
            f"{g[t][metric]:.3f}" if t in g else "-" for t in types
        ]
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {g['overall']['mrr']:.3f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-questions", type=int, default=None)
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        type=_parse_setting,
        metavar="KEY=VALUE",
    )
    p.add_argument("--out", default="evals/out/tuning")
    args = p.parse_args(argv)
    conversations = select_questions(load_dataset(), max_questions=args.max_questions)
    n = sum(len(c.questions) for c in conversations)
    started = time.perf_counter()
    done = [0]

    def tick() -> None:
        done[0] += 1
        if done[0] % 25 == 0 or done[0] == n:
            print(f"  {done[0]}/{n} questions, {time.perf_counter() - started:.0f}s", flush=True)

    with local_server(dict(args.settings) or None) as (url, key):
        records = run_study(conversations, url, key, progress=tick)
    summary = summarise(records)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.json").write_text(
        json.dumps({"settings": dict(args.settings), "questions": n, "summary": summary}, indent=2)
        + "\n"
    )
    table = render(summary)
    (out / "tuning.md").write_text(
        f"Recall@5 by variant ({n} questions, settings "
        f"{dict(args.settings) or 'default'})\n\n{table}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
