"""The change feed on the wire: one `MemoryEvent` per write, pages of them, and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import Field

from ._base import ResponseModel

EventKind = Literal["state", "core", "archival", "agent", "thread"]
"""What a write changed: a keyed-state entry, a core or archival block, an agent, a thread."""

EVENT_KINDS: tuple[str, ...] = ("state", "core", "archival", "agent", "thread")

_AT = "2025-03-01T12:00:00.123456Z"


class MemoryEvent(ResponseModel):
    seq: int = Field(examples=[42])
    """Position in the tenant's log: strictly increasing, never reused. Resume after it."""
    at: datetime = Field(examples=[_AT])
    """When the write committed (UTC, microseconds)."""
    kind: str = Field(examples=["core"])
    """`state`, `core`, `archival`, `agent` or `thread` (new kinds may appear)."""
    action: str = Field(examples=["update"])
    """What happened: `set`/`delete`/`expire`/`clear` (state), `update`/`append`/`delete`
    (blocks), `create`/`delete` (agents), `create`/`update`/`append`/`delete_messages`/
    `compact`/`delete` (threads)."""
    namespace: list[str] = Field(default_factory=list, examples=[["agent", "travel"]])
    """Where: the state entry's namespace; `["agent", id]` for an agent's blocks, its threads
    and the agent itself; `[]` for the user scope and threads without an agent."""
    scope: Optional[Literal["user", "agent"]] = Field(default=None, examples=["agent"])
    """For block events: `user` or `agent`."""
    agent_id: Optional[str] = Field(default=None, examples=["travel"])
    """The agent the write concerned, if any."""
    key: str = Field(examples=["core"])
    """The state key, the block type, the agent id or the thread id. Patterns match this."""
    data: Any = Field(default=None, examples=[{"tier": "gold"}])
    """What a subscriber needs without a second read. State: the new value itself (any JSON;
    `None` for deletions). Blocks: an object with `updated_at`, `line_count`, core `content`
    (the whole text after the write) and, for appends, `start_line` and `end_line`. Threads:
    their fields (create/update), the messages added with their range (`append`), see
    docs/events.md."""
    updated_at: Optional[datetime] = Field(default=None, examples=[_AT])
    """The entry's or block's `updated_at` after the write (pass it as `expected_updated_at`)."""
    truncated: bool = Field(default=False, examples=[False])
    """True when `data` left out a value or content larger than the server's cap."""


class EventPage(ResponseModel):
    events: list[MemoryEvent]
    """Matching events in `seq` order (possibly fewer than `limit`, even none, while
    `has_more`: a page scans a bounded stretch of the log)."""
    next_after: int = Field(examples=[42])
    """Pass as `after` for the next page: everything up to it was looked at."""
    has_more: bool = Field(examples=[False])
    """False once the page reached the end of the log as it stood."""


class BlockVersion(ResponseModel):
    seq: int = Field(examples=[42])
    """The event that recorded this version."""
    at: datetime = Field(examples=[_AT])
    """When it was written."""
    action: str = Field(examples=["update"])
    """`update`, `append` or `delete` (a deletion has no content)."""
    block_type: str = Field(examples=["core"])
    """`core` or `archival`."""
    scope: Literal["user", "agent"] = Field(examples=["user"])
    """`user` or `agent`."""
    agent_id: Optional[str] = Field(default=None, examples=["travel"])
    """The owning agent for `agent` scope; `None` for `user` scope."""
    content: Optional[str] = Field(default=None, examples=["Prefers window seats"])
    """The whole text after this write (core blocks; `None` for archival blocks, deletions
    and content past the cap)."""
    updated_at: Optional[datetime] = Field(default=None, examples=[_AT])
    """The block's `updated_at` after this write."""
    line_count: Optional[int] = Field(default=None, examples=[2])
    """Lines in the block after this write."""
    start_line: Optional[int] = Field(default=None, examples=[2])
    """For appends: the first line added."""
    end_line: Optional[int] = Field(default=None, examples=[2])
    """For appends: the last line added."""


class StateVersion(ResponseModel):
    seq: int = Field(examples=[42])
    """The event that recorded this version."""
    at: datetime = Field(examples=[_AT])
    """When it was written."""
    action: str = Field(examples=["set"])
    """`set`, `delete`, `expire` or `clear` (the namespace was cleared); only `set` has a value."""
    namespace: list[str] = Field(default_factory=list, examples=[["session", "u1"]])
    """The entry's namespace."""
    key: str = Field(examples=["cart"])
    """The entry's key."""
    value: Any = Field(default=None, examples=[{"items": 2}])
    """The value this write stored (`None` for the other actions, and past the cap)."""
    updated_at: Optional[datetime] = Field(default=None, examples=[_AT])
    """The entry's `updated_at` after this write: `expected_updated_at` for a guarded revert."""
    expires_at: Optional[datetime] = Field(default=None, examples=[None])
    """When this version was to expire, if it had a TTL."""
    truncated: bool = Field(default=False, examples=[False])
    """True when the value was larger than the event cap and is left out."""
