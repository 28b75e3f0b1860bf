"""Line units (`chunking.build_units`): one per line, a contextual key, a chunk-sized result."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem_server.chunking import ChunkBudget, build_units
from agentmem_server.tokens import count_tokens


def word_counter(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text)) + 2


def budget(max_tokens: int = 48, model_max: int = 64) -> ChunkBudget:
    return ChunkBudget(max_tokens, count_tokens, model_max, word_counter)


CHAT = [
    "[1:56 pm on 8 May, 2023] Ana: Hey! How was your weekend?",
    "[1:56 pm on 8 May, 2023] Bo: Great, we went camping last weekend.",
    "",
    "[1:56 pm on 8 May, 2023] Ana: Yesterday I ran 10k.",
]


def test_one_unit_per_non_blank_line_keyed_by_the_previous_line_and_resolved_dates() -> None:
    units = build_units(CHAT, budget(), first_line=41)
    assert [u.key for u in units] == [
        "[8 May 2023] Ana: Hey! How was your weekend?",
        "[8 May 2023] Ana: Hey! How was your weekend?\n"
        "Bo: Great, we went camping last weekend (the weekend before 8 May 2023).",
        # the blank line is skipped for the key, but ends the returned context
        "[8 May 2023] Bo: Great, we went camping last weekend.\n"
        "Ana: Yesterday (7 May 2023) I ran 10k.",
    ]
    assert [(u.start_line, u.end_line) for u in units] == [(41, 42), (41, 42), (44, 44)]
    assert units[0].text == "\n".join(CHAT[:2])  # the text is returned as written


def test_a_unit_returns_its_neighbours_of_the_same_append_only() -> None:
    lines = [f"line {i} says something" for i in range(5)]
    units = build_units(lines, budget(), first_line=10)
    assert [(u.start_line, u.end_line) for u in units] == [
        (10, 11),
        (10, 12),
        (11, 13),
        (12, 14),
        (13, 14),
    ]
    assert units[0].key == "line 0 says something"  # nothing before the append's first line
    assert units[2].text == "\n".join(lines[1:4])


def test_neighbours_are_dropped_to_keep_the_result_within_its_token_cap() -> None:
    lines = ["short", "the line " * 10, "a much longer neighbour " * 5]
    units = build_units(lines, budget(max_tokens=48), context_tokens=40)
    middle = units[1]
    assert (middle.start_line, middle.end_line) == (1, 2)  # the longer side went first
    assert count_tokens(middle.text) <= 40


def test_a_date_earlier_in_the_append_dates_the_lines_after_it() -> None:
    units = build_units(["Session of 8 May 2023", "2023-05-08 notes", "we met yesterday"], budget())
    assert units[2].key.endswith("we met yesterday (7 May 2023)")


def test_a_line_too_long_for_a_chunk_becomes_pieces_each_its_own_unit() -> None:
    long = " ".join(f"word{i}" for i in range(60))
    units = build_units(["before", long, "after"], budget(max_tokens=24, model_max=20))
    pieces = [u for u in units if u.start_line == 2]
    assert len(pieces) > 1 and [u.piece for u in pieces] == list(range(1, len(pieces) + 1))
    assert " ".join(p.text.strip() for p in pieces) == long
    assert units[-1].key == "after"  # a long line is no one's context
    assert (units[0].start_line, units[0].end_line) == (1, 1)


def test_newlines_inside_a_line_are_refused() -> None:
    with pytest.raises(ValueError, match="line 3"):
        build_units(["a", "b", "c\nd"], budget())


line_text = st.lists(
    st.sampled_from(["Ana:", "yesterday", "the", "[8 May 2023]", "last", "week", "lake,", "€"]),
    max_size=40,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(line_text, max_size=12))
def test_every_key_fits_the_model_and_every_text_is_the_lines_as_written(lines) -> None:
    b = budget(max_tokens=24, model_max=20)
    units = build_units(lines, b)
    covered = {u.start_line for u in units if u.piece} | {
        n for u in units if not u.piece for n in range(u.start_line, u.end_line + 1)
    }
    assert covered >= {i + 1 for i, line in enumerate(lines) if line.strip()}
    for u in units:
        assert b.count_model_tokens(u.index_text) <= b.model_max_tokens
        if not u.piece:
            assert u.text == "\n".join(lines[u.start_line - 1 : u.end_line])
