"""A line unit's scaffold: who spoke and when, without what was said.

A unit whose own line says little ("Elena: Any updates on the cooking?") embeds close to its
`[date] Speaker:` prefixes, and so close to every question that names the speaker: such hubs
filled the top 5 of many questions on our long set. Each unit row stores the cosine of its vector
and its scaffold's embedding (`scaffold` column); hybrid recall orders by the cosine minus a share
of it (`services.recall.SCAFFOLD_PENALTY`; docs/recall.md, "Scaffold penalty").

    scaffold_of("[8 May 2023] Ana: Hi!\\nBen: I got the job.") == "[8 May 2023] Ana:\\nBen:"
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Optional, TypeVar

import numpy as np

from .chunking import Chunk

_NAME_WORD = r"[^\W\d_][^\W\d_.'-]*(?:[.'-][^\W\d_]*)*\.?"
_LABEL = re.compile(rf"^(?:\[[^\]\n]{{1,80}}\]\s*)?{_NAME_WORD}(?: {_NAME_WORD}){{0,2}}:(?=\s|$)")
"""An optional bracketed date, then a speaker: one to three words of letters (`Ana:`, `Dr. Mary
O'Neil:`), no digits, so numbered labels (`fact 30:`, `step 2:`), each a scaffold of its own
that would cost an embedding per line, are not speakers."""


def scaffold_of(key: str) -> Optional[str]:
    """Each line's `[date] Speaker:` prefix, text dropped; None when no line has one (the key
    is not a chat turn, and nothing is penalised)."""
    parts = []
    for line in key.split("\n"):
        m = _LABEL.match(line)
        parts.append(m.group(0) if m else "")
    return "\n".join(parts) if any(parts) else None


Embed = Callable[[Sequence[str]], Awaitable[np.ndarray]]
T = TypeVar("T")
RunSync = Callable[..., Awaitable[Any]]
"""`run(fn, *args)`: `fn(*args)` somewhere else than the event loop (a worker thread)."""


async def _call(run: Optional[RunSync], fn: Callable[..., T], *args: Any) -> T:
    if run is None:
        return fn(*args)
    result: T = await run(fn, *args)
    return result


async def scaffold_cosines(
    keys: Sequence[Optional[str]],
    vectors: np.ndarray,
    embed: Embed,
    *,
    run: Optional[RunSync] = None,
) -> list[Optional[float]]:
    """For each key (None: a chunk), the cosine of its vector (a row of `vectors`, unit length)
    and its scaffold's embedding; None without a scaffold. An append has a few distinct
    scaffolds (one per day and pair of speakers), each embedded once.

    `run`: where the per-key Python work runs (~1.5 s for an 8 MiB append's 130k keys, which
    on the event loop stalled every other request); here when None."""
    scaffolds = await _call(run, _scaffolds_of, keys)
    distinct = sorted({s for s in scaffolds if s is not None})
    if not distinct:
        return [None] * len(keys)
    embedded = await embed(distinct)
    return await _call(run, _cosines, scaffolds, vectors, distinct, embedded)


def _scaffolds_of(keys: Sequence[Optional[str]]) -> list[Optional[str]]:
    return [scaffold_of(k) if k is not None else None for k in keys]


def _cosines(
    scaffolds: Sequence[Optional[str]],
    vectors: np.ndarray,
    distinct: Sequence[str],
    embedded: np.ndarray,
) -> list[Optional[float]]:
    row = {s: i for i, s in enumerate(distinct)}
    return [
        None if s is None else float(np.dot(vectors[k], embedded[row[s]]))
        for k, s in enumerate(scaffolds)
    ]


async def with_scaffolds(
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    embed: Embed,
    *,
    run: Optional[RunSync] = None,
) -> list[Chunk]:
    """`chunks` with `scaffold` set on each unit (`scaffold_cosines`; `run` as there)."""
    cosines = await scaffold_cosines([c.key for c in chunks], vectors, embed, run=run)
    return await _call(run, _set_scaffolds, chunks, cosines)


def _set_scaffolds(chunks: Sequence[Chunk], cosines: Sequence[Optional[float]]) -> list[Chunk]:
    return [
        c if s is None else replace(c, scaffold=s) for c, s in zip(chunks, cosines, strict=True)
    ]
