"""Chunking: every line covered, ranges ordered, both token caps held, long lines split
losslessly."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem_server.chunking import (
    Chunk,
    ChunkBudget,
    chunk_lines,
    lines_from_chunks,
    rechunk,
    split_line,
)
from agentmem_server.tokens import count_tokens


def word_counter(text: str) -> int:
    """A stand-in model tokenizer: words and punctuation marks, plus [CLS] and [SEP]."""
    return len(re.findall(r"\w+|[^\w\s]", text)) + 2


def budget(max_tokens: int = 24, model_max: int = 20) -> ChunkBudget:
    return ChunkBudget(max_tokens, count_tokens, model_max, word_counter)


line_text = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=40
    ),
    st.lists(
        st.sampled_from(["cat", "the", "Maria", "Lisbon,", "2023-05-01", "nurse.", "€", "ünïcode"]),
        max_size=60,
    ).map(" ".join),
    st.sampled_from(["", "   ", "\t"]),
    st.integers(1, 400).map(lambda n: "x" * n),  # one long "word"
)
line_lists = st.lists(line_text, max_size=40)


def check_chunks(
    lines: list[str], chunks: list[Chunk], b: ChunkBudget, first_line: int = 1
) -> None:
    for c in chunks:
        assert b.fits(c.text), c
        assert first_line <= c.start_line <= c.end_line < first_line + len(lines)
        if c.piece == 0:
            assert c.text == "\n".join(
                lines[c.start_line - first_line : c.end_line - first_line + 1]
            )
            assert c.text.split("\n")[0].strip() and c.text.split("\n")[-1].strip(), (
                "blank line at a chunk edge"
            )
        else:
            assert c.start_line == c.end_line
    keys = [(c.start_line, c.piece) for c in chunks]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), "ranges out of order"
    for i, line in enumerate(lines):
        if line.strip():
            assert any(c.start_line <= first_line + i <= c.end_line for c in chunks), (
                f"line {i + 1} not covered"
            )
    pieces: dict[int, list[Chunk]] = {}
    for c in chunks:
        if c.piece:
            pieces.setdefault(c.start_line, []).append(c)
    for number, parts in pieces.items():
        assert [p.piece for p in parts] == list(range(1, len(parts) + 1))
        assert "".join(p.text for p in parts) == lines[number - first_line]


@settings(max_examples=80, deadline=None)
@given(lines=line_lists, overlap=st.integers(0, 3), first_line=st.integers(1, 1000))
def test_chunks_cover_every_line_within_both_caps(
    lines: list[str], overlap: int, first_line: int
) -> None:
    b = budget()
    check_chunks(
        lines, chunk_lines(lines, b, overlap_lines=overlap, first_line=first_line), b, first_line
    )


@settings(max_examples=60, deadline=None)
@given(
    line=st.one_of(line_text, st.text(min_size=200, max_size=2000)).filter(lambda s: "\n" not in s)
)
def test_split_pieces_concatenate_back_to_the_line(line: str) -> None:
    b = budget(max_tokens=16, model_max=12)
    pieces = split_line(line, b)
    assert "".join(pieces) == line
    assert all(b.fits(p) and p for p in pieces)


def test_the_model_cap_binds_when_it_is_the_smaller_one() -> None:
    # 40 short words: well under 128 cl100k tokens, but 42 "model tokens" against a cap of 20.
    line = " ".join(["ab"] * 40)
    chunks = chunk_lines([line], ChunkBudget(128, count_tokens, 20, word_counter))
    assert len(chunks) > 1 and all(word_counter(c.text) <= 20 for c in chunks)


def test_consecutive_chunks_repeat_the_overlap_lines() -> None:
    lines = [f"fact number {i} is about topic {i}" for i in range(30)]
    chunks = chunk_lines(lines, budget(max_tokens=40, model_max=60), overlap_lines=1)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        assert b.start_line == a.end_line, "the next chunk starts on the previous chunk's last line"


def test_blank_lines_make_no_chunks_of_their_own() -> None:
    assert chunk_lines(["", "  ", ""], budget()) == []
    chunks = chunk_lines(["", "hello", "", "", "world", ""], budget(), overlap_lines=1)
    assert [(c.start_line, c.end_line) for c in chunks] == [(2, 5)]


def test_newlines_inside_a_line_are_refused() -> None:
    with pytest.raises(ValueError, match="line 2"):
        chunk_lines(["ok", "not\nok"], budget())


def test_stored_chunks_give_back_the_lines() -> None:
    lines = ["alpha beta", "", "x" * 300, "gamma"]
    chunks = chunk_lines(lines, budget(), overlap_lines=1)
    assert lines_from_chunks(chunks) == ["alpha beta", None, "x" * 300, "gamma"]


def _fresh(plan) -> list[Chunk]:
    return [c for c, i in plan if i is None]


def test_rechunking_unchanged_lines_keeps_every_chunk() -> None:
    b = budget(max_tokens=40, model_max=60)
    lines = [f"fact number {i} is about topic {i}" for i in range(50)]
    old = chunk_lines(lines, b, overlap_lines=1)
    plan = rechunk(old, lines, b, overlap_lines=1)
    assert _fresh(plan) == [] and [c for c, _ in plan] == old


def test_rechunking_an_edit_chunks_only_around_it_and_shifts_the_rest() -> None:
    b = budget(max_tokens=40, model_max=60)
    lines = [f"fact number {i} is about topic {i}" for i in range(60)]
    old = chunk_lines(lines, b, overlap_lines=1)
    new = lines[:30] + ["an inserted line", "fact number 30 was edited"] + lines[31:]
    plan = rechunk(old, new, b, overlap_lines=1)
    fresh = _fresh(plan)
    assert 1 <= len(fresh) <= 3
    assert any("edited" in c.text for c in fresh) and any("inserted" in c.text for c in fresh)
    for c, i in plan:
        if i is not None:
            assert c.text == old[i].text
            assert c.text == "\n".join(new[c.start_line - 1 : c.end_line]), (
                "kept chunk moved to the wrong lines"
            )
    for i in range(len(new)):
        assert any(c.start_line <= i + 1 <= c.end_line for c, _ in plan)


@settings(max_examples=60, deadline=None)
@given(
    old_lines=line_lists,
    edits=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(["insert", "delete", "change"]), line_text),
        max_size=4,
    ),
)
def test_rechunking_any_edit_yields_valid_chunks(old_lines: list[str], edits) -> None:
    b = budget()
    new = list(old_lines)
    for at, kind, text in edits:
        at = min(at, len(new))
        if kind == "insert":
            new.insert(at, text)
        elif new and at < len(new):
            if kind == "delete":
                del new[at]
            else:
                new[at] = text
    old = chunk_lines(old_lines, b, overlap_lines=1)
    plan = rechunk(old, new, b, overlap_lines=1)
    chunks = [c for c, _ in plan]
    for c in chunks:
        assert b.fits(c.text)
        if c.piece == 0:
            assert c.text == "\n".join(new[c.start_line - 1 : c.end_line])
    for i, line in enumerate(new):
        if line.strip():
            assert any(c.start_line <= i + 1 <= c.end_line for c in chunks), (
                f"line {i + 1} not covered"
            )
    for number in {c.start_line for c in chunks if c.piece}:
        parts = sorted(
            (c for c in chunks if c.piece and c.start_line == number), key=lambda c: c.piece
        )
        assert "".join(p.text for p in parts) == new[number - 1]


@pytest.mark.slow
def test_chunks_fit_minilm_which_reads_only_256_wordpieces(minilm) -> None:
    # Numbers and rare words cost MiniLM several wordpieces per cl100k token: its cap binds first.
    line = " ".join(f"x{i:05d}q-zeta/{i * 7919 % 10007}" for i in range(400))
    b = ChunkBudget(400, count_tokens, minilm.max_seq_length, minilm.count_tokens)
    chunks = chunk_lines([line, "short line"], b)
    assert "".join(c.text for c in chunks if c.start_line == 1) == line
    assert all(minilm.count_tokens(c.text) <= 256 for c in chunks)
    assert max(minilm.count_tokens(c.text) for c in chunks) > 200, (
        "the pieces should use most of the window"
    )
