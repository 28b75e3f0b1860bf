"""Archival lines -> chunks: token-bounded windows of whole lines that know their line range.

`build_units` makes line units instead (one per line, with an index key of its own; see there).

Pure functions, no I/O. Every chunk respects two caps: `max_tokens` cl100k tokens (the chunk size
in settings) and the embedder's own maximum sequence length counted with its own tokenizer.
The second cap matters because all-MiniLM-L6-v2 reads 256 wordpieces and silently drops the rest:
a longer chunk would only be searchable by its beginning.

    budget = ChunkBudget(128, count_tokens, embedder.max_seq_length, embedder.count_tokens)
    chunks = chunk_lines(lines, budget, overlap_lines=1)

A line too long for one chunk is split into pieces (all carrying its line number), never
truncated. Blank lines are covered by the ranges around them but never start or end a chunk.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from typing import Optional

from .dates import date_prefix, line_date, render, resolve_relative
from .tokens import TokenCounter


@dataclass(frozen=True)
class Chunk:
    text: str
    """The chunk's lines joined with "\\n" (or one piece of a long line)."""
    start_line: int
    """1-based number of the first line."""
    end_line: int
    """1-based number of the last line (inclusive)."""
    piece: int = 0
    """0 for whole lines; 1, 2, ... for the consecutive pieces of one line split to fit."""
    key: Optional[str] = None
    """A line unit's index key (`build_units`): what is embedded and searched by keyword
    instead of `text`. None for a chunk, whose text is its key."""
    scaffold: Optional[float] = None
    """A line unit's cosine to its key's `[date] Speaker:` scaffold (`scaffold.with_scaffolds`,
    once embedded); None for a chunk, or a key without one."""

    @property
    def index_text(self) -> str:
        """What the index embeds and searches: the key of a unit, the text of a chunk."""
        return self.text if self.key is None else self.key


@dataclass(frozen=True)
class ChunkBudget:
    """The two caps a chunk must respect and the counters that measure them."""

    max_tokens: int
    count_tokens: TokenCounter
    """cl100k (or any) counter for `max_tokens`."""
    model_max_tokens: int
    """The embedder's max sequence length, special tokens included."""
    count_model_tokens: TokenCounter
    """The embedder's own counter, special tokens included (so counting "" gives their number)."""
    count_model_tokens_batch: Optional[Callable[[Sequence[str]], list[int]]] = None
    """The same counts for many texts in one call (a Rust tokenizer's batch: one call per line
    was most of the chunking time of many small lines); None counts one by one."""

    def model_counts(self, texts: Sequence[str]) -> list[int]:
        if self.count_model_tokens_batch is not None and len(texts) > 1:
            return self.count_model_tokens_batch(texts)
        return [self.count_model_tokens(t) for t in texts]

    def fits(self, text: str) -> bool:
        return (
            self.count_tokens(text) <= self.max_tokens
            and self.count_model_tokens(text) <= self.model_max_tokens
        )


def text_hash(text: str) -> str:
    """What an index row's vector is known by: the hash of the text it embeds."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _is_blank(line: str) -> bool:
    return not line.strip()


class _Lines:
    """Per-line token counts, computed once; the estimates a chunk is grown with."""

    def __init__(self, lines: Sequence[str], budget: ChunkBudget):
        self.lines = lines
        self.budget = budget
        self.model_overhead = budget.count_model_tokens("")
        self._tokens = [budget.count_tokens(line) for line in lines]
        self._model = [n - self.model_overhead for n in budget.model_counts(lines)]

    def tokens(self, i: int) -> int:
        return self._tokens[i]

    def span_tokens(self, lo: int, hi: int) -> int:
        """Estimated cl100k tokens of lines `[lo, hi)` joined by newlines."""
        return sum(self._tokens[lo:hi]) + (hi - lo - 1)

    def fits_alone(self, i: int) -> bool:
        b = self.budget
        return (
            self._tokens[i] <= b.max_tokens
            and self._model[i] + self.model_overhead <= b.model_max_tokens
        )

    def grow(self, start: int, *, verify: bool = True) -> int:
        """End (exclusive) of the longest chunk from `start` that fits; always takes `start`.
        Without `verify` the end is the estimate's (`chunk_lines` checks all chunks at once)."""
        b, n = self.budget, len(self.lines)
        tokens, model = self._tokens[start], self.model_overhead + self._model[start]
        end = start + 1
        while end < n and self.fits_alone(end):
            # +1: the joining newline is usually a token of its own in cl100k.
            t, m = tokens + 1 + self._tokens[end], model + self._model[end]
            if t > b.max_tokens or m > b.model_max_tokens:
                break
            tokens, model, end = t, m, end + 1
        # The sums are estimates (BPE can merge across a newline); the joined text decides.
        while verify and end - start > 1 and not b.fits("\n".join(self.lines[start:end])):
            end -= 1
        return end


