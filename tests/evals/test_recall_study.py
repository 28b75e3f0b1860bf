"""The side-by-side ablation runner: one ingest, several ranking variants, harness reports."""

from __future__ import annotations

import pytest

from agentmem_server.services import recall
from evals import recall_study


@pytest.mark.slow
def test_rank_variants_run_side_by_side_on_one_ingest(tmp_path):
    rows = recall_study.run_study(
        ["raw"],
        ["plain", "spread"],
        ["short", "long"],
        ["hybrid"],
        tmp_path,
        settings={"embedding_model": "hash:384"},
        max_conversations=1,
    )
    assert [(r["rank"], r["set"]) for r in rows] == [
        ("plain", "short"),
        ("spread", "short"),
        ("plain", "long"),
        ("spread", "long"),
    ]
    for r in rows:
        assert 0.0 < r["overall"]["top_recall@5"] <= 1.0 and r["by_type"]
        assert (tmp_path / f"raw-{r['rank']}-{r['set']}" / "report.json").exists()
    assert recall.SPREAD_HYBRID is True, "the switch is put back after each pass"
    assert "plain" in recall_study.summary_line(rows)


def test_unknown_variants_are_named():
    with pytest.raises(ValueError, match="nope"):
        recall_study.run_study(["raw"], ["nope"], ["short"], ["hybrid"], None)
