"""Agents, run options and memory policy on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from .memory import AGENT_ID_PATTERN

ArchivalMode = Literal["tool_only", "auto"]


class Agent(ResponseModel):
    id: str
    """The caller-chosen agent id."""
    instructions: str = ""
    """System instructions placed first in every run's model input."""
    model: Optional[str] = None
    """Model name sent to the provider; `None` uses the server's `AGENTMEM_LLM_MODEL`."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class AgentCreateRequest(RequestModel):
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    instructions: str = ""
    model: Optional[str] = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class MemoryPolicy(RequestModel):
    """What memory a run puts in front of the model."""

    archival_mode: ArchivalMode = "tool_only"
    """`tool_only`: the model recalls through tools; `auto`: matches are injected up front."""
    archival_limit: int = Field(default=5, ge=0, le=50)
    """At most this many recalled matches are injected in `auto` mode."""
    archival_min_score: float = Field(default=0.25, ge=0.0, le=1.0)
    """Only matches scoring at least this are injected."""
    archival_token_budget: int = Field(default=1500, ge=0, le=32000)
    """Injected matches stop before their text passes this many tokens (cl100k)."""
    include_user_core: bool = True
    """Render the tenant's `user` core block into the system message."""
    include_agent_core: bool = True
    """Render the agent's core block into the system message."""


class RunOptions(RequestModel):
    memory_policy: MemoryPolicy = Field(default_factory=MemoryPolicy)
    history_token_budget: int = Field(default=4000, ge=0, le=200000)
    """Earlier turns enter the model input newest-first until this many tokens."""
    max_steps: int = Field(default=6, ge=1, le=32)
    """Bound on model calls per run (each tool round trip is one step)."""
