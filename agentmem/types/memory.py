"""Memory blocks and archival recall on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel

BlockType = Literal["core", "archival"]
Scope = Literal["user", "agent"]
ScopeFilter = Literal["user", "agent", "all"]
RecallMode = Literal["hybrid", "vector", "keyword"]

AGENT_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
"""An agent id: 1-128 letters, digits, `_`, `-` or `.`, chosen by the caller."""


class MemoryBlock(ResponseModel):
    id: str
    """Server-assigned block id (`blk_...`)."""
    block_type: BlockType
    """`core` (small, rendered into every prompt) or `archival` (large, recalled by search)."""
    content: str
    """The block text, or the requested line range of it."""
    scope: Scope
    """`user` (shared by all the tenant's agents) or `agent` (one agent's private memory)."""
    agent_id: Optional[str] = None
    """The owning agent for `agent` scope; `None` for `user` scope."""
    created_at: datetime
    """When the block was first written (UTC)."""
    updated_at: datetime
    """Last write (UTC, microseconds). Pass it back as `expected_updated_at` to update safely."""
    line_count: int = 0
    """Lines in the whole block (not only the returned range)."""
    start_line: Optional[int] = None
    """1-based first line of `content` when a line range was requested."""
    end_line: Optional[int] = None
    """1-based last line of `content` when a line range was requested."""


class MemoryUpdateRequest(RequestModel):
    content: str
    """The new full text of the block."""
    expected_updated_at: Optional[datetime]
    """The `updated_at` last read; `None` means "create, I expect no block"."""


class MemoryAppendRequest(RequestModel):
    text: str = Field(min_length=1)
    """One or more lines to add at the end of the block."""


class MemoryRecallRequest(RequestModel):
    query: str = Field(min_length=1)
    """What to look for; embedded for vector search and tokenised for keyword search."""
    agent_id: Optional[str] = Field(default=None, pattern=AGENT_ID_PATTERN)
    """Selects the agent whose memory is searched (with `scope` `agent` or `all`)."""
    scope: ScopeFilter = "all"
    """`user`, `agent`, or `all` (user + the given agent)."""
    limit: int = Field(default=5, ge=1, le=100)
    """How many matches to return at most."""
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    """Drop matches scoring below this (score in [0, 1], higher is better)."""
    mode: RecallMode = "hybrid"
    """`vector`, `keyword` (full-text), or `hybrid` (both, rank-fused)."""
    updated_after: Optional[datetime] = None
    """Only chunks written at or after this time."""
    updated_before: Optional[datetime] = None
    """Only chunks written before this time."""


class MemoryRecallResult(ResponseModel):
    content: str
    """The matched chunk text (whole lines)."""
    score: float
    """Relevance in [0, 1], higher is better; same meaning in every mode (see docs/recall.md)."""
    block_type: BlockType = "archival"
    scope: Scope
    agent_id: Optional[str] = None
    line_number: int
    """1-based first line of the chunk in its archival block."""
    end_line: int
    """1-based last line of the chunk."""
    updated_at: datetime
    """When the chunk's lines were written."""
    block_id: Optional[str] = None
