"""Memory block and recall routes: parse, authenticate, call MemoryService."""

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Query, Response

from agentmem.types import (
    AGENT_ID_PATTERN,
    BlockType,
    MemoryAppendRequest,
    MemoryBlock,
    MemoryRecallRequest,
    MemoryRecallResult,
    MemoryUpdateRequest,
)

from ..deps import ServicesDep, TenantDep

router = APIRouter(prefix="/v1/memory", tags=["memory"])

AgentIdQuery = Annotated[
    Optional[str],
    Query(pattern=AGENT_ID_PATTERN, description="Selects the agent scope when given."),
]


@router.get("")
async def list_blocks(
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
    scope: Optional[Literal["user", "agent", "all"]] = None,
) -> list[MemoryBlock]:
    """Blocks in a scope. Archival blocks come with `content=""`; read them with a line range."""
    effective = scope or ("agent" if agent_id else "user")
    return await services.memory.list_blocks(tenant_id, effective, agent_id)


@router.post("/recall")
async def recall(
    body: MemoryRecallRequest, services: ServicesDep, tenant_id: TenantDep
) -> list[MemoryRecallResult]:
    return await services.memory.recall(tenant_id, body)


@router.get("/{block_type}")
async def get_block(
    block_type: BlockType,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
    start_line: Annotated[Optional[int], Query(ge=1)] = None,
    end_line: Annotated[Optional[int], Query(ge=1)] = None,
) -> MemoryBlock:
    return await services.memory.get_block(tenant_id, block_type, agent_id, start_line, end_line)


@router.put("/{block_type}")
async def update_block(
    block_type: BlockType,
    body: MemoryUpdateRequest,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> MemoryBlock:
    """Replace the block if `expected_updated_at` matches the stored one (409 otherwise)."""
    return await services.memory.update_block(
        tenant_id, block_type, body.content, body.expected_updated_at, agent_id
    )


@router.post("/{block_type}/append")
async def append(
    block_type: BlockType,
    body: MemoryAppendRequest,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> MemoryBlock:
    return await services.memory.append(tenant_id, block_type, body.text, agent_id)


@router.delete("/{block_type}", status_code=204)
async def delete_block(
    block_type: BlockType,
    services: ServicesDep,
    tenant_id: TenantDep,
    agent_id: AgentIdQuery = None,
) -> Response:
    await services.memory.delete_block(tenant_id, block_type, agent_id)
    return Response(status_code=204)
