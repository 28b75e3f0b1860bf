"""Agents, run options and memory policy on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from ._constraints import MODEL_MAX_LENGTH, Id, JsonObject, Text

ArchivalMode = Literal["tool_only", "auto"]
ToolName = Literal[
    "recall_archival_memory",
    "append_archival_memory",
    "update_core_memory",
    "remember",
    "recall",
    "forget",
]
"""A memory tool the server can offer a run's model (`agentmem.tools`)."""

_AT = "2025-03-01T12:00:00.123456Z"


class Agent(ResponseModel):
    id: str = Field(examples=["travel"])
    """The caller-chosen agent id."""
    instructions: str = Field(default="", examples=["You plan trips. Be brief."])
    """System instructions placed first in every run's model input."""
    model: Optional[str] = Field(default=None, examples=["gpt-4o-mini"])
    """Model name sent to the provider; `None` uses the server's `AGENTMEM_LLM_MODEL`."""
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"team": "bookings"}])
    """Free-form JSON kept with the agent, for the caller's own use."""
    created_at: datetime = Field(examples=[_AT])
    """When the agent was created (UTC)."""
    updated_at: datetime = Field(examples=[_AT])
    """When the agent last changed (UTC)."""


class AgentCreateRequest(RequestModel):
    agent_id: Id = Field(examples=["travel"])
    """The new agent's id: 1-128 letters, digits, `_`, `-` or `.`, unique in the tenant."""
    instructions: Text = Field(default="", examples=["You plan trips. Be brief."])
    """System instructions placed first in every run's model input."""
    model: Optional[Annotated[Text, Field(max_length=MODEL_MAX_LENGTH)]] = Field(
        default=None, examples=["gpt-4o-mini"]
    )
    """Model name sent to the provider; `None` uses the server's `AGENTMEM_LLM_MODEL`."""
    metadata: JsonObject = Field(default_factory=dict, examples=[{"team": "bookings"}])
    """Free-form JSON kept with the agent, for the caller's own use."""


class MemoryPolicy(RequestModel):
    """What memory a run puts in front of the model."""

    archival_mode: ArchivalMode = Field(default="tool_only", examples=["tool_only"])
    """`tool_only`: the model recalls through tools; `auto`: matches are injected up front."""
    archival_limit: int = Field(default=5, ge=0, le=50, examples=[5])
    """At most this many recalled matches are injected in `auto` mode."""
    archival_min_score: float = Field(default=0.25, ge=0.0, le=1.0, examples=[0.25])
    """Only matches scoring at least this are injected."""
    archival_token_budget: int = Field(default=1500, ge=0, le=32000, examples=[1500])
    """Injected matches stop before their text passes this many tokens (cl100k)."""
    include_user_core: bool = Field(default=True, examples=[True])
    """Render the tenant's `user` core block into the system message."""
    include_agent_core: bool = Field(default=True, examples=[True])
    """Render the agent's core block into the system message."""
    tools: Optional[list[ToolName]] = Field(default=None, examples=[None, ["recall", "remember"]])
    """The memory tools offered to the model, in `agentmem.tools` order. `None`: every tool in
    `tool_only` mode; in `auto` mode every tool but `recall_archival_memory` (its matches are
    injected), so an `auto` run can still write memory. `[]`: none."""


class RunOptions(RequestModel):
    """How one run assembles its model input and how long it may go on."""

    memory_policy: MemoryPolicy = Field(default_factory=MemoryPolicy)
    """What memory the run puts in front of the model."""
    history_token_budget: int = Field(default=4000, ge=0, le=200000, examples=[4000])
    """Earlier turns enter the model input newest-first until this many tokens."""
    max_steps: int = Field(default=6, ge=1, le=32, examples=[6])
    """Bound on model calls per run (each tool round trip is one step)."""
