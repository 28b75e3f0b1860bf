"""Recall-quality harness: ingest conversations through the public client, recall, score, report.

    python -m evals.harness --out evals/out                       # our dataset, all three modes
    python -m evals.harness --dataset locomo10.json --format locomo --modes hybrid
    report = run_eval(max_questions=60, out_dir="evals/out")      # from Python

Without `--base-url` a real server is started in-process (`agentmem_server.embedded`: uvicorn on a
free 127.0.0.1 port, a temporary data dir, a fresh tenant key). Only the public `agentmem`
client talks to it, so the numbers are what a user of the SDK gets, HTTP included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

from .dataset import (
    DEFAULT_DATASET,
    LONG_QUESTION_TYPES,
    QUESTION_TYPES,
    Conversation,
    DatasetFormat,
    load_dataset,
)
from .metrics import KS, TokenCounter, aggregate, question_metrics

MODES = ("keyword", "vector", "hybrid")
DEFAULT_OUT = Path("evals/out")
_AGENT_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


# --- the server under test ---------------------------------------------------------------------


@contextlib.contextmanager
def local_server(
    settings_overrides: Optional[Mapping[str, Any]] = None,
) -> Iterator[tuple[str, str]]:
    """Start a real agentmem server in a background thread; yield `(base_url, tenant_api_key)`."""
    try:
        from agentmem_server.embedded import serve_in_thread
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the eval harness needs the server: pip install 'agentmem-kit[server]'"
        ) from exc
    with serve_in_thread(settings_overrides, tenant="evals") as server:
        yield server.url, server.api_key


# --- the run --------------------------------------------------------------------------------


def select_questions(
    conversations: Sequence[Conversation],
    *,
    max_questions: Optional[int] = None,
    conversation_ids: Optional[Sequence[str]] = None,
) -> list[Conversation]:
    """Conversations to ingest, each keeping only the questions that will be asked.

    `max_questions` takes questions in dataset order, so only the conversations they come from
    are ingested: a quick run stays quick, and every conversation carries all question types.
    """
    if conversation_ids is not None:
        wanted = set(conversation_ids)
        unknown = wanted - {c.conversation_id for c in conversations}
        if unknown:
            raise ValueError(f"unknown conversation ids: {sorted(unknown)}")
        conversations = [c for c in conversations if c.conversation_id in wanted]
    if max_questions is not None and max_questions < 1:
        raise ValueError(f"max_questions must be >= 1, got {max_questions}")
    selected = []
    budget = (
        max_questions if max_questions is not None else sum(len(c.questions) for c in conversations)
    )
    for conv in conversations:
        if budget <= 0:
            break
        if not conv.questions:
            continue
        questions = conv.questions[:budget]
        budget -= len(questions)
        selected.append(Conversation(conv.conversation_id, conv.speakers, conv.sessions, questions))
    return selected


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def _ingest(client: Any, conv: Conversation, agent_id: str, *, dated: bool = True) -> int:
    client.memory.delete("archival", agent_id=agent_id)
    expected = 1
    for session in conv.sessions:
        lines = conv.session_lines(session, dated=dated)
        if not lines:
            continue
        block = client.memory.append("archival", "\n".join(lines), agent_id=agent_id)
        # Evidence is scored by line number; a shifted block would silently score garbage.
        start = getattr(block, "start_line", None)
        if start is not None and start != expected:
            raise RuntimeError(
                f"{conv.conversation_id}: session {session.session_id} landed at line {start}, "
                f"expected {expected}"
            )
        expected += len(lines)
    return expected - 1


def run_eval(
    dataset: Optional[str | Path] = None,
    format: DatasetFormat = "agentmem",
    modes: Sequence[str] = MODES,
    limit: int = 20,
    max_questions: Optional[int] = None,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    out_dir: Optional[str | Path] = DEFAULT_OUT,
    settings_overrides: Optional[Mapping[str, Any]] = None,
    progress: bool = True,
    *,
    conversation_ids: Optional[Sequence[str]] = None,
    include_adversarial: bool = False,
    keep_memory: bool = False,
    line_format: str = "dated",
    top_limit: int = 5,
) -> dict:
    """Run the eval and return the report dict (also written to `out_dir` unless it is None).

    `report["results"][mode]["overall"]["recall@5"]`, `...["by_type"][type][...]`.
    Against `base_url` the conversations go to fresh agent ids (`eval-<run>-<conversation>`),
    deleted afterwards unless `keep_memory`. `line_format="plain"` drops the `[date]` prefix
    from ingested lines: an ablation that measures what carrying the date costs retrieval.
    """
    modes = tuple(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes}")
    if not 1 <= limit <= 100:
        raise ValueError(f"limit must be in 1..100, got {limit}")
    if limit < 10:
        raise ValueError(
            f"limit must be at least 10 so that @10 metrics mean something, got {limit}"
        )
    if not 0 <= top_limit <= limit:
        raise ValueError(f"top_limit must be in 0..limit, got {top_limit}")
    if line_format not in ("dated", "plain"):
        raise ValueError(f"line_format must be 'dated' or 'plain', got {line_format!r}")
    if base_url and settings_overrides:
        raise ValueError(
            "settings_overrides only apply to the in-process server, not to --base-url"
        )

    conversations = select_questions(
        load_dataset(dataset, format, include_adversarial=include_adversarial),
        max_questions=max_questions,
        conversation_ids=conversation_ids,
    )
    if not conversations:
        raise ValueError("the dataset selection has no questions")
    started = time.perf_counter()

    if base_url:
        server_cm: contextlib.AbstractContextManager = contextlib.nullcontext(
            (base_url, api_key or os.environ.get("AGENTMEM_API_KEY"))
        )
    else:
        server_cm = local_server(settings_overrides)
    with server_cm as (url, key), _progress(progress) as bar:
        from agentmem import Client

        run_tag = secrets.token_hex(3)
        with Client(api_key=key, base_url=url, max_retries=2, timeout=120) as client:
            agent_ids = {
                c.conversation_id: f"eval-{run_tag}-{_AGENT_SAFE.sub('_', c.conversation_id)}"[:128]
                for c in conversations
            }
            total_turns = sum(c.turn_count for c in conversations)
            task = bar.add_task("ingest", total=total_turns)
            t0 = time.perf_counter()
            for conv in conversations:
                _ingest(client, conv, agent_ids[conv.conversation_id], dated=line_format == "dated")
                bar.advance(task, conv.turn_count)
            ingest_s = time.perf_counter() - t0
            try:
                records = _recall_all(
                    client, conversations, agent_ids, modes, limit, bar, top_limit=top_limit
                )
            finally:
                if base_url and not keep_memory:
                    for aid in agent_ids.values():
                        client.memory.delete("archival", agent_id=aid)

    report = build_report(
        records,
        modes=modes,
        meta={
            "dataset": {
                "path": str(dataset or DEFAULT_DATASET),
                "format": format,
                "conversations": len(conversations),
                "turns": total_turns,
                "questions": sum(len(c.questions) for c in conversations),
            },
            "config": {
                "limit": limit,
                "top_limit": top_limit,
                "max_questions": max_questions,
                "conversation_ids": list(conversation_ids) if conversation_ids else None,
                "server": base_url or "in-process",
                "settings_overrides": dict(settings_overrides or {}),
                "line_format": line_format,
            },
            "timing": {
                "ingest_s": round(ingest_s, 2),
                "total_s": round(time.perf_counter() - started, 2),
            },
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    if out_dir is not None:
        write_outputs(report, records, Path(out_dir))
    return report


def _recall_all(
    client: Any,
    conversations: Sequence[Conversation],
    agent_ids: Mapping[str, str],
    modes: Sequence[str],
    limit: int,
    bar: Any,
    *,
    top_limit: int = 0,
) -> list[dict]:
    count_tokens = TokenCounter()
    n_questions = sum(len(c.questions) for c in conversations)
    records = []

    def ask(conv: Conversation, question: str, mode: str, n: int) -> tuple[list, float]:
        t0 = time.perf_counter()
        hits = client.memory.recall(
            question, agent_id=agent_ids[conv.conversation_id], scope="agent", limit=n, mode=mode
        )
        return hits, (time.perf_counter() - t0) * 1000

    for mode in modes:
        task = bar.add_task(f"recall {mode}", total=n_questions)
        for conv in conversations:
            for q in conv.questions:
                evidence = conv.evidence_lines(q)
                hits, latency_ms = ask(conv, q.question, mode, limit)
                spans = [(h.line_number, h.end_line) for h in hits]
                tokens = [count_tokens(h.content) for h in hits]
                metrics = question_metrics(
                    spans, evidence, ks=[k for k in KS if k <= limit], token_counts=tokens
                )
                metrics["tokens_per_query"] = float(sum(tokens))
                record = {
                    "mode": mode,
                    "conversation_id": conv.conversation_id,
                    "question_id": q.question_id,
                    "type": q.type,
                    "question": q.question,
                    "evidence_lines": sorted(evidence),
                    "retrieved": spans,
                    "scores": [round(h.score, 4) for h in hits],
                    "latency_ms": round(latency_ms, 3),
                    "metrics": metrics,
                }
                if top_limit:
                    # The server's own top `top_limit` (not a prefix of the deep list: the legs'
                    # depths follow `limit`), with what it costs a prompt and the caller's wait.
                    top_hits, top_ms = ask(conv, q.question, mode, top_limit)
                    top_spans = [(h.line_number, h.end_line) for h in top_hits]
                    top = question_metrics(
                        top_spans, evidence, ks=[k for k in KS if k <= top_limit]
                    )
                    top = {k: v for k, v in top.items() if not k.startswith("ndcg")}
                    top["tokens_per_query"] = float(sum(count_tokens(h.content) for h in top_hits))
                    record.update(
                        top_retrieved=top_spans, top_latency_ms=round(top_ms, 3), top_metrics=top
                    )
                records.append(record)
                bar.advance(task)
    return records


def build_report(
    records: Sequence[dict], *, modes: Sequence[str], meta: Optional[dict] = None
) -> dict:
    """Aggregate per-question records into `results[mode]["overall" | "by_type"]`."""
    results: dict[str, dict] = {}
    for mode in modes:
        rows = [r for r in records if r["mode"] == mode]
        by_type: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_type[r["type"]].append(r)
        results[mode] = {
            "overall": _summarise(rows),
            "by_type": {t: _summarise(by_type[t]) for t in _type_order(by_type)},
        }
    return {**(meta or {}), "results": results}


def _summarise(rows: Sequence[dict]) -> dict:
    summary = aggregate([r["metrics"] for r in rows], [r["latency_ms"] for r in rows])
    top_rows = [r for r in rows if "top_metrics" in r]
    if top_rows:
        top = aggregate(
            [r["top_metrics"] for r in top_rows], [r["top_latency_ms"] for r in top_rows]
        )
        summary.update({f"top_{k}": v for k, v in top.items() if k != "n"})
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}


def _type_order(types: Mapping[str, Any] | Sequence[str]) -> list[str]:
    order = tuple(dict.fromkeys(QUESTION_TYPES + LONG_QUESTION_TYPES))
    known = [t for t in order if t in types]
    return known + sorted(t for t in types if t not in order)


# --- outputs ----------------------------------------------------------------------------------

_OVERALL_COLUMNS = [
    ("recall@1", "R@1"),
    ("recall@3", "R@3"),
    ("recall@5", "R@5"),
    ("recall@10", "R@10"),
    ("hit@5", "Hit@5"),
    ("mrr", "MRR"),
    ("ndcg@10", "nDCG@10"),
    ("recall@512tok", "R@512tok"),
    ("tokens_per_query", "tok/q"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
]
_TOP_COLUMNS = [
    ("top_recall@5", "R@5"),
    ("top_hit@5", "Hit@5"),
    ("top_mrr", "MRR@5"),
    ("top_tokens_per_query", "tok/q"),
    ("top_latency_p50_ms", "p50 ms"),
    ("top_latency_p95_ms", "p95 ms"),
    ("recall@5", "deep R@5"),
    ("recall@10", "deep R@10"),
    ("recall@20", "deep R@20"),
    ("mrr", "deep MRR"),
]
"""With a `top_limit` pass: its figures first (what `recall(limit=5)` returns), then the deep
list's."""


