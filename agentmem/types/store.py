"""The document store on the wire: keyed-state entries as LangGraph's `BaseStore` sees them.

`agentmem.integrations.langgraph.AgentmemStore` speaks this to `/v1/store/*`. Each item is a
keyed-state entry (DESIGN §10) whose value is a JSON object; the store adds what `BaseStore`
needs beyond `client.state`: search under a namespace prefix (value filters, offset, semantic
ranking of items put with index texts), the namespaces in use, and TTLs refreshed on read.
Namespaces here are keyed-state namespaces (segments of `[A-Za-z0-9_.:@-]`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from ._constraints import JsonObject, Text
from .state import NAMESPACE_MAX_SEGMENTS, SEGMENT_PATTERN, TTL_MAX_S, StateKey

STORE_SEARCH_MAX = 1000
"""The most items one search returns (`limit`)."""
STORE_INDEX_TEXTS_MAX = 64
"""The most texts one item is indexed under (one vector each)."""
_AT = "2025-03-01T12:00:00.123456Z"
STORE_NAMESPACES_MAX = 10_000
"""The most distinct namespaces one listing returns."""

Segment = Annotated[str, Field(pattern=SEGMENT_PATTERN)]
"""One keyed-state namespace segment."""
Pattern = Annotated[str, Field(pattern=r"^(?:[A-Za-z0-9_.:@\-]{1,128}|\*)$")]
"""A segment, or `*` (any one segment)."""


class StoreItem(ResponseModel):
    namespace: list[str] = Field(examples=[["langgraph", "memories", "u1"]])
    """The keyed-state namespace of the entry."""
    key: str = Field(examples=["pref-1"])
    """The entry's key in its namespace."""
    value: dict[str, Any] = Field(examples=[{"text": "Prefers window seats"}])
    """The stored JSON object."""
    created_at: datetime = Field(examples=[_AT])
    """When the entry was first written (UTC)."""
    updated_at: datetime = Field(examples=[_AT])
    """Its last write (UTC)."""
    expires_at: Optional[datetime] = Field(default=None, examples=[None])
    """When it expires (UTC), if it has a TTL."""
    score: Optional[float] = Field(default=None, examples=[0.71])
    """Cosine similarity to the query in [-1, 1] (semantic search only; `None` if not indexed)."""


class StorePutRequest(RequestModel):
    namespace: list[Segment] = Field(
        min_length=1, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["langgraph", "memories", "u1"]]
    )
    """The entry's namespace (at least one segment)."""
    key: StateKey = Field(examples=["pref-1"])
    """The entry's key."""
    value: JsonObject = Field(examples=[{"text": "Prefers window seats"}])
    """The JSON object to store (the keyed-state value size limit applies)."""
    index_texts: Optional[list[Text]] = Field(
        default=None, max_length=STORE_INDEX_TEXTS_MAX, examples=[["Prefers window seats"]]
    )
    """Texts to embed for `search(query=)`, one vector each; `null` or `[]` = not indexed."""
    ttl: Optional[float] = Field(default=None, gt=0, le=TTL_MAX_S, examples=[3600])
    """Seconds to live, counted again from every read that asks to refresh it."""


class StoreKeyRequest(RequestModel):
    namespace: list[Segment] = Field(
        min_length=1, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["langgraph", "memories", "u1"]]
    )
    """The entry's namespace."""
    key: StateKey = Field(examples=["pref-1"])
    """The entry's key."""
    refresh_ttl: bool = Field(default=False, examples=[False])
    """Restart the entry's TTL (get only)."""


class StoreDeleteResult(ResponseModel):
    deleted: bool = Field(examples=[True])
    """Whether an entry was there."""


class StoreSearchRequest(RequestModel):
    namespace_prefix: list[Segment] = Field(
        min_length=1, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["langgraph", "memories"]]
    )
    """Search entries in this namespace and every namespace under it."""
    filter: Optional[dict[str, Any]] = Field(
        default=None, examples=[{"kind": "note", "score": {"$gte": 3}}]
    )
    """Value fields to match: `{"kind": "note"}`, or operators `$eq $ne $gt $gte $lt $lte`."""
    query: Optional[Text] = Field(default=None, min_length=1, examples=["where to sit"])
    """Rank indexed entries by similarity to this text (entries not indexed come last)."""
    limit: int = Field(default=10, ge=1, le=STORE_SEARCH_MAX, examples=[10])
    """How many items to return at most."""
    offset: int = Field(default=0, ge=0, le=1_000_000, examples=[0])
    """How many matching items to skip."""
    refresh_ttl: bool = Field(default=False, examples=[False])
    """Restart the TTL of the items returned."""


class StoreNamespacesRequest(RequestModel):
    root: list[Segment] = Field(
        min_length=1, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["langgraph"]]
    )
    """Only namespaces under this one (the store's root)."""
    prefix: list[Pattern] = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["memories", "*"]]
    )
    """Segments right after the root that a namespace must start with; `*` matches any one."""
    suffix: list[Pattern] = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, examples=[["prefs"]]
    )
    """Segments a namespace must end with; `*` matches any one."""
    max_depth: Optional[int] = Field(default=None, ge=1, le=NAMESPACE_MAX_SEGMENTS, examples=[2])
    """Cut namespaces to this many segments after the root (then listed once each)."""


class StoreNamespaces(ResponseModel):
    namespaces: list[list[str]] = Field(examples=[[["memories", "u1"], ["memories", "u2"]]])
    """Distinct namespaces (without the root), sorted."""
    truncated: bool = Field(default=False, examples=[False])
    """More than `STORE_NAMESPACES_MAX` matched; the rest are left out."""
