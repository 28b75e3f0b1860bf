"""The arithmetic behind bench_load's CPU columns and bench_floor's floor (issue 12, item 9)."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from evals._bench import Server
from evals.bench_floor import floor
from evals.bench_load import _cpu_report


def test_cpu_report_divides_each_window_by_the_requests_in_it() -> None:
    start = {"client": 10.0, "server": 100.0, "threads": {"event loop": 40.0, "python": 50.0}}
    end = {
        "client": 12.0,
        "server": 130.0,
        "threads": {"event loop": 52.0, "python": 65.0, "lancedb-tokio-w": 3.0},
    }
    report = _cpu_report(start, end, elapsed=20.0, requests=1000)
    assert report["server_cores"] == 1.5
    assert report["client_cores"] == 0.1
    assert report["server_ms_per_request"] == 30.0
    assert report["client_ms_per_request"] == 2.0
    # A thread that started within the window counts from zero; the dearest comes first.
    assert report["server_ms_per_request_by_thread"] == {
        "python": 15.0,
        "event loop": 12.0,
        "lancedb-tokio-w": 3.0,
    }
    assert list(report["server_ms_per_request_by_thread"]) == [
        "python",
        "event loop",
        "lancedb-tokio-w",
    ]


def test_thread_cpu_puts_the_main_thread_apart() -> None:
    me = SimpleNamespace(proc=SimpleNamespace(pid=os.getpid()))
    before = Server.thread_cpu_s(me)  # type: ignore[arg-type]
    burn_until = time.process_time() + 0.3
    while time.process_time() < burn_until:
        pass
    after = Server.thread_cpu_s(me)  # type: ignore[arg-type]
    # /proc counts in clock ticks (10 ms): the 0.3 s burnt on this thread shows as most of it.
    assert after["event loop"] - before["event loop"] >= 0.2
    assert sum(after.values()) >= sum(before.values()) + 0.2


PARTS = {
    "query embedding, in a batch of 8": 2.0,
    "line embedding, in a batch of 8": 6.0,
    "LanceDB BM25 (one scope)": 1.0,
    "LanceDB add (one row)": 4.0,
    "request: server": 0.5,
    "request: client": 0.5,
}


def test_floor_weighs_each_operation_by_the_mix() -> None:
    out = floor({**PARTS, "baseline req/s": 100.0}, batch=8)
    # recall: 2 + 2 scopes x 1, one request; append: 6 + 4, one request; core: two requests.
    recall, append, core = 2.0 + 2 * 1.0 + 1.0, 6.0 + 4.0 + 1.0, 2 * 1.0
    assert out["floor_ms_per_op"] == pytest.approx(0.5 * recall + 0.2 * append + 0.3 * core)
    assert out["of_which_http_ms"] == pytest.approx(0.5 * 1 + 0.2 * 1 + 0.3 * 2)
    assert out["ceiling_rps_on_2_cores"] == pytest.approx(2000 / out["floor_ms_per_op"])
    # 3x 100 req/s on two cores leaves 6.67 ms of CPU per operation.
    assert out["budget_ms_per_op_at_3x"] == pytest.approx(2000 / 300)
    assert out["floor_over_budget"] == pytest.approx(out["floor_ms_per_op"] / (2000 / 300))


def test_floor_without_a_baseline_states_no_budget() -> None:
    out = floor(PARTS, batch=8)
    assert "budget_ms_per_op_at_3x" not in out
    assert out["floor_ms_per_op"] > 0