def _columns(report: dict) -> list[tuple[str, str]]:
    results = report["results"]
    has_top = any("top_recall@5" in res["overall"] for res in results.values())
    return _TOP_COLUMNS if has_top else _OVERALL_COLUMNS


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("tokens_per_query"):
        return f"{value:.0f}"
    if "latency" in key:
        return f"{value:.1f}"
    if key == "n":
        return str(int(value))
    return f"{value:.3f}"


def table_rows(report: dict) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """(overall header, overall rows, by-type header, by-type rows): the numbers every output
    shows."""
    results = report["results"]
    modes = list(results)
    columns = _columns(report)
    head = ["mode", "n"] + [label for _, label in columns]
    rows = [
        [m, _fmt("n", results[m]["overall"]["n"])]
        + [_fmt(k, results[m]["overall"].get(k)) for k, _ in columns]
        for m in modes
    ]
    types = _type_order({t: None for m in modes for t in results[m]["by_type"]})
    r5, mrr = ("top_recall@5", "top_mrr") if columns is _TOP_COLUMNS else ("recall@5", "mrr")
    type_head = ["type", "n"] + [f"{m} R@5" for m in modes] + [f"{m} MRR" for m in modes]
    type_rows = []
    for t in types:
        cells = [results[m]["by_type"].get(t, {}) for m in modes]
        n = next((c["n"] for c in cells if c), 0)
        type_rows.append(
            [t, str(int(n))]
            + [_fmt(r5, c.get(r5)) for c in cells]
            + [_fmt(mrr, c.get(mrr)) for c in cells]
        )
    return head, rows, type_head, type_rows


