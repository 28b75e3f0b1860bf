"""Thread compaction, the parts without I/O but the provider call: which messages move, the dated
archival lines they become, and the summary that stands in for them.

    split = split_point(history, keep_last=20)        # history[:split] is compacted
    lines = archival_lines(history[:split])          # "[2025-03-01 12:00 UTC] user: ..."
    text = await summarise(provider, model, history[:split])

The offline provider is not a language model, so its summary is extractive and deterministic
(`extractive_summary`); any other provider is asked with `summary_request` (one call per part of
the transcript that fits in `SUMMARY_INPUT_TOKENS`, each refining the summary so far).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from agentmem.types import Message

from ..errors import UpstreamError
from ..providers.base import ChatProvider
from ..providers.offline import OfflineProvider
from ..tokens import count_tokens

SUMMARY_INSTRUCTIONS = (
    "You compact a conversation between a user and an AI assistant. Write a concise summary "
    "of the conversation below for the assistant to read in place of it: the user's facts, "
    "preferences, decisions, open questions and commitments, with names, numbers and dates "
    "exactly as written. Plain prose or short bullet points, no preamble. If an earlier "
    "summary is given, fold it in: the result replaces both."
)
SUMMARY_HEADER = (
    "Summary of {count} earlier messages of this conversation. The messages themselves are in "
    "archival memory as dated lines; recall them for exact wording."
)
SUMMARY_INPUT_TOKENS = 12_000
"""Transcript tokens per summarising call; a longer transcript is summarised in parts."""
EXTRACTIVE_CHARS = 2_000
"""The offline provider's summary stays under this many characters."""

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
_STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have he hello her hey "
    "hi his how i "
    "if in is it its just me my no not of ok okay on or our please she so than thanks thank that "
    "the their them then there these they this to us was we were what when where which who why "
    "will with would yes you your".split()
)


def split_point(history: Sequence[Message], keep_last: int) -> int:
    """How many leading messages a compaction keeping `keep_last` moves: all but the last
    `keep_last`, moved back so a run's turn (its user message and answer) is never split."""
    split = max(0, len(history) - keep_last)
    while 0 < split < len(history):
        run_id = history[split].run_id
        if run_id is None or history[split - 1].run_id != run_id:
            break
        split -= 1
    return split


def stamp(message: Message) -> str:
    """`[2025-03-01 12:00 UTC]`: when the message was written."""
    return message.created_at.astimezone(UTC).strftime("[%Y-%m-%d %H:%M UTC]")


def dated(message: Message) -> str:
    return f"{stamp(message)} {message.role}:"


def archival_lines(messages: Sequence[Message]) -> list[str]:
    """One line per non-empty line of each message (summaries excluded: their turns are in
    archival memory already), each starting with its message's date and role."""
    lines: list[str] = []
    for m in messages:
        if m.kind == "summary":
            continue
        prefix = dated(m)
        lines.extend(f"{prefix} {line.strip()}" for line in m.content.splitlines() if line.strip())
    return lines


def transcript_parts(messages: Sequence[Message], budget: int = SUMMARY_INPUT_TOKENS) -> list[str]:
    """The compacted messages as dated lines, cut into parts of at most `budget` tokens (a
    message longer than that is a part of its own, cut at the budget)."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for m in messages:
        if m.kind == "summary":
            continue
        text = f"{dated(m)} {m.content}"
        cost = count_tokens(text)
        if current and used + cost > budget:
            parts.append("\n".join(current))
            current, used = [], 0
        current.append(text)
        used += cost
    if current:
        parts.append("\n".join(current))
    return parts


def summary_request(earlier_summary: str, part: str) -> list[dict[str, Any]]:
    """The messages of one summarising call."""
    user = f"Earlier summary:\n{earlier_summary}\n\n" if earlier_summary else ""
    user += f"Conversation:\n{part}"
    return [
        {"role": "system", "content": SUMMARY_INSTRUCTIONS},
        {"role": "user", "content": user},
    ]


def earlier_summary(messages: Sequence[Message]) -> str:
    """The text of the summaries among the compacted messages (a thread compacted before)."""
    bodies = []
    for m in messages:
        if m.kind == "summary":
            _, _, body = m.content.partition("\n")
            bodies.append(body.strip())
    return "\n".join(b for b in bodies if b)


async def summarise(provider: ChatProvider, model: str, messages: Sequence[Message]) -> str:
    earlier = earlier_summary(messages)
    if isinstance(provider, OfflineProvider):
        return extractive_summary(earlier, messages)
    summary = earlier
    for part in transcript_parts(messages):
        completion = await provider.complete(model, summary_request(summary, part))
        text = (completion.content or "").strip()
        if not text:
            raise UpstreamError("the provider returned an empty summary; nothing was compacted")
        summary = text
    return summary


def _score(sentence: str) -> int:
    words = {w.lower() for w in _WORD_RE.findall(sentence)}
    return len(words - _STOPWORDS) + sum(1 for w in words if any(c.isdigit() for c in w))


def extractive_summary(earlier: str, messages: Sequence[Message]) -> str:
    """A deterministic summary without a language model: the user's most informative sentences
    (most distinct content words, digits counted twice; at least two), in conversation order,
    each with its date, under `EXTRACTIVE_CHARS` (the earlier summary's sentences compete too)."""
    candidates: list[tuple[int, int, str]] = []  # (score, position, text)
    position = 0
    for sentence in _SENTENCE_RE.split(earlier) if earlier else []:
        if sentence.strip():
            candidates.append((_score(sentence), position, sentence.strip()))
            position += 1
    for m in messages:
        if m.kind == "summary" or m.role != "user":
            continue
        for sentence in _SENTENCE_RE.split(" ".join(m.content.split())):
            if sentence:
                text = f"{stamp(m)} {sentence}"
                candidates.append((_score(sentence), position, text))
                position += 1
    chosen: list[tuple[int, str]] = []
    used = 0
    for score, pos, text in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if score < 2 or used + len(text) + 1 > EXTRACTIVE_CHARS:
            continue
        chosen.append((pos, text))
        used += len(text) + 1
    return "\n".join(text for _, text in sorted(chosen))
