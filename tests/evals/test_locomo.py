"""The LoCoMo loader on a tiny file in the published layout (the real data is never shipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.dataset import load_dataset, load_locomo, normalize_evidence

TINY = Path(__file__).parent / "data" / "locomo_tiny.json"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["D1:3"], ["D1:3"]),
        (["D8:6; D9:17"], ["D8:6", "D9:17"]),
        (["D:11:26"], ["D11:26"]),
        (["D30:05"], ["D30:5"]),
        ("D2:1 , D2:3", ["D2:1", "D2:3"]),
        (["D1:1", "D1:1"], ["D1:1"]),
        (["garbage"], []),
    ],
)
def test_normalize_evidence(raw, expected):
    assert normalize_evidence(raw) == expected


def load_tiny(**kwargs):
    with pytest.warns(UserWarning, match="1 LoCoMo questions had no resolvable evidence"):
        return load_locomo(TINY, **kwargs)


def test_sessions_are_ordered_numerically_and_dated():
    conv = load_tiny()[0]
    assert [s.session_id for s in conv.sessions] == ["D1", "D2", "D10"]
    assert conv.sessions[2].date == "8:00 pm on 2 October, 2023"
    assert conv.speakers == ("Caroline", "Melanie")
    assert conv.line_number("D10:1") == 7


def test_lines_carry_date_speaker_photo_caption_and_stay_single_line():
    lines = load_tiny()[0].lines()
    assert (
        lines[0]
        == "[1:56 pm on 8 May, 2023] Caroline: Hey Mel! I went to a support group yesterday."
    )
    assert lines[2].endswith("[shares a photo of a rainbow pin on a jacket]")
    assert (
        lines[4] == "[10:37 am on 27 June, 2023] Caroline: So proud of you! What was the distance?"
    )


def test_malformed_evidence_is_repaired():
    conv = load_tiny()[0]
    by_q = {q.question: q for q in conv.questions}
    assert by_q["How far was the charity race and when?"].evidence == ("D2:1", "D2:3")
    assert by_q["What did Melanie run for?"].evidence == ("D2:1",)
    assert by_q["What is Caroline planning for her family?"].evidence == ("D10:1",)
    assert conv.evidence_lines(by_q["How far was the charity race and when?"]) == {4, 6}


def test_categories_map_to_types_and_adversarial_is_excluded_by_default():
    conv = load_tiny()[0]
    assert [q.type for q in conv.questions] == [
        "temporal",
        "single_hop",
        "multi_hop",
        "single_hop",
        "open_domain",
    ]
    with_adv = load_tiny(include_adversarial=True)[0]
    adversarial = [q for q in with_adv.questions if q.type == "adversarial"]
    assert len(adversarial) == 1 and adversarial[0].answer == "nothing"


def test_unresolvable_questions_are_dropped_with_a_warning():
    convs = load_tiny()
    assert all(q.question != "A question whose evidence does not exist" for q in convs[0].questions)
    assert convs[1].questions[0].evidence == ("D1:1",)


def test_load_dataset_dispatches_and_requires_a_path_for_locomo():
    with pytest.warns(UserWarning):
        assert len(load_dataset(TINY, format="locomo")) == 2
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset(None, format="locomo")
    with pytest.raises(ValueError, match="unknown dataset format"):
        load_dataset(TINY, format="csv")  # type: ignore[arg-type]