def _markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    head, rows, type_head, type_rows = table_rows(report)
    ds, cfg = report.get("dataset", {}), report.get("config", {})
    parts = [
        "# agentmem recall eval",
        "",
        f"Dataset `{ds.get('path')}` ({ds.get('format')}): "
        f"{ds.get('conversations')} conversations, "
        f"{ds.get('turns')} turns, {ds.get('questions')} questions. "
        f"Recall limit {cfg.get('limit')} (deep list) "
        f"and {cfg.get('top_limit')} (R@5, Hit@5, MRR@5, tok/q, latency); "
        f"server {cfg.get('server')}; settings overrides "
        f"{cfg.get('settings_overrides') or 'none'}.",
        "",
        "## Overall",
        "",
        _markdown_table(head, rows),
        "",
        "## By question type",
        "",
        _markdown_table(type_head, type_rows),
        "",
    ]
    for mode, res in report["results"].items():
        parts += [f"### {mode}", ""]
        columns = _columns(report)
        mode_rows = [
            [t, _fmt("n", v["n"])] + [_fmt(k, v.get(k)) for k, _ in columns]
            for t, v in res["by_type"].items()
        ]
        mode_rows.append(
            ["all", _fmt("n", res["overall"]["n"])]
            + [_fmt(k, res["overall"].get(k)) for k, _ in columns]
        )
        parts += [_markdown_table(["type", "n"] + [label for _, label in columns], mode_rows), ""]
    parts.append(
        f"Ingest {report.get('timing', {}).get('ingest_s')} s, total "
        f"{report.get('timing', {}).get('total_s')} s, {report.get('created_at')}."
    )
    return "\n".join(parts) + "\n"


