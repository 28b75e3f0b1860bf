"""Runs, threads and messages on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from ._constraints import Id, Text
from .agents import RunOptions
from .memory import MemoryRecallResult

_AT = "2025-03-01T12:00:00.123456Z"
_RUN_ID = "run_5efd7fdb1849d007b9d6975d"
_THREAD_ID = "thr_af20e0d23a68a2fd2a4c15e4"


class Usage(ResponseModel):
    """Tokens the provider reported (zero for the offline provider)."""

    prompt_tokens: int = Field(default=0, examples=[812])
    """Tokens of model input."""
    completion_tokens: int = Field(default=0, examples=[64])
    """Tokens the model wrote."""
    total_tokens: int = Field(default=0, examples=[876])
    """Their sum."""


class RunRequest(RequestModel):
    message: Text = Field(min_length=1, examples=["Book me a window seat to Lisbon"])
    """The user's message for this turn."""
    thread_id: Optional[Id] = Field(default=None, examples=[_THREAD_ID])
    """Continue this thread (of the same agent); `None` starts a new one."""
    options: RunOptions = Field(default_factory=RunOptions)
    """How the run assembles its model input and how many model calls it may make."""


class RunResult(ResponseModel):
    id: str = Field(examples=[_RUN_ID])
    """The run's id: `runs.get(id)` shows exactly what the model saw."""
    agent_id: str = Field(examples=["travel"])
    """The agent that ran."""
    thread_id: str = Field(examples=[_THREAD_ID])
    """The thread the turn was added to (new unless `thread_id` was given)."""
    output: str = Field(examples=["Done: seat 14A, window."])
    """The model's final answer."""
    recalled: list[MemoryRecallResult] = Field(default_factory=list)
    """Matches shown to the model: injected in `auto` mode, or returned by its recall tool."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage summed over every model call of the run."""
    stop_reason: Optional[str] = Field(default=None, examples=["stop"])
    """`stop` (the model answered), `max_steps` (the run reached its last allowed model call,
    on which tools were withheld with `tool_choice="none"`), or on a replay `tool_calls` (the
    model asked for tools, which a replay does not execute)."""
    replay_of: Optional[str] = Field(default=None, examples=[None])
    """On a replay: the id of the run whose model input was re-sent."""


class ChatMessage(ResponseModel):
    """One message of the model input, in OpenAI chat format (extra fields kept verbatim)."""

    role: Literal["system", "user", "assistant", "tool"] = Field(examples=["user"])
    """Who speaks: system (instructions, memory), user, assistant (the model), tool (a result)."""
    content: Optional[str] = Field(default=None, examples=["Book me a window seat to Lisbon"])
    """The text; `None` on an assistant message that only calls tools."""
    name: Optional[str] = Field(default=None, examples=[None])
    """An optional participant name, as the provider accepts it."""
    tool_calls: Optional[list[dict[str, Any]]] = Field(default=None, examples=[None])
    """The tools an assistant message calls, in OpenAI's format."""
    tool_call_id: Optional[str] = Field(default=None, examples=[None])
    """On a tool message: the call it answers."""


class Run(ResponseModel):
    id: str = Field(examples=[_RUN_ID])
    """The run's id."""
    agent_id: str = Field(examples=["travel"])
    """The agent that ran."""
    thread_id: str = Field(examples=[_THREAD_ID])
    """The thread of the turn."""
    created_at: datetime = Field(examples=[_AT])
    """When the run started (UTC)."""
    model: Optional[str] = Field(default=None, examples=["gpt-4o-mini"])
    """The model the provider was asked for."""
    options: RunOptions
    """The options the run used."""
    model_input: list[ChatMessage]
    """The exact messages of the first model call, hidden system reminders included."""
    tools: list[dict[str, Any]] = Field(
        default_factory=list,
        examples=[[{"type": "function", "function": {"name": "recall_archival_memory"}}]],
    )
    """Tool schemas offered to the model."""
    steps: list[dict[str, Any]] = Field(
        default_factory=list,
        examples=[
            [
                {
                    "messages": [],
                    "tool_choice": None,
                    "response": {"role": "assistant", "content": "Done."},
                }
            ]
        ],
    )
    """One entry per model call, in order: `messages` (what was added to the input since the
    previous call: the assistant's tool calls and the tool results; empty for the first call,
    whose input is `model_input`), `tool_choice`, `response` (the assistant message), `usage`."""
    output: str = Field(examples=["Done: seat 14A, window."])
    """The model's final answer."""
    recalled: list[MemoryRecallResult] = Field(default_factory=list)
    """Matches shown to the model (see `RunResult.recalled`)."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage summed over every model call of the run."""
    replay_of: Optional[str] = Field(default=None, examples=[None])
    """On a replay: the id of the run whose model input was re-sent."""
    stop_reason: Optional[str] = Field(default=None, examples=["stop"])
    """Why the run ended; see `RunResult.stop_reason`."""


class Message(ResponseModel):
    """One turn of the visible transcript."""

    id: str = Field(examples=["msg_3988ec6143254243"])
    """The message's id."""
    thread_id: str = Field(examples=[_THREAD_ID])
    """The thread it belongs to."""
    role: Literal["user", "assistant", "system"] = Field(examples=["user"])
    """`user` (the message sent to a run) or `assistant` (its final answer); `threads.add_messages`
    may also write `system`, and a compaction's summary is `system`."""
    content: str = Field(examples=["Book me a window seat to Lisbon"])
    """The message text."""
    run_id: Optional[str] = Field(default=None, examples=[_RUN_ID])
    """The run that wrote it; `None` for messages written by `threads.add_messages`."""
    created_at: datetime = Field(examples=[_AT])
    """When it was written (UTC)."""
    kind: Literal["message", "summary"] = Field(default="message", examples=["message"])
    """`summary`: written by `threads.compact` in place of older messages, which moved to the
    agent's archival memory."""
