"""Threads on the wire: the thread itself, its pages, and writing history without a run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, Field

from ._base import RequestModel, ResponseModel
from ._constraints import Id, JsonObject, Text
from .runs import Message

_AT = "2025-03-01T12:00:00.123456Z"
_THREAD_ID = "thr_af20e0d23a68a2fd2a4c15e4"

TITLE_MAX_LENGTH = 256
"""Characters in a thread's title."""
METADATA_MAX_BYTES = 16 * 1024
"""A thread's metadata, serialised as JSON (UTF-8)."""
MESSAGE_MAX_LENGTH = 100_000
"""Characters in one message written by `add_messages`."""
MESSAGES_PER_CALL = 1000
"""Messages one `add_messages` call may write."""
PAGE_MAX = 1000
"""The largest page `list` and `messages` return."""

MessageRole = Literal["user", "assistant", "system"]
"""Roles `add_messages` writes. `tool` is not among them: a tool result is only valid in the model
input right after the assistant message that called the tool, which the visible history does not
hold (run records keep both)."""


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}")
    return value


ThreadMetadata = Annotated[JsonObject, AfterValidator(_small_json)]
Title = Annotated[Text, Field(max_length=TITLE_MAX_LENGTH)]


class Thread(ResponseModel):
    id: str = Field(examples=[_THREAD_ID])
    """The thread's id (`thr_...`)."""
    agent_id: Optional[str] = Field(default=None, examples=["travel"])
    """The agent whose runs continue it; `None` until a run binds it."""
    title: Optional[str] = Field(default=None, examples=["Lisbon trip"])
    """A caller-chosen title."""
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"user": "u_42"}])
    """Free-form JSON kept with the thread, for the caller's own use."""
    created_at: datetime = Field(examples=[_AT])
    """When the thread was created (UTC)."""
    updated_at: datetime = Field(examples=[_AT])
    """When its title, metadata or agent last changed (UTC); messages do not count."""


class ThreadPage(ResponseModel):
    """One page of `threads.list`, newest thread first."""

    data: list[Thread] = Field(default_factory=list)
    """The threads of this page."""
    next_cursor: Optional[str] = Field(default=None, examples=[None])
    """Pass as `cursor` for the next page; `None` on the last page."""


class ThreadCreateRequest(RequestModel):
    agent_id: Optional[Id] = Field(default=None, examples=["travel"])
    """The agent the thread belongs to; `None` leaves it to the first run to bind."""
    title: Optional[Title] = Field(default=None, examples=["Lisbon trip"])
    """A title (at most 256 characters)."""
    metadata: ThreadMetadata = Field(default_factory=dict, examples=[{"user": "u_42"}])
    """Free-form JSON (at most 16 KiB serialised)."""


class ThreadUpdateRequest(RequestModel):
    """Fields left out stay as they are; `title: null` removes the title."""

    title: Optional[Title] = Field(default=None, examples=["Lisbon trip, May"])
    """The new title (at most 256 characters), or `null` to remove it."""
    metadata: Optional[ThreadMetadata] = Field(default=None, examples=[{"user": "u_42"}])
    """The new metadata, replacing the old whole (at most 16 KiB serialised)."""


class MessageInput(RequestModel):
    role: MessageRole = Field(examples=["user"])
    """`user`, `assistant` or `system`."""
    content: Text = Field(min_length=1, max_length=MESSAGE_MAX_LENGTH, examples=["Hi"])
    """The text (1-100,000 characters)."""


class MessagesAddRequest(RequestModel):
    messages: list[MessageInput] = Field(
        min_length=1, max_length=MESSAGES_PER_CALL, examples=[[{"role": "user", "content": "Hi"}]]
    )
    """The messages to append, in order (1-1,000 per call)."""


class ThreadCompactRequest(RequestModel):
    keep_last: int = Field(default=20, ge=0, le=PAGE_MAX, examples=[20])
    """Messages kept verbatim at the end of the thread (a run's turn is never split: its user
    message stays with its answer)."""


class CompactResult(ResponseModel):
    thread_id: str = Field(examples=[_THREAD_ID])
    """The compacted thread."""
    compacted: int = Field(examples=[40])
    """Messages replaced by the summary (0: nothing was older than `keep_last`)."""
    archived_lines: int = Field(default=0, examples=[40])
    """Lines appended to the agent's archival memory, one per compacted message."""
    summary: Optional[Message] = Field(default=None, examples=[None])
    """The summary message now standing in for the compacted ones."""


class MessagesDeleted(ResponseModel):
    deleted: int = Field(examples=[12])
    """How many messages were deleted."""
