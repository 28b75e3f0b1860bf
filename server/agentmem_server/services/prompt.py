"""Model-input assembly for runs: pure functions, no I/O.

Layout (docs/design.md §5), every part optional except the user message:

    system     agent instructions + one <memory_block> section per included core block
    ...        earlier turns of the thread, whole turns, newest-first within a token budget
    system     auto mode only: one <system_reminder> with the recalled archival matches
    user       this turn's message
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Optional

from agentmem.types import MemoryBlock, MemoryRecallResult, Message

from ..tokens import count_tokens

MESSAGE_OVERHEAD_TOKENS = 4
"""What a chat message costs beyond its content (role and separators, as OpenAI counts it)."""

CORE_PREAMBLE = (
    "Core memory: persistent notes kept across conversations. "
    'scope="user" is shared by all of this user\'s agents; scope="agent" is yours alone.'
)
REMINDER_PREAMBLE = (
    "Archival memories recalled for the user's next message, best match first. The user does not "
    "see this; the memories may be outdated or irrelevant, so use them only where they help."
)

# Stored memory is untrusted text: it must not be able to close its own section and continue as
# if it were instructions, so closing tags inside it are escaped.
_SECTION_TAGS = ("memory_block", "memory", "system_reminder")


def message_tokens(content: str) -> int:
    return count_tokens(content) + MESSAGE_OVERHEAD_TOKENS


def _escape(content: str) -> str:
    for tag in _SECTION_TAGS:
        content = content.replace(f"</{tag}", f"<\\/{tag}")
    return content


def iso_utc(ts: datetime) -> str:
    """UTC, always with microseconds, `Z`-suffixed like the API's JSON, so the model can copy a
    block's `updated_at` into `update_core_memory` exactly as shown."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ts(block_or_match: Any) -> str:
    return iso_utc(block_or_match.updated_at)


def render_core_section(block: MemoryBlock) -> str:
    attrs = f'scope="{block.scope}"'
    if block.scope == "agent" and block.agent_id:
        attrs += f' agent_id="{block.agent_id}"'
    attrs += f' updated_at="{_ts(block)}"'
    return f"<memory_block {attrs}>\n{_escape(block.content)}\n</memory_block>"


def render_system_message(instructions: str, core_blocks: Iterable[Optional[MemoryBlock]]) -> str:
    """Instructions, then each present core block in its own section; "" when there is nothing."""
    parts = [instructions.strip()] if instructions.strip() else []
    sections = [render_core_section(b) for b in core_blocks if b is not None]
    if sections:
        parts.append(CORE_PREAMBLE)
        parts.extend(sections)
    return "\n\n".join(parts)


def select_history(messages: Sequence[Message], token_budget: int) -> list[Message]:
    """The newest whole turns that fit in `token_budget`, in chronological order.

    A turn (the messages of one run: user + assistant) enters whole or not at all, so the model
    never sees an answer without its question; the first turn that does not fit ends the
    selection, so history stays contiguous.
    """
    turns: list[list[Message]] = []
    for m in messages:
        if turns and m.run_id is not None and turns[-1][0].run_id == m.run_id:
            turns[-1].append(m)
        else:
            turns.append([m])
    kept: list[list[Message]] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(message_tokens(m.content) for m in turn)
        if used + cost > token_budget:
            break
        kept.append(turn)
        used += cost
    return [m for turn in reversed(kept) for m in turn]


def select_matches(
    matches: Iterable[MemoryRecallResult], *, limit: int, min_score: float, token_budget: int
) -> list[MemoryRecallResult]:
    """At most `limit` matches scoring >= `min_score`, best first, whose texts fit in
    `token_budget`.

    Filtered again here rather than trusting the recall call, so the policy holds whatever the
    archival index returns; the first match that does not fit ends the list, so a lower-scoring
    short match never displaces a better long one.
    """
    ranked = sorted(
        (m for m in matches if m.score >= min_score), key=lambda m: m.score, reverse=True
    )
    kept: list[MemoryRecallResult] = []
    used = 0
    for m in ranked[:limit]:
        cost = count_tokens(m.content)
        if used + cost > token_budget:
            break
        kept.append(m)
        used += cost
    return kept


def render_match(m: MemoryRecallResult) -> str:
    attrs = f'scope="{m.scope}"'
    if m.scope == "agent" and m.agent_id:
        attrs += f' agent_id="{m.agent_id}"'
    attrs += (
        f' line="{m.line_number}" end_line="{m.end_line}" score="{m.score:.3f}"'
        f' updated_at="{_ts(m)}"'
    )
    return f"<memory {attrs}>\n{_escape(m.content)}\n</memory>"


def render_reminder(matches: Sequence[MemoryRecallResult]) -> str:
    body = "\n".join(render_match(m) for m in matches)
    return f"<system_reminder>\n{REMINDER_PREAMBLE}\n{body}\n</system_reminder>"


def build_model_input(
    *,
    instructions: str,
    core_blocks: Iterable[Optional[MemoryBlock]],
    history: Sequence[Message],
    matches: Sequence[MemoryRecallResult],
    user_message: str,
) -> list[dict[str, Any]]:
    """The messages of a run's first model call, in OpenAI chat format."""
    out: list[dict[str, Any]] = []
    system = render_system_message(instructions, core_blocks)
    if system:
        out.append({"role": "system", "content": system})
    out.extend({"role": m.role, "content": m.content} for m in history)
    if matches:
        out.append({"role": "system", "content": render_reminder(matches)})
    out.append({"role": "user", "content": user_message})
    return out
