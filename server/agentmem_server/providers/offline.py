"""`OfflineProvider`: a deterministic stand-in for demos and tests. NOT a language model.

It reads nothing but its input and answers by describing it: it echoes the user's message and
lists the memory it was shown (core blocks, injected archival matches, recall tool results), so
`make run` shows the whole memory pipeline working without any LLM, key or network. When it is
offered `recall_archival_memory` it calls it once with the user's message, so `tool_only` runs
exercise the tool loop too. It never writes memory. Token usage is reported as zero.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from .base import ChatCompletion

BANNER = "[offline provider: this is an echo, not a language model]"

_BLOCK_RE = re.compile(r"<memory_block ([^>]*)>\n(.*?)\n</memory_block>", re.S)
_MATCH_RE = re.compile(r"<memory ([^>]*)>\n(.*?)\n</memory>", re.S)
_ATTR_RE = re.compile(r'(\w+)="([^"]*)"')
_PREVIEW_CHARS = 160


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


class OfflineProvider:
    name = "offline"

    async def aclose(self) -> None:
        return None

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: Optional[list[dict[str, Any]]] = None,
        *,
        tool_choice: Optional[str] = None,
    ) -> ChatCompletion:
        last_user = max(
            (i for i, m in enumerate(messages) if m.get("role") == "user"), default=None
        )
        user_text = messages[last_user]["content"] if last_user is not None else ""
        this_turn = messages[last_user + 1 :] if last_user is not None else []
        offered = {t.get("function", {}).get("name") for t in tools or []}
        already_recalled = any(m.get("role") == "tool" for m in this_turn)
        if (
            "recall_archival_memory" in offered
            and not already_recalled
            and tool_choice != "none"
            and user_text
        ):
            call = {
                "id": "call_offline_recall",
                "type": "function",
                "function": {
                    "name": "recall_archival_memory",
                    "arguments": json.dumps({"query": user_text}),
                },
            }
            return ChatCompletion(
                content=None, tool_calls=[call], finish_reason="tool_calls", model=model
            )
        return ChatCompletion(
            content=self._describe(user_text, messages), finish_reason="stop", model=model
        )

    def _describe(self, user_text: str, messages: list[dict[str, Any]]) -> str:
        lines = [BANNER, f"You said: {user_text}"]
        seen: list[str] = []
        for m in messages:
            content = m.get("content") or ""
            if m.get("role") == "system":
                for attrs, body in _BLOCK_RE.findall(content):
                    a = dict(_ATTR_RE.findall(attrs))
                    seen.append(f"- core memory ({a.get('scope', '?')} scope): {_preview(body)}")
                for attrs, body in _MATCH_RE.findall(content):
                    a = dict(_ATTR_RE.findall(attrs))
                    seen.append(
                        f"- archival memory ({a.get('scope', '?')} scope, "
                        f"line {a.get('line', '?')}, score {a.get('score', '?')}): "
                        f"{_preview(body)}"
                    )
            elif m.get("role") == "tool":
                try:
                    result = json.loads(content)
                except ValueError:
                    continue
                for match in result.get("matches", []) if isinstance(result, dict) else []:
                    seen.append(
                        f"- recalled by tool ({match.get('scope', '?')} scope, "
                        f"line {match.get('line_number', '?')}, "
                        f"score {match.get('score', 0):.3f}): "
                        f"{_preview(str(match.get('content', '')))}"
                    )
        lines.append("Memory in my input:" if seen else "Memory in my input: none.")
        lines.extend(seen)
        return "\n".join(lines)