def plot_recall(report: dict, path: Path) -> None:
    """Recall@k by mode (left) and Recall@5 by question type and mode (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    modes = list(results)
    types = _type_order({t: None for m in modes for t in results[m]["by_type"]})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2]})
    ks = [k for k in KS if all(f"recall@{k}" in results[m]["overall"] for m in modes)]
    r5 = "top_recall@5" if _columns(report) is _TOP_COLUMNS else "recall@5"
    for mode in modes:
        ax1.plot(ks, [results[mode]["overall"][f"recall@{k}"] for k in ks], marker="o", label=mode)
    ax1.set(
        xlabel="k", ylabel="Recall@k", title="Recall@k by mode (deep list)", xticks=ks, ylim=(0, 1)
    )
    ax1.grid(alpha=0.3)
    ax1.legend()
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(types))]
        ax2.bar(
            xs, [results[mode]["by_type"].get(t, {}).get(r5, 0.0) for t in types], width, label=mode
        )
    ax2.set_xticks(range(len(types)), types, rotation=20)
    ax2.set(ylabel="Recall@5", title="Recall@5 by question type", ylim=(0, 1))
    ax2.grid(axis="y", alpha=0.3)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: dict, records: Sequence[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    with open(out_dir / "questions.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    plot_recall(report, out_dir / "recall.png")


def print_summary(report: dict, file: Any = None) -> None:
    """The per-mode and per-type tables, as the CLI prints them at the end of a run."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout)
    if not console.is_terminal:
        console.width = 150  # piped or captured output would otherwise be squeezed to 80 columns
    head, rows, type_head, type_rows = table_rows(report)
    for title, h, rs in (
        ("Recall by mode", head, rows),
        ("Recall@5 and MRR by question type", type_head, type_rows),
    ):
        table = Table(title=title)
        for i, col in enumerate(h):
            table.add_column(col, justify="left" if i == 0 else "right")
        for r in rs:
            table.add_row(*r)
        console.print(table)


