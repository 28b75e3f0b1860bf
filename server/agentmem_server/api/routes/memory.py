"""Memory block and recall routes: parse, authenticate, call MemoryService."""

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Query, Response

from agentmem.types import (
    BlockVersion,
    MemoryAppendRequest,
    MemoryBlock,
    MemoryRecallRequest,
    MemoryRecallResult,
    MemoryUpdateRequest,
)

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import AgentIdQuery, BlockTypePath, IdempotencyKey, LineQuery

router = APIRouter(
    prefix="/v1/memory", tags=["memory"], responses=error_responses(401, 422, 429, 500)
)


@router.get("")
async def list_blocks(
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
    scope: Optional[Literal["user", "agent", "all"]] = Query(
        default=None,
        description="`user`, `agent` or `all` (user + the agent); "
        "default `agent` with an agent_id, else `user`.",
    ),
) -> list[MemoryBlock]:
    """Blocks in a scope. Archival blocks come with `content=""`; read them with a line range."""
    effective = scope or ("agent" if agent_id else "user")
    return await services.memory.list_blocks(tenant_id, effective, agent_id)


@router.post("/recall", responses=error_responses(400, 413))
async def recall(
    body: MemoryRecallRequest, services: ServicesDep, tenant_id: TenantDep
) -> list[MemoryRecallResult]:
    """Archival chunks matching the query, best first (read-only: idempotency keys are ignored)."""
    return await services.memory.recall(tenant_id, body)


@router.get("/{block_type}", responses=error_responses(404))
async def get_block(
    block_type: BlockTypePath,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
    start_line: LineQuery = None,
    end_line: LineQuery = None,
) -> MemoryBlock:
    """One block, or its 1-based inclusive line range (`start_line`, `end_line`)."""
    return await services.memory.get_block(tenant_id, block_type, agent_id, start_line, end_line)


@router.get("/{block_type}/history")
async def block_history(
    block_type: BlockTypePath,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Versions at most.")] = 20,
) -> list[BlockVersion]:
    """Earlier versions of the block from the change feed, newest first (core: whole content)."""
    return await services.memory.history(tenant_id, block_type, agent_id, limit)


@router.put(
    "/{block_type}", responses=error_responses(400, 409, 413), dependencies=[IdempotencyKey]
)
async def update_block(
    block_type: BlockTypePath,
    body: MemoryUpdateRequest,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> MemoryBlock:
    """Replace the block if `expected_updated_at` matches the stored one (409 otherwise)."""
    return await services.memory.update_block(
        tenant_id, block_type, body.content, body.expected_updated_at, agent_id
    )


@router.post(
    "/{block_type}/append", responses=error_responses(400, 409, 413), dependencies=[IdempotencyKey]
)
async def append(
    block_type: BlockTypePath,
    body: MemoryAppendRequest,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> MemoryBlock:
    """Add lines at the end, creating the block if missing (archival: answers only the new
    lines)."""
    return await services.memory.append(tenant_id, block_type, body.text, agent_id)


@router.delete(
    "/{block_type}", status_code=204, responses=error_responses(409), dependencies=[IdempotencyKey]
)
async def delete_block(
    block_type: BlockTypePath,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> Response:
    """Delete the block and everything derived from it; deleting a missing block is fine."""
    await services.memory.delete_block(tenant_id, block_type, agent_id)
    return Response(status_code=204)
