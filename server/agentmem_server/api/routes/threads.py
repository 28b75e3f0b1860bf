"""Thread routes: threads as a resource, and their visible transcript."""

from typing import Annotated, Optional

from fastapi import APIRouter, Query, Response

from agentmem.types import (
    CompactResult,
    Message,
    MessagesAddRequest,
    MessagesDeleted,
    Thread,
    ThreadCompactRequest,
    ThreadCreateRequest,
    ThreadPage,
    ThreadUpdateRequest,
)
from agentmem.types._constraints import ID_CHARS, ID_MAX_LENGTH
from agentmem.types.threads import PAGE_MAX

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import IdempotencyKey, ThreadIdPath

router = APIRouter(
    prefix="/v1/threads", tags=["threads"], responses=error_responses(401, 422, 429, 500)
)

THREADS_DEFAULT_LIMIT = 20
MESSAGES_DEFAULT_LIMIT = 100


def _limit(what: str):  # type: ignore[no-untyped-def]
    return Query(ge=1, le=PAGE_MAX, description=f"At most this many {what} (1-{PAGE_MAX}).")


def _message_id(description: str):  # type: ignore[no-untyped-def]
    return Query(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_CHARS,
        description=description,
        examples=["msg_3988ec6143254243a1b2c3d4"],
    )


AgentFilter = Annotated[
    Optional[str],
    Query(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_CHARS,
        examples=["travel"],
        description="Only this agent's threads.",
    ),
]
ThreadsLimit = Annotated[int, _limit("threads")]
MessagesLimit = Annotated[int, _limit("messages")]
Cursor = Annotated[
    Optional[str],
    Query(
        min_length=1,
        max_length=512,
        description="The `next_cursor` of the previous page; leave out for the first page.",
    ),
]
BeforeQuery = Annotated[
    Optional[str],
    _message_id("Only messages before this message id (alone: the last `limit` of them)."),
]
AfterQuery = Annotated[Optional[str], _message_id("Only messages after this message id.")]


@router.post(
    "",
    status_code=201,
    responses=error_responses(400, 404, 409, 413),
    dependencies=[IdempotencyKey],
)
async def create_thread(
    body: ThreadCreateRequest, services: ServicesDep, tenant_id: TenantDep
) -> Thread:
    """Create a thread, of an agent (404 if the tenant has no such agent) or of none yet."""
    return await services.threads.create(tenant_id, body)


@router.get("")
async def list_threads(
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentFilter = None,
    limit: ThreadsLimit = THREADS_DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ThreadPage:
    """The tenant's threads (only `agent_id`'s when given), newest first, a page at a time."""
    return await services.threads.list(tenant_id, agent_id=agent_id, limit=limit, cursor=cursor)


@router.get("/{thread_id}", responses=error_responses(404))
async def get_thread(
    thread_id: ThreadIdPath, services: ServicesDep, tenant_id: TenantDep
) -> Thread:
    """One thread."""
    return await services.threads.get(tenant_id, thread_id)


@router.patch(
    "/{thread_id}", responses=error_responses(400, 404, 409, 413), dependencies=[IdempotencyKey]
)
async def update_thread(
    thread_id: ThreadIdPath, body: ThreadUpdateRequest, services: ServicesDep, tenant_id: TenantDep
) -> Thread:
    """Change the title and/or metadata; fields left out stay as they are."""
    return await services.threads.update(tenant_id, thread_id, body)


@router.delete(
    "/{thread_id}",
    status_code=204,
    responses=error_responses(404, 409),
    dependencies=[IdempotencyKey],
)
async def delete_thread(
    thread_id: ThreadIdPath, services: ServicesDep, tenant_id: TenantDep
) -> Response:
    """Delete the thread with its messages and run records."""
    await services.threads.delete(tenant_id, thread_id)
    return Response(status_code=204)


@router.get("/{thread_id}/messages", responses=error_responses(404))
async def list_messages(
    thread_id: ThreadIdPath,
    services: ServicesDep,
    tenant_id: TenantDep,
    limit: MessagesLimit = MESSAGES_DEFAULT_LIMIT,
    before: BeforeQuery = None,
    after: AfterQuery = None,
) -> list[Message]:
    """Messages in order, oldest first: the first `limit`, or those after `after`; with `before`
    alone the last `limit` before it. Hidden model input never appears here."""
    return await services.threads.page_messages(
        tenant_id, thread_id, limit=limit, before=before, after=after
    )


@router.post(
    "/{thread_id}/messages",
    status_code=201,
    responses=error_responses(400, 404, 409, 413),
    dependencies=[IdempotencyKey],
)
async def add_messages(
    thread_id: ThreadIdPath, body: MessagesAddRequest, services: ServicesDep, tenant_id: TenantDep
) -> list[Message]:
    """Append messages without a run (all or none); later runs see them as history."""
    return await services.threads.add_messages(tenant_id, thread_id, body)


@router.delete(
    "/{thread_id}/messages", responses=error_responses(404, 409), dependencies=[IdempotencyKey]
)
async def delete_messages(
    thread_id: ThreadIdPath,
    services: ServicesDep,
    tenant_id: TenantDep,
    before: BeforeQuery = None,
) -> MessagesDeleted:
    """Delete the thread's messages, or only those before the message `before`."""
    deleted = await services.threads.delete_messages(tenant_id, thread_id, before=before)
    return MessagesDeleted(deleted=deleted)


@router.post(
    "/{thread_id}/compact",
    responses=error_responses(400, 404, 409, 413, 502),
    dependencies=[IdempotencyKey],
)
async def compact_thread(
    thread_id: ThreadIdPath,
    services: ServicesDep,
    tenant_id: TenantDep,
    body: Optional[ThreadCompactRequest] = None,
) -> CompactResult:
    """Replace the messages before the last `keep_last` with one summary (written by the
    provider; the offline provider writes an extractive one) and append them to the agent's
    archival memory as dated lines, so recall still finds them. One transaction: the thread is
    either as it was or compacted. 409 if the thread changed meanwhile."""
    request = body or ThreadCompactRequest()
    return await services.threads.compact(tenant_id, thread_id, keep_last=request.keep_last)
