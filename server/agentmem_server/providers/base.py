"""What the run loop needs from an LLM: one chat-completion call, OpenAI message format in and
out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

from agentmem.types import Usage


@dataclass(frozen=True)
class ChatCompletion:
    """One model answer: the assistant message (content and/or tool calls) and its token usage."""

    content: Optional[str]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: Optional[str] = None
    model: Optional[str] = None
    """The model name the provider reports having used (may differ from the one asked for)."""

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message as it goes back into the next call's input."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


@runtime_checkable
class ChatProvider(Protocol):
    """An LLM behind an OpenAI-style chat-completions interface.

    Raises `UpstreamError` when the provider fails; never returns a partial answer.
    """

    name: str

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: Optional[list[dict[str, Any]]] = None,
        *,
        tool_choice: Optional[str] = None,
    ) -> ChatCompletion: ...

    async def aclose(self) -> None: ...


def request_body(
    model: str,
    messages: list[dict[str, Any]],
    tools: Optional[list[dict[str, Any]]] = None,
    tool_choice: Optional[str] = None,
) -> bytes:
    """The exact bytes of a `/chat/completions` request.

    Serialised here rather than by httpx so that replaying a stored input sends byte-identical
    JSON regardless of the HTTP library's own encoder settings.
    """
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )
