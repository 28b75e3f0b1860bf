"""Memory blocks and archival recall on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from ._constraints import Id, Text, UtcDatetime

BlockType = Literal["core", "archival"]
Scope = Literal["user", "agent"]
ScopeFilter = Literal["user", "agent", "all"]
RecallMode = Literal["hybrid", "vector", "keyword"]

AGENT_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
"""An agent id: 1-128 letters, digits, `_`, `-` or `.`, chosen by the caller."""

_AT = "2025-03-01T12:00:00.123456Z"


class MemoryBlock(ResponseModel):
    id: str = Field(examples=["blk_5efd7fdb1849d007b9d6975d"])
    """Server-assigned block id (`blk_...`)."""
    block_type: BlockType = Field(examples=["core"])
    """`core` (small, rendered into every prompt) or `archival` (large, recalled by search)."""
    content: str = Field(examples=["Prefers window seats\nVegetarian"])
    """The block text, or the requested line range of it."""
    scope: Scope = Field(examples=["agent"])
    """`user` (shared by all the tenant's agents) or `agent` (one agent's private memory)."""
    agent_id: Optional[str] = Field(default=None, examples=["travel"])
    """The owning agent for `agent` scope; `None` for `user` scope."""
    created_at: datetime = Field(examples=[_AT])
    """When the block was first written (UTC)."""
    updated_at: datetime = Field(examples=[_AT])
    """Last write (UTC, microseconds). Pass it back as `expected_updated_at` to update safely."""
    line_count: int = Field(default=0, examples=[2])
    """Lines in the whole block (not only the returned range)."""
    start_line: Optional[int] = Field(default=None, examples=[1])
    """1-based first line of `content` when a line range was requested."""
    end_line: Optional[int] = Field(default=None, examples=[2])
    """1-based last line of `content` when a line range was requested."""


class MemoryUpdateRequest(RequestModel):
    content: Text = Field(examples=["Prefers window seats\nVegetarian"])
    """The new full text of the block (no NUL characters; core blocks have a size limit)."""
    expected_updated_at: Optional[UtcDatetime] = Field(examples=[_AT, None])
    """The `updated_at` last read, with its timezone; `None` means "create, I expect no block"."""


class MemoryAppendRequest(RequestModel):
    text: Text = Field(min_length=1, examples=["Prefers window seats"])
    """One or more lines to add at the end of the block (no NUL characters)."""


class MemoryRecallRequest(RequestModel):
    query: Text = Field(min_length=1, examples=["seat preference"])
    """What to look for; embedded for vector search and tokenised for keyword search."""
    agent_id: Optional[Id] = Field(default=None, examples=["travel"])
    """Selects the agent whose memory is searched (with `scope` `agent` or `all`)."""
    scope: ScopeFilter = Field(default="all", examples=["all"])
    """`user`, `agent`, or `all` (user + the given agent)."""
    limit: int = Field(default=5, ge=1, le=100, examples=[5])
    """How many matches to return at most."""
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.25])
    """Drop matches scoring below this (score in [0, 1], higher is better)."""
    mode: RecallMode = Field(default="hybrid", examples=["hybrid"])
    """`vector`, `keyword` (full-text), or `hybrid` (both, rank-fused)."""
    updated_after: Optional[UtcDatetime] = Field(default=None, examples=[_AT])
    """Only chunks written at or after this time (with its timezone)."""
    updated_before: Optional[UtcDatetime] = Field(default=None, examples=[_AT])
    """Only chunks written before this time (with its timezone)."""


class MemoryRecallResult(ResponseModel):
    content: str = Field(examples=["Prefers window seats"])
    """The matched chunk text (whole lines)."""
    score: float = Field(examples=[0.82])
    """Relevance in [0, 1], higher is better; same meaning in every mode (see docs/recall.md)."""
    block_type: BlockType = Field(default="archival", examples=["archival"])
    """Always `archival`: only archival memory is searched."""
    scope: Scope = Field(examples=["agent"])
    """The scope of the block the chunk came from."""
    agent_id: Optional[str] = Field(default=None, examples=["travel"])
    """The agent of that block; `None` for the user scope."""
    line_number: int = Field(examples=[12])
    """1-based first line of the chunk in its archival block."""
    end_line: int = Field(examples=[14])
    """1-based last line of the chunk."""
    updated_at: datetime = Field(examples=[_AT])
    """When the chunk's lines were written."""
    block_id: Optional[str] = Field(default=None, examples=["blk_5efd7fdb1849d007b9d6975d"])
    """The archival block the chunk belongs to."""
