"""The change feed: pages of the log (`GET /v1/events`) and a live stream of it over SSE."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Optional

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from agentmem.types import EVENT_KINDS, EventPage

from ...errors import InvalidInput
from ...services.events import (
    EventFilter,
    Heartbeat,
    Overflow,
    Ready,
    StreamItem,
)
from ..deps import ServicesDep, TenantDep
from ..errors import error_responses

router = APIRouter(
    prefix="/v1/events", tags=["events"], responses=error_responses(401, 410, 422, 429, 500)
)

MAX_PATTERNS = 32
MAX_PATTERN_LENGTH = 255
MAX_NAMESPACE_SEGMENTS = 8
_SEGMENT = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")

AfterQuery = Annotated[
    Optional[int],
    Query(
        ge=0,
        description="Events with a larger `seq` than this. Streams: default now (live only); "
        "a `Last-Event-ID` header takes precedence.",
        examples=[0],
    ),
]
PatternsQuery = Annotated[
    list[str],
    Query(
        description="Shell globs on the event key (`customer_*`, `user_*.preferences`), "
        "repeated for several; an event matching any passes. Case-sensitive.",
        examples=[["customer_*"]],
    ),
]
KindsQuery = Annotated[
    list[str],
    Query(
        description="Only these kinds (`state`, `core`, `archival`, `agent`, `thread`), repeated.",
        examples=[["state"]],
    ),
]
NamespaceQuery = Annotated[
    Optional[str],
    Query(
        max_length=8 * 129,
        description="A namespace prefix, segments joined by `/` (`agent/travel`, `workflow`).",
        examples=["agent/travel"],
    ),
]


def event_filter(patterns: list[str], kinds: list[str], namespace: Optional[str]) -> EventFilter:
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(
            f"at most {MAX_PATTERNS} patterns, not {len(patterns)}",
            field="patterns",
            limit=MAX_PATTERNS,
        )
    for pattern in patterns:
        if not 1 <= len(pattern) <= MAX_PATTERN_LENGTH:
            raise InvalidInput(
                f"a pattern must be 1-{MAX_PATTERN_LENGTH} characters",
                field="patterns",
                limit=MAX_PATTERN_LENGTH,
            )
    for kind in kinds:
        if kind not in EVENT_KINDS:
            raise InvalidInput(
                f"kinds must be among {', '.join(EVENT_KINDS)}; not {kind!r}", field="kinds"
            )
    segments: tuple[str, ...] = ()
    if namespace:
        segments = tuple(namespace.strip("/").split("/"))
        if len(segments) > MAX_NAMESPACE_SEGMENTS or not all(_SEGMENT.match(s) for s in segments):
            raise InvalidInput(
                f"namespace must be up to {MAX_NAMESPACE_SEGMENTS} segments of 1-128 letters, "
                "digits or `_ . : @ -`, joined by `/`",
                field="namespace",
                limit=MAX_NAMESPACE_SEGMENTS,
            )
    return EventFilter(kinds=tuple(kinds), patterns=tuple(patterns), namespace=segments)


@router.get("")
async def list_events(
    services: ServicesDep,
    tenant_id: TenantDep,
    after: AfterQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page at most.")] = 100,
    patterns: PatternsQuery = [],  # noqa: B006 - FastAPI copies defaults
    kinds: KindsQuery = [],  # noqa: B006
    namespace: NamespaceQuery = None,
) -> EventPage:
    """A page of the tenant's change feed in `seq` order; continue with `after=next_after`."""
    return await services.events.list(
        tenant_id, after=after or 0, limit=limit, filter=event_filter(patterns, kinds, namespace)
    )


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_events(
    services: ServicesDep,
    tenant_id: TenantDep,
    after: AfterQuery = None,
    patterns: PatternsQuery = [],  # noqa: B006
    kinds: KindsQuery = [],  # noqa: B006
    namespace: NamespaceQuery = None,
    last_event_id: Annotated[
        Optional[str],
        Header(
            alias="Last-Event-ID",
            description="Resume after this `seq` (what an SSE client sends on reconnecting).",
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events: `ready` (its `id` is where the stream starts), then one message per
    matching event (`id: seq`, `data`: the `MemoryEvent`), `: keepalive` comments when idle,
    and `overflow` (`data: {"resume_after": seq}`) before the server closes a stream whose
    reader fell too far behind. Reconnect with `Last-Event-ID` to resume without loss."""
    if last_event_id is not None and last_event_id.strip():
        try:
            after = int(last_event_id)
        except ValueError:
            raise InvalidInput(
                "Last-Event-ID must be an event seq (an integer)", field="Last-Event-ID"
            ) from None
        if after < 0:
            raise InvalidInput("Last-Event-ID must be >= 0", field="Last-Event-ID", limit=0)
    items = services.event_hub.stream(
        tenant_id, after=after, filter=event_filter(patterns, kinds, namespace)
    )
    # The first item comes before the response starts, so a 410 or 422 is a plain error answer.
    first = await items.__anext__()
    return StreamingResponse(
        _sse(first, items),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(first: StreamItem, rest: AsyncIterator[StreamItem]) -> AsyncIterator[bytes]:
    try:
        yield _encode(first)
        async for item in rest:
            yield _encode(item)
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def _encode(item: StreamItem) -> bytes:
    if isinstance(item, Heartbeat):
        return b": keepalive\n\n"
    if isinstance(item, Ready):
        data = json.dumps({"after": item.after})
        return f"event: ready\nid: {item.after}\ndata: {data}\n\n".encode()
    if isinstance(item, Overflow):
        data = json.dumps({"resume_after": item.resume_after})
        return f"event: overflow\ndata: {data}\n\n".encode()
    return f"id: {item.seq}\ndata: {item.model_dump_json()}\n\n".encode()