class ChunkingStopped(RuntimeError):
    """`stop()` said to give up (the server is shutting down)."""


def chunk_lines(
    lines: Sequence[str],
    budget: ChunkBudget,
    *,
    overlap_lines: int = 0,
    first_line: int = 1,
    stop: Optional[Callable[[], bool]] = None,
) -> list[Chunk]:
    """Chunks covering every non-blank line, numbered from `first_line`.

    Each chunk after the first repeats up to `overlap_lines` lines of the one before, so a fact
    that sits on a boundary is found in both.
    """
    for i, line in enumerate(lines):
        if "\n" in line:
            raise ValueError(f"line {first_line + i} contains a newline; pass lines, not text")
    costs = _Lines(lines, budget)
    # The estimates almost always hold: check every chunk they make in one batch, and only if
    # one does not fit, chunk again checking each chunk as it grows (the same result either way).
    chunks = _chunk(costs, overlap_lines, first_line, verify=False, stop=stop)
    if _all_fit(chunks, budget):
        return chunks
    return _chunk(costs, overlap_lines, first_line, verify=True, stop=stop)


def _all_fit(chunks: list[Chunk], budget: ChunkBudget) -> bool:
    whole = [c.text for c in chunks if not c.piece]  # pieces were checked as they were cut
    if any(budget.count_tokens(t) > budget.max_tokens for t in whole):
        return False
    return all(n <= budget.model_max_tokens for n in budget.model_counts(whole))


def _chunk(
    costs: _Lines,
    overlap_lines: int,
    first_line: int,
    *,
    verify: bool,
    stop: Optional[Callable[[], bool]] = None,
) -> list[Chunk]:
    lines, budget = costs.lines, costs.budget
    chunks: list[Chunk] = []
    covered, prev_start, n = 0, -1, len(lines)
    while covered < n:
        if stop is not None and stop():
            raise ChunkingStopped("chunking stopped: the server is shutting down")
        if _is_blank(lines[covered]):
            covered += 1
            continue
        if not costs.fits_alone(covered):
            number = first_line + covered
            pieces = split_line(lines[covered], budget)
            chunks.extend(Chunk(p, number, number, k) for k, p in enumerate(pieces, start=1))
            prev_start = covered
            covered += 1
            continue
        start = max(covered - overlap_lines, prev_start + 1)
        while start < covered and (_is_blank(lines[start]) or not costs.fits_alone(start)):
            start += 1
        end = costs.grow(start, verify=verify)
        if end <= covered:  # the repeated lines left no room for a new one
            start = covered
            end = costs.grow(start, verify=verify)
        last = end
        while last - 1 > start and _is_blank(lines[last - 1]):
            last -= 1
        chunks.append(
            Chunk("\n".join(lines[start:last]), first_line + start, first_line + last - 1)
        )
        prev_start, covered = start, end
    return chunks


_WORDS = re.compile(r"\S+\s*|\s+")


def split_line(line: str, budget: ChunkBudget) -> list[str]:
    """Consecutive pieces of `line`, each within the budget; `"".join(pieces) == line`."""
    words = _WORDS.findall(line)
    overhead = budget.count_model_tokens("")
    # Each word counted once, the model's counts in one batch (a long line has many words).
    word_tokens = [budget.count_tokens(w) for w in words]
    word_model = budget.model_counts(words)
    pieces: list[str] = []
    i = 0
    while i < len(words):
        if not budget.fits(words[i]):
            head, rest = _split_word(words[i], budget)
            pieces.append(head)
            words[i] = rest
            word_tokens[i] = budget.count_tokens(rest)
            word_model[i] = budget.count_model_tokens(rest)
            continue
        tokens, model, j = 0, overhead, i
        while j < len(words):
            t = tokens + word_tokens[j]
            m = model + word_model[j] - overhead
            if j > i and (t > budget.max_tokens or m > budget.model_max_tokens):
                break
            tokens, model, j = t, m, j + 1
        while j - i > 1 and not budget.fits("".join(words[i:j])):
            j -= 1
        pieces.append("".join(words[i:j]))
        i = j
    return pieces