# --- command line -----------------------------------------------------------------------------


def _parse_modes(values: Sequence[str]) -> tuple[str, ...]:
    modes = tuple(m.strip() for v in values for m in v.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    return modes


def _parse_setting(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentmem eval", description="Offline recall-quality eval through the public client."
    )
    p.add_argument(
        "--dataset",
        help="dataset path, or 'short' / 'long' for our committed sets (default: short)",
    )
    p.add_argument("--format", choices=("agentmem", "locomo"), default="agentmem")
    p.add_argument(
        "--modes",
        nargs="+",
        default=[",".join(MODES)],
        help="comma- or space-separated: keyword,vector,hybrid",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=20,
        help="results of the deep recall (>= 10): where evidence ranks",
    )
    p.add_argument(
        "--top-limit",
        type=int,
        default=5,
        help="results of the second recall, what users get (0: skip it)",
    )
    p.add_argument("--max-questions", type=int, default=None)
    p.add_argument("--conversations", default=None, help="comma-separated conversation ids to keep")
    p.add_argument(
        "--base-url", default=None, help="evaluate a running server instead of an in-process one"
    )
    p.add_argument(
        "--api-key", default=None, help="tenant key for --base-url (default AGENTMEM_API_KEY)"
    )
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output directory")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        type=_parse_setting,
        metavar="KEY=VALUE",
        help="in-process server setting, e.g. --set chunk_tokens=96 (repeatable)",
    )
    p.add_argument("--include-adversarial", action="store_true", help="LoCoMo: keep category 5")
    p.add_argument(
        "--line-format",
        choices=("dated", "plain"),
        default="dated",
        help="ablation: 'plain' ingests lines without the [date] prefix",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        modes = _parse_modes(args.modes)
    except argparse.ArgumentTypeError as exc:
        build_parser().error(str(exc))
    report = run_eval(
        dataset=args.dataset,
        format=args.format,
        modes=modes,
        limit=args.limit,
        top_limit=args.top_limit,
        max_questions=args.max_questions,
        base_url=args.base_url,
        api_key=args.api_key,
        out_dir=args.out,
        settings_overrides=dict(args.settings) or None,
        progress=not args.no_progress,
        conversation_ids=args.conversations.split(",") if args.conversations else None,
        include_adversarial=args.include_adversarial,
        line_format=args.line_format,
    )
    print_summary(report)
    print(f"wrote {args.out}/report.json, report.md, recall.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
