"""Runs, threads and messages on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from .agents import RunOptions
from .memory import MemoryRecallResult


class Usage(ResponseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class RunRequest(RequestModel):
    message: str = Field(min_length=1)
    thread_id: Optional[str] = None
    """Continue this thread; `None` starts a new one."""
    options: RunOptions = Field(default_factory=RunOptions)


class RunResult(ResponseModel):
    id: str
    agent_id: str
    thread_id: str
    output: str
    """The model's final answer."""
    recalled: list[MemoryRecallResult] = Field(default_factory=list)
    """Matches shown to the model: injected in `auto` mode, or returned by its recall tool."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage summed over every model call of the run."""
    stop_reason: Optional[str] = None
    """`stop` (the model answered), `max_steps` (the run reached its last allowed model call,
    on which tools were withheld with `tool_choice="none"`), or on a replay `tool_calls` (the
    model asked for tools, which a replay does not execute)."""
    replay_of: Optional[str] = None
    """On a replay: the id of the run whose model input was re-sent."""


class ChatMessage(ResponseModel):
    """One message of the model input, in OpenAI chat format (extra fields kept verbatim)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: Optional[str] = None
    name: Optional[str] = None
    tool_calls: Optional[list[dict[str, Any]]] = None
    tool_call_id: Optional[str] = None


class Run(ResponseModel):
    id: str
    agent_id: str
    thread_id: str
    created_at: datetime
    model: Optional[str] = None
    options: RunOptions
    model_input: list[ChatMessage]
    """The exact messages of the first model call, hidden system reminders included."""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    """Tool schemas offered to the model."""
    steps: list[dict[str, Any]] = Field(default_factory=list)
    """One entry per model call, in order: `messages` (what was added to the input since the
    previous call: the assistant's tool calls and the tool results; empty for the first call,
    whose input is `model_input`), `tool_choice`, `response` (the assistant message), `usage`."""
    output: str
    recalled: list[MemoryRecallResult] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    replay_of: Optional[str] = None
    """On a replay: the id of the run whose model input was re-sent."""
    stop_reason: Optional[str] = None
    """Why the run ended; see `RunResult.stop_reason`."""


class Message(ResponseModel):
    id: str
    thread_id: str
    role: Literal["user", "assistant"]
    content: str
    run_id: Optional[str] = None
    created_at: datetime
