"""The harness's selection, scoring and outputs, driven by a stand-in client (no server needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from evals import harness
from evals.dataset import load_dataset
from evals.text import content_words


@dataclass
class Hit:
    content: str
    score: float
    line_number: int
    end_line: int


@dataclass
class Appended:
    start_line: int
    end_line: int


class FakeMemory:
    """Three-line chunks ranked by shared content words: enough to exercise the harness."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[str]] = {}
        self.calls: list[tuple] = []

    def delete(self, block_type, *, agent_id):
        self.blocks.pop(agent_id, None)

    def append(self, block_type, text, *, agent_id):
        lines = self.blocks.setdefault(agent_id, [])
        start = len(lines) + 1
        lines.extend(text.split("\n"))
        return Appended(start, len(lines))

    def recall(self, query, *, agent_id, scope, limit, mode):
        self.calls.append((agent_id, scope, limit, mode))
        lines = self.blocks.get(agent_id, [])
        chunks = [(i + 1, min(i + 3, len(lines))) for i in range(0, len(lines), 3)]
        words = content_words(query)

        def score(span):
            return len(words & content_words(" ".join(lines[span[0] - 1 : span[1]])))

        ranked = sorted(chunks, key=lambda s: (-score(s), s))[:limit]
        return [Hit("\n".join(lines[a - 1 : b]), 0.5, a, b) for a, b in ranked]


class FakeClient:
    def __init__(self) -> None:
        self.memory = FakeMemory()


@pytest.fixture(scope="module")
def subset():
    return harness.select_questions(load_dataset(), max_questions=20)


def test_max_questions_keeps_dataset_order_and_only_needed_conversations(subset):
    assert sum(len(c.questions) for c in subset) == 20
    assert [c.conversation_id for c in subset] == ["am-01", "am-02"]


def test_conversation_ids_select_and_unknown_ids_fail():
    convs = load_dataset()
    picked = harness.select_questions(convs, conversation_ids=["am-03", "am-01"])
    assert [c.conversation_id for c in picked] == ["am-01", "am-03"]
    with pytest.raises(ValueError, match="am-99"):
        harness.select_questions(convs, conversation_ids=["am-99"])


def test_end_to_end_scoring_and_outputs(subset, tmp_path):
    client = FakeClient()
    ids = {c.conversation_id: f"eval-x-{c.conversation_id}" for c in subset}
    for conv in subset:
        assert harness._ingest(client, conv, ids[conv.conversation_id]) == conv.turn_count
    with harness._progress(False) as bar:
        records = harness._recall_all(client, subset, ids, ("keyword", "hybrid"), 10, bar)
    assert len(records) == 40
    assert {c[1] for c in client.memory.calls} == {"agent"}
    report = harness.build_report(
        records, modes=("keyword", "hybrid"), meta={"dataset": {"path": "x"}}
    )
    overall = report["results"]["keyword"]["overall"]
    for key in (
        "recall@1",
        "recall@5",
        "hit@10",
        "mrr",
        "ndcg@5",
        "tokens_per_query",
        "latency_p50_ms",
        "latency_p95_ms",
    ):
        assert key in overall, key
    assert overall["n"] == 20
    assert 0 < overall["recall@10"] <= 1
    assert overall["recall@1"] <= overall["recall@5"] <= overall["recall@10"]
    assert set(report["results"]["hybrid"]["by_type"]) <= set(harness.QUESTION_TYPES)

    harness.write_outputs(report, records, tmp_path)
    assert (
        json.loads((tmp_path / "report.json").read_text())["results"]["keyword"]["overall"]["n"]
        == 20
    )
    md = (tmp_path / "report.md").read_text()
    assert "| keyword |" in md and "paraphrase" in md
    assert (tmp_path / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((tmp_path / "questions.jsonl").read_text().splitlines()) == 40


def test_ingest_refuses_a_block_that_does_not_start_empty(subset):
    client = FakeClient()
    client.memory.delete = lambda *a, **k: None  # a server that failed to clear the scope
    client.memory.blocks["a"] = ["stale line"]
    with pytest.raises(RuntimeError, match="expected 1"):
        harness._ingest(client, subset[0], "a")


def test_cli_parses_modes_settings_and_rejects_unknown_modes():
    args = harness.build_parser().parse_args(
        ["--modes", "keyword,vector", "--set", "chunk_tokens=64", "--set", "x=abc"]
    )
    assert harness._parse_modes(args.modes) == ("keyword", "vector")
    assert dict(args.settings) == {"chunk_tokens": 64, "x": "abc"}
    assert harness._parse_modes(["hybrid", "keyword"]) == ("hybrid", "keyword")
    with pytest.raises(Exception, match="bm25"):
        harness._parse_modes(["bm25"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modes": ("bm25",)}, "modes"),
        ({"limit": 5}, "at least 10"),
        ({"top_limit": 30}, "top_limit"),
        ({"base_url": "http://x", "settings_overrides": {"chunk_tokens": 64}}, "in-process"),
        ({"line_format": "xml"}, "line_format"),
    ],
)
def test_run_eval_validates_arguments_before_starting_anything(kwargs, match):
    with pytest.raises(ValueError, match=match):
        harness.run_eval(out_dir=None, progress=False, **kwargs)


def test_print_summary_shows_every_mode(subset, capsys):
    records = [
        {
            "mode": m,
            "type": "single_fact",
            "latency_ms": 1.0,
            "metrics": {"recall@5": 1.0, "mrr": 1.0},
        }
        for m in ("keyword", "vector")
    ]
    harness.print_summary(harness.build_report(records, modes=("keyword", "vector")))
    out = capsys.readouterr().out
    assert "keyword" in out and "vector" in out and "single_fact" in out


def test_top_limit_pass_reports_what_recall_returns_by_default(subset):
    client = FakeClient()
    ids = {c.conversation_id: f"eval-x-{c.conversation_id}" for c in subset}
    for conv in subset:
        harness._ingest(client, conv, ids[conv.conversation_id])
    with harness._progress(False) as bar:
        records = harness._recall_all(client, subset, ids, ("hybrid",), 20, bar, top_limit=5)
    # Two calls per question: the deep list and the server's own top 5.
    assert sorted({c[2] for c in client.memory.calls}) == [5, 20]
    for r in records:
        assert len(r["top_retrieved"]) <= 5 and r["top_latency_ms"] > 0
        assert r["top_metrics"]["tokens_per_query"] <= r["metrics"]["tokens_per_query"]
    report = harness.build_report(records, modes=("hybrid",))
    overall = report["results"]["hybrid"]["overall"]
    for key in (
        "top_recall@5",
        "top_hit@5",
        "top_mrr",
        "top_tokens_per_query",
        "top_latency_p50_ms",
        "recall@20",
    ):
        assert key in overall, key
    assert "top_recall@10" not in overall
    head, rows, type_head, _ = harness.table_rows(report)
    assert head[2:5] == ["R@5", "Hit@5", "MRR@5"] and "deep R@20" in head
    md = harness.render_markdown(report)
    assert "| all |" in md
