"""CI guard: hybrid Recall@5 on each dataset's fixed subset must not fall below the recorded value -
margin.

Runs the real harness against a real in-process server with the real MiniLM model.
"""

from __future__ import annotations

import pytest

from evals.baseline import BASELINE_PATHS, load_baseline, measure, measured_value


@pytest.mark.slow
@pytest.mark.parametrize("which", sorted(BASELINE_PATHS))
def test_hybrid_recall_at_5_does_not_regress(which, tmp_path):
    baseline = load_baseline(BASELINE_PATHS[which])
    report = measure(baseline, out_dir=tmp_path)
    value = measured_value(baseline, report)
    floor = baseline["value"] - baseline["margin"]
    assert report["dataset"]["questions"] == baseline["questions"], (
        "the CI subset changed; re-record the baseline"
    )
    assert value >= floor, (
        f"{which}: {baseline['mode']} {baseline['metric']} fell to {value:.4f}, below the recorded "
        f"{baseline['value']:.4f} - {baseline['margin']} (report: {tmp_path / 'report.md'}). "
        "If the drop is intended, re-record with "
        f"`python -m evals.baseline --set {which} --update` and say why in the commit."
    )