def _split_word(word: str, budget: ChunkBudget) -> tuple[str, str]:
    """The longest prefix of a word that fits (at least one character), and the rest."""
    lo, hi = (
        1,
        len(word),
    )  # fits(word[:lo]) is assumed; a single character always fits a sane budget
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if budget.fits(word[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return word[:lo], word[lo:]


# ---- line units -----------------------------------------------------------------------------


CONTEXT_TOKENS_PER_CHUNK = 2
"""A unit returns its line with up to one neighbour each side while the whole stays within this
many times the chunk size (cl100k): about a chunk's tokens per result on chat lines."""


def build_units(
    lines: Sequence[str],
    budget: ChunkBudget,
    *,
    first_line: int = 1,
    context_lines: int = 1,
    context_tokens: Optional[int] = None,
    stop: Optional[Callable[[], bool]] = None,
) -> list[Chunk]:
    """One unit per non-blank line, numbered from `first_line`: a `Chunk` whose `key` is what
    the index embeds and searches, and whose text and line range are what a recall returns.

    - key: the previous non-blank line, then the line itself with relative time phrases resolved
      against its date (`dates.py`); a repeated date prefix is written once, as `[7 May 2023]`.
      The previous turn is what makes a short reply ("Yes! Last weekend.") findable.
    - text: the line with up to `context_lines` lines each side, within `context_tokens` cl100k
      tokens (default `CONTEXT_TOKENS_PER_CHUNK` x the chunk size).

    Units never reach outside `lines` (one append): the key and the text of its first line hold
    no line of an earlier append. A line too long for one chunk becomes its pieces, as
    `chunk_lines` cuts them, each its own unit.
    """
    for i, line in enumerate(lines):
        if "\n" in line:
            raise ValueError(f"line {first_line + i} contains a newline; pass lines, not text")
    costs = _Lines(lines, budget)
    cap = (
        context_tokens
        if context_tokens is not None
        else CONTEXT_TOKENS_PER_CHUNK * budget.max_tokens
    )
    planned: list[tuple[Chunk, str, str]] = []
    """Each unit with its key without the previous line and its line as written, before the
    model cap is checked (in one batch): a key too long falls back to those (the last fits)."""
    day = None
    previous: Optional[int] = None
    for i, line in enumerate(lines):
        if stop is not None and stop():
            raise ChunkingStopped("chunking stopped: the server is shutting down")
        if _is_blank(line):
            continue
        number = first_line + i
        said_on = line_date(line)
        if said_on is not None:
            day = said_on
        if not costs.fits_alone(i):
            for k, piece in enumerate(split_line(line, budget), start=1):
                resolved = resolve_relative(piece, day) if day is not None else piece
                planned.append((Chunk(piece, number, number, k, resolved), piece, piece))
            previous = i
            continue
        prefix, body = date_prefix(line)
        if day is not None:
            body = resolve_relative(body, day)
        head = f"[{render(said_on)}] " if prefix and said_on is not None else ""
        own = key = head + body
        if previous is not None and costs.fits_alone(previous):
            before_prefix, before = date_prefix(lines[previous])
            if before_prefix and line_date(lines[previous]) != said_on:
                before = lines[previous]  # said on another day: keep its own date
            key = head + before + "\n" + body
        lo, hi = _context_range(costs, i, context_lines, cap)
        text = "\n".join(lines[lo:hi])
        planned.append((Chunk(text, first_line + lo, first_line + hi - 1, 0, key), own, line))
        previous = i
    counts = budget.model_counts([unit.index_text for unit, _, _ in planned])
    units = []
    for (unit, own, written), n in zip(planned, counts, strict=True):
        if n > budget.model_max_tokens:
            fits = budget.count_model_tokens(own) <= budget.model_max_tokens
            unit = dataclass_replace(unit, key=own if fits else written)
        units.append(unit)
    return units


def _context_range(costs: _Lines, i: int, context_lines: int, cap: int) -> tuple[int, int]:
    """`[lo, hi)`: line `i` and the neighbours its unit returns (whole, non-blank lines that fit
    a chunk alone), widest first, within `cap` tokens."""
    lines = costs.lines

    def usable(j: int) -> bool:
        return 0 <= j < len(lines) and not _is_blank(lines[j]) and costs.fits_alone(j)

    before = 0
    while before < context_lines and usable(i - before - 1):
        before += 1
    after = 0
    while after < context_lines and usable(i + after + 1):
        after += 1
    while True:
        lo, hi = i - before, i + after + 1
        if costs.span_tokens(lo, hi) <= cap or (before == 0 and after == 0):
            return lo, hi
        # Give up the longer side's farthest line first.
        if after and (not before or costs.tokens(hi - 1) >= costs.tokens(lo)):
            after -= 1
        else:
            before -= 1


# ---- re-chunking an edited block -----------------------------------------------------------


def lines_from_chunks(chunks: Sequence[Chunk]) -> list[Optional[str]]:
    """The block's lines as its stored chunks show them; `None` where no chunk covers a line."""
    size = max((c.end_line for c in chunks), default=0)
    lines: list[Optional[str]] = [None] * size
    pieces: dict[int, list[tuple[int, str]]] = {}
    for c in chunks:
        if c.piece:
            pieces.setdefault(c.start_line, []).append((c.piece, c.text))
            continue
        for offset, text in enumerate(c.text.split("\n")):
            lines[c.start_line - 1 + offset] = text
    for number, parts in pieces.items():
        lines[number - 1] = "".join(text for _, text in sorted(parts))
    return lines


def rechunk(
    old_chunks: Sequence[Chunk],
    new_lines: Sequence[str],
    budget: ChunkBudget,
    *,
    overlap_lines: int = 0,
) -> list[tuple[Chunk, Optional[int]]]:
    """Chunks for `new_lines` that keep every old chunk whose lines are unchanged.

    Returns `(chunk, i)` pairs in line order: `i` is the index in `old_chunks` of the chunk kept
    (same text, moved to its new line numbers), or `None` for a chunk that needs embedding. Only
    the changed regions are chunked afresh, so an edit costs a few embeddings, not the block's.
    """
    old_lines = lines_from_chunks(old_chunks)
    # autojunk keeps the diff near-linear on big blocks; a popular line then anchors less, no harm.
    matcher = difflib.SequenceMatcher(None, old_lines, list(new_lines))
    blocks = [m for m in matcher.get_matching_blocks() if m.size]
    starts = [m.a for m in blocks]
    n = len(new_lines)
    kept: list[tuple[Chunk, Optional[int]]] = []
    whole_kept = [False] * n  # lines inside a kept whole-line chunk: safe to repeat as overlap
    piece_kept = [False] * n
    for index, chunk in enumerate(old_chunks):
        s, e = chunk.start_line - 1, chunk.end_line - 1
        k = bisect.bisect_right(starts, s) - 1
        if k < 0 or e >= blocks[k].a + blocks[k].size:
            continue
        shift = blocks[k].b - blocks[k].a
        kept.append(
            (
                Chunk(chunk.text, chunk.start_line + shift, chunk.end_line + shift, chunk.piece),
                index,
            )
        )
        flags = piece_kept if chunk.piece else whole_kept
        for i in range(s + shift, e + shift + 1):
            flags[i] = True

    fresh: list[tuple[Chunk, Optional[int]]] = []
    i = 0
    while i < n:
        if whole_kept[i] or piece_kept[i] or _is_blank(new_lines[i]):
            i += 1
            continue
        j = i
        while j < n and not (whole_kept[j] or piece_kept[j]):
            j += 1
        lo, hi = i, j
        while lo > i - overlap_lines and lo > 0 and whole_kept[lo - 1] and not piece_kept[lo - 1]:
            lo -= 1
        while hi < j + overlap_lines and hi < n and whole_kept[hi] and not piece_kept[hi]:
            hi += 1
        for c in chunk_lines(
            new_lines[lo:hi], budget, overlap_lines=overlap_lines, first_line=lo + 1
        ):
            fresh.append((c, None))
        i = j
    return sorted(
        kept + fresh, key=lambda pair: (pair[0].start_line, pair[0].piece, pair[0].end_line)
    )
