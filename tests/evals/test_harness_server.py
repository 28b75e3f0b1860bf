"""The harness end to end against a real in-process server (fast hash embedder, so no model
load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.harness import main, run_eval


def test_run_eval_through_the_public_client_writes_every_output(tmp_path):
    report = run_eval(
        max_questions=14,
        modes=("keyword", "hybrid"),
        out_dir=tmp_path,
        progress=False,
        settings_overrides={"embedding_model": "hash:384"},
    )
    assert report["dataset"]["conversations"] == 1 and report["dataset"]["questions"] == 14
    for mode in ("keyword", "hybrid"):
        overall = report["results"][mode]["overall"]
        assert overall["n"] == 14
        assert 0.0 < overall["recall@10"] <= 1.0
        assert overall["latency_p50_ms"] > 0 and overall["tokens_per_query"] > 0
        assert set(report["results"][mode]["by_type"]) == {
            "single_fact",
            "multi_hop",
            "temporal",
            "paraphrase",
            "names_numbers",
            "updated",
        }
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert (
        on_disk["results"]["hybrid"]["overall"]["recall@5"]
        == report["results"]["hybrid"]["overall"]["recall@5"]
    )
    assert (tmp_path / "recall.png").stat().st_size > 0


def test_main_prints_the_table(tmp_path, capsys):
    assert (
        main(
            [
                "--max-questions",
                "3",
                "--modes",
                "keyword",
                "--out",
                str(tmp_path),
                "--no-progress",
                "--set",
                "embedding_model=hash:384",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Recall by mode" in out and "keyword" in out
    assert (tmp_path / "report.md").exists()


def test_locomo_layout_runs_through_the_harness():
    tiny = Path(__file__).parent / "data" / "locomo_tiny.json"
    with pytest.warns(UserWarning, match="no resolvable evidence"):
        report = run_eval(
            dataset=tiny,
            format="locomo",
            modes=("vector",),
            out_dir=None,
            progress=False,
            settings_overrides={"embedding_model": "hash:384"},
        )
    assert report["dataset"]["questions"] == 6
    assert set(report["results"]["vector"]["by_type"]) == {
        "multi_hop",
        "temporal",
        "open_domain",
        "single_hop",
    }
    # Two tiny conversations fit in a handful of chunks: top 10 covers every evidence line.
    assert report["results"]["vector"]["overall"]["recall@10"] == 1.0


def test_base_url_runs_use_fresh_agents_and_clean_up_after_themselves(monkeypatch):
    from agentmem import Client
    from agentmem_server.embedded import serve_in_thread
    from evals import harness

    monkeypatch.setattr(harness.secrets, "token_hex", lambda n: "run1")
    with serve_in_thread({"embedding_model": "hash:384"}) as server:
        with Client(api_key=server.api_key, base_url=server.url) as client:
            report = run_eval(
                base_url=server.url,
                api_key=server.api_key,
                max_questions=2,
                modes=("keyword",),
                out_dir=None,
                progress=False,
            )
            assert report["config"]["server"] == server.url
            assert report["results"]["keyword"]["overall"]["n"] == 2
            # The run's agent scope is gone afterwards: nothing left to recall or list.
            assert (
                client.memory.recall("Hey", agent_id="eval-run1-am-01", scope="agent", limit=5)
                == []
            )
            assert client.memory.list(scope="agent", agent_id="eval-run1-am-01") == []
