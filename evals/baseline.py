"""The recall regression guards: hybrid Recall@5 on fixed CI subsets of our two datasets.

    python -m evals.baseline             # measure, compare with evals/baseline.json (1 if worse)
    python -m evals.baseline --set long  # the long-conversation guard, evals/baseline_long.json
    python -m evals.baseline --update    # record the measured value (deliberately, see README)

The test `tests/evals/test_recall_regression.py` runs the same check in CI.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

BASELINE_PATH = Path(__file__).resolve().parent / "baseline.json"
BASELINE_PATHS = {"short": BASELINE_PATH, "long": BASELINE_PATH.with_name("baseline_long.json")}
"""One guard per committed dataset; each file names its dataset, subset, metric and limits."""


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def measure(baseline: dict[str, Any], **run_kwargs: Any) -> dict:
    """Run the harness on the baseline's subset and return its report."""
    from .harness import run_eval

    subset = baseline["subset"]
    return run_eval(
        dataset=baseline.get("dataset"),
        modes=(baseline["mode"],),
        limit=baseline.get("limit", 10),
        top_limit=baseline.get("top_limit", 0),
        conversation_ids=subset["conversation_ids"],
        out_dir=run_kwargs.pop("out_dir", None),
        progress=run_kwargs.pop("progress", False),
        **run_kwargs,
    )


def measured_value(baseline: dict[str, Any], report: dict) -> float:
    return float(report["results"][baseline["mode"]]["overall"][baseline["metric"]])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Check or record the recall regression baseline.")
    parser.add_argument(
        "--update", action="store_true", help="write the measured value into evals/baseline.json"
    )
    parser.add_argument("--out", default=None, help="also write the subset's report here")
    parser.add_argument(
        "--set", dest="which", choices=sorted(BASELINE_PATHS), default="short", help="which guard"
    )
    args = parser.parse_args(argv)
    path = BASELINE_PATHS[args.which]
    baseline = load_baseline(path)
    report = measure(baseline, out_dir=args.out, progress=True)
    value = measured_value(baseline, report)
    floor = baseline["value"] - baseline["margin"]
    print(
        f"{baseline['mode']} {baseline['metric']} = {value:.4f} (recorded {baseline['value']:.4f}, "
        f"floor {floor:.4f})"
    )
    if args.update:
        baseline["value"] = round(value, 4)
        baseline["recorded_at"] = datetime.now(UTC).date().isoformat()
        baseline["questions"] = report["dataset"]["questions"]
        path.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
        print(f"recorded in {path}")
        return 0
    return 0 if value >= floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
