"""Compaction's pure parts (services/compaction.py): the split point, dated archival lines, the
offline provider's extractive summary, transcript parts."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from agentmem.types import Message
from agentmem_server.providers import OfflineProvider
from agentmem_server.services import compaction

from support import T0


def msg(
    i: int, role: str, content: str, run_id: Optional[str] = None, kind: str = "message"
) -> Message:
    return Message(
        id=f"msg_{i}",
        thread_id="thr_1",
        role=role,  # type: ignore[arg-type]
        content=content,
        run_id=run_id,
        created_at=T0 + timedelta(days=i),
        kind=kind,  # type: ignore[arg-type]
    )


def test_split_point_keeps_the_last_n_and_never_splits_a_runs_turn():
    free = [msg(i, "user", f"m{i}") for i in range(5)]
    assert [compaction.split_point(free, k) for k in (0, 1, 2, 5, 9)] == [5, 4, 3, 0, 0]
    runs = [
        msg(0, "user", "q1", "r1"),
        msg(1, "assistant", "a1", "r1"),
        msg(2, "user", "q2", "r2"),
        msg(3, "assistant", "a2", "r2"),
    ]
    assert compaction.split_point(runs, 1) == 2
    assert compaction.split_point(runs, 2) == 2
    assert compaction.split_point(runs, 3) == 0


def test_archival_lines_are_dated_one_per_line_and_skip_summaries():
    lines = compaction.archival_lines(
        [
            msg(0, "system", "Summary of 9 earlier messages\nold", kind="summary"),
            msg(1, "user", "first line\n\n  second line  "),
            msg(2, "assistant", "ok"),
        ]
    )
    assert lines == [
        "[2025-03-02 12:00 UTC] user: first line",
        "[2025-03-02 12:00 UTC] user: second line",
        "[2025-03-03 12:00 UTC] assistant: ok",
    ]


def test_extractive_summary_is_deterministic_dated_and_bounded():
    messages = [
        msg(0, "user", "Hi there. My passport number ends in 4471 and expires in March 2031."),
        msg(1, "assistant", "Noted your passport details."),
        msg(2, "user", "Thanks! I prefer aisle seats on long flights to Tokyo."),
    ]
    summary = compaction.extractive_summary("", messages)
    assert summary == compaction.extractive_summary("", messages)
    assert summary.splitlines() == [
        "[2025-03-01 12:00 UTC] My passport number ends in 4471 and expires in March 2031.",
        "[2025-03-03 12:00 UTC] I prefer aisle seats on long flights to Tokyo.",
    ]
    many = [
        msg(i, "user", f"Fact number {i} is about topic {i * 7} in detail.") for i in range(500)
    ]
    assert len(compaction.extractive_summary("", many)) <= compaction.EXTRACTIVE_CHARS


async def test_the_offline_provider_summarises_without_a_model():
    messages = [msg(0, "user", "The Wi-Fi password is tangerine42."), msg(1, "assistant", "ok")]
    text = await compaction.summarise(OfflineProvider(), "any", messages)
    assert text == "[2025-03-01 12:00 UTC] The Wi-Fi password is tangerine42."


def test_transcript_parts_fit_the_budget():
    messages = [msg(i, "user", "word " * 50) for i in range(10)]
    parts = compaction.transcript_parts(messages, budget=140)  # 66 tokens a message: two per part
    assert len(parts) == 5 and all(p.count("\n") == 1 for p in parts)
    assert "\n".join(parts).count("user:") == 10
