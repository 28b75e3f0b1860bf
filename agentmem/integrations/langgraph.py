"""LangGraph long-term memory on agentmem: `BaseStore` over keyed state, on the server.

    from agentmem import Client
    from agentmem.integrations.langgraph import AgentmemStore

    store = AgentmemStore(Client(), index={"fields": ["text"]})   # was: InMemoryStore(...)
    graph = builder.compile(store=store)

Every item is a keyed-state entry (DESIGN §10) of the caller's tenant, in the namespace
`root + namespace` (default root `("langgraph",)`), so it is durable, shared by every process
with the key, and visible to `client.state`. Semantic `search(query=...)` ranks the items put
with index texts: the server embeds them with its own model (no embedding function here) and
keeps the vectors beside the entry. TTLs (minutes, as LangGraph counts them) are entry TTLs,
restarted by reads that ask to refresh them.

`AgentmemStore` wraps the sync `Client` (its `abatch` runs the sync calls on a worker thread);
`AsyncAgentmemStore` wraps `AsyncClient` for async graphs. Needs the `langgraph` extra:
`pip install 'agentmem-kit[langgraph]'`.

Namespace labels may hold any character but `.` (LangGraph's rule); keyed-state segments allow
`[A-Za-z0-9_:@-]` and `.`, so any other character is written as `.` + six hex digits of its code
point (`"a b"` -> `"a.000020b"`), which reads back exactly. An encoded label has at most 128
characters, and a namespace at most 7 labels under the one-segment root.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypedDict

try:
    from langgraph.store.base import (
        BaseStore,
        GetOp,
        InvalidNamespaceError,
        Item,
        ListNamespacesOp,
        Op,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
        TTLConfig,
    )
    from langgraph.store.base.embed import get_text_at_path, tokenize_path
except ModuleNotFoundError as exc:  # pragma: no cover - exercised by a clean install only
    raise ModuleNotFoundError(
        "agentmem.integrations.langgraph needs LangGraph: pip install 'agentmem-kit[langgraph]'",
        name=exc.name,
    ) from exc

from .._base_client import APIRequest
from .._exceptions import NotFoundError
from ..types.state import NAMESPACE_MAX_SEGMENTS, SEGMENT_MAX_LENGTH
from ..types.store import (
    StoreDeleteResult,
    StoreItem,
    StoreKeyRequest,
    StoreNamespaces,
    StoreNamespacesRequest,
    StorePutRequest,
    StoreSearchRequest,
)

if TYPE_CHECKING:
    from .._client import AsyncClient, Client

__all__ = [
    "DEFAULT_ROOT",
    "AgentmemStore",
    "AsyncAgentmemStore",
    "StoreIndexConfig",
    "decode_label",
    "encode_label",
]

DEFAULT_ROOT: tuple[str, ...] = ("langgraph",)
"""The keyed-state namespace every LangGraph namespace lives under."""

_PLAIN = re.compile(r"[A-Za-z0-9_:@\-]")
_ESCAPE = re.compile(r"\.([0-9a-f]{6})")


class StoreIndexConfig(TypedDict, total=False):
    """Which fields of a value are embedded when `put` is given no `index=` (LangGraph's
    `IndexConfig` without `dims`/`embed`: the server's model embeds them)."""

    fields: list[str]
    """JSON paths (`"text"`, `"notes[*].body"`, `"$"` for the whole value); default `["$"]`."""


def encode_label(label: str) -> str:
    """A LangGraph namespace label as one keyed-state segment (see the module docstring)."""
    if not isinstance(label, str) or not label:
        raise InvalidNamespaceError(f"namespace labels must be non-empty strings, not {label!r}")
    encoded = "".join(ch if _PLAIN.fullmatch(ch) else f".{ord(ch):06x}" for ch in label)
    if len(encoded) > SEGMENT_MAX_LENGTH:
        raise InvalidNamespaceError(
            f"namespace label {label[:40]!r}... is {len(encoded)} characters once encoded; "
            f"agentmem stores at most {SEGMENT_MAX_LENGTH}"
        )
    return encoded


def decode_label(segment: str) -> str:
    """The inverse of `encode_label`."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), segment)


class _Codec:
    """Namespaces, requests and items between LangGraph's shapes and the wire's (no I/O)."""

    def __init__(self, root: Sequence[str], index: Optional[StoreIndexConfig]):
        self.root = tuple(root)
        if not self.root:
            raise ValueError("root must have at least one segment")
        self.depth = NAMESPACE_MAX_SEGMENTS - len(self.root)
        fields = list((index or {}).get("fields") or ["$"]) if index is not None else []
        self.default_fields = [(f, tokenize_path(f)) for f in fields]

    def namespace(self, namespace: tuple[str, ...]) -> list[str]:
        if len(namespace) > self.depth:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} has {len(namespace)} labels; at most {self.depth} "
                f"under the root {self.root!r}"
            )
        return [*self.root, *(encode_label(label) for label in namespace)]

    def pattern(self, path: Optional[Sequence[str]]) -> list[str]:
        return [label if label == "*" else encode_label(label) for label in (path or ())]

    def decode(self, segments: Sequence[str]) -> tuple[str, ...]:
        return tuple(decode_label(s) for s in segments[len(self.root) :])

    def texts(self, op: PutOp) -> Optional[list[str]]:
        if op.value is None or op.index is False:
            return None
        paths = (
            self.default_fields
            if op.index is None
            else [(path, tokenize_path(path)) for path in op.index]
        )
        found = [text for _, tokens in paths for text in get_text_at_path(op.value, tokens)]
        return [t for t in found if t.strip()] or None

    def item(self, found: StoreItem) -> Item:
        return Item(
            value=found.value,
            key=found.key,
            namespace=self.decode(found.namespace),
            created_at=found.created_at,
            updated_at=found.updated_at,
        )

    def search_item(self, found: StoreItem) -> SearchItem:
        return SearchItem(
            namespace=self.decode(found.namespace),
            key=found.key,
            value=found.value,
            created_at=found.created_at,
            updated_at=found.updated_at,
            score=found.score,
        )

    def request(self, op: Op) -> APIRequest[Any]:
        if isinstance(op, GetOp):
            body = StoreKeyRequest(
                namespace=self.namespace(op.namespace), key=op.key, refresh_ttl=op.refresh_ttl
            )
            return APIRequest("POST", "/v1/store/get", StoreItem, json=_json(body))
        if isinstance(op, PutOp):
            if op.value is None:
                key_body = StoreKeyRequest(namespace=self.namespace(op.namespace), key=op.key)
                return APIRequest(
                    "POST", "/v1/store/delete", StoreDeleteResult, json=_json(key_body)
                )
            put = StorePutRequest(
                namespace=self.namespace(op.namespace),
                key=op.key,
                value=dict(op.value),
                index_texts=self.texts(op),
                ttl=op.ttl * 60 if op.ttl is not None else None,
            )
            return APIRequest("POST", "/v1/store/put", StoreItem, json=_json(put))
        if isinstance(op, SearchOp):
            search = StoreSearchRequest(
                namespace_prefix=self.namespace(op.namespace_prefix),
                filter=op.filter or None,
                query=op.query or None,
                limit=op.limit,
                offset=op.offset,
                refresh_ttl=op.refresh_ttl,
            )
            return APIRequest("POST", "/v1/store/search", list[StoreItem], json=_json(search))
        if isinstance(op, ListNamespacesOp):
            prefix: list[str] = []
            suffix: list[str] = []
            for condition in op.match_conditions or ():
                if condition.match_type == "prefix":
                    prefix = self.pattern(condition.path)
                else:
                    suffix = self.pattern(condition.path)
            listing = StoreNamespacesRequest(
                root=list(self.root), prefix=prefix, suffix=suffix, max_depth=op.max_depth
            )
            return APIRequest("POST", "/v1/store/namespaces", StoreNamespaces, json=_json(listing))
        raise ValueError(f"unknown store operation {type(op).__name__}")

    def result(self, op: Op, answer: Any) -> Result:
        if isinstance(op, GetOp):
            return self.item(answer) if answer is not None else None
        if isinstance(op, PutOp):
            return None
        if isinstance(op, SearchOp):
            return [self.search_item(found) for found in answer]
        if isinstance(op, ListNamespacesOp):
            # Sorted by label, as LangGraph's stores do (encoded order differs for escapes).
            names = sorted(self.decode([*self.root, *ns]) for ns in answer.namespaces)
            return names[op.offset : op.offset + op.limit]
        raise ValueError(f"unknown store operation {type(op).__name__}")


def _json(body: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
    return dumped


class AgentmemStore(BaseStore):
    """LangGraph `BaseStore` on agentmem, for graphs run with the sync `Client`.

    `index`: fields embedded when `put` gets no `index=` (omit it: only items put with
    `index=[...]` are indexed). `ttl`: LangGraph's `TTLConfig` (`default_ttl` minutes,
    `refresh_on_read`). `root`: the keyed-state namespace all items live under.
    """

    supports_ttl = True

    def __init__(
        self,
        client: Client,
        *,
        index: Optional[StoreIndexConfig] = None,
        ttl: Optional[TTLConfig] = None,
        root: Sequence[str] = DEFAULT_ROOT,
    ):
        self._client = client
        self._codec = _Codec(root, index)
        self.ttl_config = ttl

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        results: list[Result] = []
        for op in ops:
            request = self._codec.request(op)
            try:
                answer = self._client._request(request)
            except NotFoundError:
                if not isinstance(op, GetOp):
                    raise
                answer = None
            results.append(self._codec.result(op, answer))
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        # The sync client is thread-safe (httpx.Client); the loop stays free meanwhile.
        return await asyncio.to_thread(self.batch, list(ops))


class AsyncAgentmemStore(BaseStore):
    """LangGraph `BaseStore` on agentmem, for async graphs run with `AsyncClient`.

    Same arguments as `AgentmemStore`. Its sync methods cannot run on the client's event loop;
    call the `a`-prefixed ones (`aput`, `asearch`, ...), as LangGraph does in async graphs.
    """

    supports_ttl = True

    def __init__(
        self,
        client: AsyncClient,
        *,
        index: Optional[StoreIndexConfig] = None,
        ttl: Optional[TTLConfig] = None,
        root: Sequence[str] = DEFAULT_ROOT,
    ):
        self._client = client
        self._codec = _Codec(root, index)
        self.ttl_config = ttl

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        results: list[Result] = []
        for op in ops:
            request = self._codec.request(op)
            try:
                answer = await self._client._request(request)
            except NotFoundError:
                if not isinstance(op, GetOp):
                    raise
                answer = None
            results.append(self._codec.result(op, answer))
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        raise RuntimeError(
            "AsyncAgentmemStore runs on an AsyncClient: call the async methods (await "
            "store.aput/aget/asearch...), or use AgentmemStore(Client()) in sync code"
        )
