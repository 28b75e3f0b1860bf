"""Our committed dataset: size, integrity, type coverage, paraphrase honesty, reproducibility."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evals import make_dataset
from evals.dataset import DEFAULT_DATASET, QUESTION_TYPES, format_line, load_agentmem, load_dataset
from evals.text import content_words, shared_content_words


@pytest.fixture(scope="module")
def conversations():
    return load_dataset()


def test_size_meets_the_brief(conversations):
    assert len(conversations) >= 20
    assert sum(c.turn_count for c in conversations) >= 2000
    assert sum(len(c.questions) for c in conversations) >= 300
    assert all(len(c.sessions) >= 3 for c in conversations)


def test_every_type_is_well_represented(conversations):
    counts = Counter(q.type for c in conversations for q in c.questions)
    assert set(counts) == set(QUESTION_TYPES)
    assert min(counts.values()) >= 30


def test_ids_are_unique_and_evidence_exists(conversations):
    assert len({c.conversation_id for c in conversations}) == len(conversations)
    qids = [q.question_id for c in conversations for q in c.questions]
    assert len(qids) == len(set(qids))
    for c in conversations:
        for q in c.questions:
            assert q.evidence and all(c.has_turn(t) for t in q.evidence), q.question_id
            assert q.answer.strip(), q.question_id


def test_multi_hop_evidence_spans_sessions(conversations):
    for c in conversations:
        session_of = {t.turn_id: s.session_id for s in c.sessions for t in s.turns}
        for q in c.questions:
            if q.type == "multi_hop":
                assert len({session_of[t] for t in q.evidence}) >= 2, q.question_id


def test_paraphrase_questions_share_no_content_word_with_their_evidence_line(conversations):
    for c in conversations:
        lines = c.lines()
        for q in c.questions:
            if q.type == "paraphrase":
                for n in c.evidence_lines(q):
                    assert not shared_content_words(q.question, lines[n - 1]), (
                        q.question_id,
                        lines[n - 1],
                    )


def test_temporal_answers_are_dates(conversations):
    months = (
        "January February March April May June July August September October November December"
    ).split()
    for c in conversations:
        for q in c.questions:
            if q.type == "temporal":
                assert any(m in q.answer for m in months), q.question_id


def test_updated_evidence_is_the_latest_statement(conversations):
    for c in conversations:
        for q in c.questions:
            if q.type == "updated":
                (turn,) = q.evidence
                # The superseded statement comes earlier; the evidence must not be the first
                # mention.
                assert c.line_number(turn) > 1


def test_lines_are_dated_and_attributed(conversations):
    c = conversations[0]
    first = c.sessions[0]
    assert c.lines()[0] == format_line(first.date, first.turns[0].speaker, first.turns[0].text)
    assert c.lines()[0].startswith(f"[{first.date}] {first.turns[0].speaker}: ")
    assert len(c.lines()) == c.turn_count


def test_committed_file_is_exactly_what_the_generator_writes(conversations):
    assert make_dataset.generate() == conversations


def test_format_round_trips(tmp_path, conversations):
    from evals.dataset import dump_agentmem

    path = tmp_path / "d.jsonl"
    dump_agentmem(conversations[:2], path)
    assert load_agentmem(path) == conversations[:2]


def test_unknown_evidence_is_rejected(tmp_path):
    record = json.loads(DEFAULT_DATASET.read_text(encoding="utf-8").splitlines()[0])
    record["questions"][0]["evidence"] = ["S99:1"]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="S99:1"):
        load_agentmem(path)


def test_format_line_keeps_one_turn_on_one_line():
    assert (
        format_line("8 May 2023", "Ann", "two\nlines  here") == "[8 May 2023] Ann: two lines here"
    )


def test_undated_lines_keep_the_line_numbers(conversations):
    c = conversations[0]
    plain = c.lines(dated=False)
    assert len(plain) == c.turn_count
    assert plain[0] == f"{c.sessions[0].turns[0].speaker}: {c.sessions[0].turns[0].text}"


def test_content_words_fold_inflections_and_drop_stop_words():
    assert content_words("I've been Running to the shops") == {"run", "shop"}
    assert shared_content_words("Maya's lessons", "a lesson for maya") == {"maya", "lesson"}
