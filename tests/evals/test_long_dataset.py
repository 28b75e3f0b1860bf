"""Our long-conversation dev set: its shape, its honesty about evidence, and its reproducibility."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from evals import make_long_dataset as gen
from evals.dataset import LONG_DATASET, LONG_QUESTION_TYPES, load_dataset

_MONTHS = (
    "January February March April May June July August September October November December".split()
)


@pytest.fixture(scope="module")
def conversations():
    return load_dataset("long")


def _session_of(conv):
    return {t.turn_id: s for s in conv.sessions for t in s.turns}


def test_long_and_many_sessions_like_real_chats(conversations):
    assert len(conversations) >= 10
    for c in conversations:
        assert c.turn_count >= 400, c.conversation_id
        assert len(c.sessions) >= 15, c.conversation_id
        assert len(c.speakers) == 2 and {t.speaker for s in c.sessions for t in s.turns} == set(
            c.speakers
        )
        assert len({s.date for s in c.sessions}) == len(c.sessions), "each session has its own date"


def test_question_types_come_in_the_benchmark_shares(conversations):
    counts = Counter(q.type for c in conversations for q in c.questions)
    assert set(counts) == set(LONG_QUESTION_TYPES)
    n = sum(counts.values())
    assert n >= 400
    for qtype, share in {
        "single_hop": 0.55,
        "temporal": 0.21,
        "multi_hop": 0.18,
        "open_domain": 0.06,
    }.items():
        assert abs(counts[qtype] / n - share) <= 0.03, (qtype, counts[qtype] / n)


def test_evidence_sizes_per_type(conversations):
    for c in conversations:
        session_of = _session_of(c)
        for q in c.questions:
            sessions = {session_of[t].session_id for t in q.evidence}
            if q.type in ("single_hop", "temporal"):
                assert len(q.evidence) == 1, q.question_id
            elif q.type == "multi_hop":
                assert 2 <= len(q.evidence) <= 4 and len(sessions) >= 2, q.question_id
            else:
                assert 2 <= len(q.evidence) <= 3 and len(sessions) >= 2, q.question_id


def test_relative_dates_are_answered_from_the_session_date(conversations):
    phrases = {p for p, _, _ in gen.bank.WHENS_PAST}
    when_questions = 0
    for c in conversations:
        session_of = _session_of(c)
        for q in c.questions:
            if q.type != "temporal" or not q.question.startswith("When"):
                continue
            when_questions += 1
            (turn,) = q.evidence
            text = next(t.text for t in session_of[turn].turns if t.turn_id == turn).lower()
            assert any(p.lower() in text for p in phrases), (q.question_id, text)
            assert any(m in q.answer for m in _MONTHS), (q.question_id, q.answer)
    assert when_questions >= 50


def test_resolve_when_counts_back_from_the_session_day():
    monday = date(2023, 5, 8)
    assert gen.resolve_when(monday, "day", -1) == ("7 May 2023", date(2023, 5, 7))
    # "on Saturday" said on a Monday is two days back; said on a Saturday it is a week back.
    assert gen.resolve_when(monday, "weekday", 5)[1] == date(2023, 5, 6)
    assert gen.resolve_when(date(2023, 5, 13), "weekday", 5)[1] == date(2023, 5, 6)
    assert gen.resolve_when(date(2023, 1, 3), "month", 0)[0] == "December 2022"
    assert gen.resolve_when(monday, "week", 0)[0] == "the week before 8 May 2023"


def test_photos_chit_chat_and_changes_are_there(conversations):
    texts = [t.text for c in conversations for s in c.sessions for t in s.turns]
    assert sum("[shares a photo of " in t for t in texts) >= 100
    small_talk = {
        line[1:] for ex in gen.bank.SMALL_TALK for line in ex
    }  # an interjection may lower-case the first letter
    assert (
        sum(
            t[1:] in small_talk
            or any(t[len(i) + 1 :] in small_talk for i in gen.bank.INTERJECTIONS)
            for t in texts
        )
        / len(texts)
        > 0.2
    )
    # Reused small talk is not verbatim every time: some turns open with an interjection.
    assert any(t.startswith(tuple(gen.bank.INTERJECTIONS)) for t in texts)
    # A changed fact is asked about at its latest statement, which comes after the first one.
    latest = [
        q
        for c in conversations
        for q in c.questions
        if re.match(
            r"^(What|Where|Which|How) .* (now|current|these days|at the moment)", q.question
        )
    ]
    assert latest


def test_questions_do_not_simply_copy_their_evidence(conversations):
    stats = gen.overlap_stats(conversations)
    # People reuse a key word of what was said often, but far from always.
    assert 0.3 <= stats["share_rare_word"] <= 0.7, stats
    assert stats["share_any_word"] < 0.9, stats


def test_committed_file_is_exactly_what_the_generator_writes(conversations):
    assert gen.generate() == conversations
    assert LONG_DATASET.exists()
