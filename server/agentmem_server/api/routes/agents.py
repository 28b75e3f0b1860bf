"""Agent routes, and running an agent: parse, authenticate, call AgentService / RunService."""

from fastapi import APIRouter, Response

from agentmem.types import Agent, AgentCreateRequest, RunRequest, RunResult

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import AgentIdPath, IdempotencyKey

router = APIRouter(
    prefix="/v1/agents", tags=["agents"], responses=error_responses(401, 422, 429, 500)
)


@router.post(
    "", status_code=201, responses=error_responses(400, 409, 413), dependencies=[IdempotencyKey]
)
async def create_agent(
    body: AgentCreateRequest, services: ServicesDep, tenant_id: TenantDep
) -> Agent:
    """Create an agent (409 if the tenant already has one with this id)."""
    return await services.agents.create(tenant_id, body)


@router.get("")
async def list_agents(services: ServicesDep, tenant_id: TenantDep) -> list[Agent]:
    """The tenant's agents."""
    return await services.agents.list(tenant_id)


@router.get("/{agent_id}", responses=error_responses(404))
async def get_agent(agent_id: AgentIdPath, services: ServicesDep, tenant_id: TenantDep) -> Agent:
    """One agent."""
    return await services.agents.get(tenant_id, agent_id)


@router.delete(
    "/{agent_id}",
    status_code=204,
    responses=error_responses(404, 409),
    dependencies=[IdempotencyKey],
)
async def delete_agent(
    agent_id: AgentIdPath, services: ServicesDep, tenant_id: TenantDep
) -> Response:
    """Delete the agent with its memory, threads, messages and runs."""
    await services.agents.delete(tenant_id, agent_id)
    return Response(status_code=204)


@router.post(
    "/{agent_id}/runs",
    responses=error_responses(400, 404, 409, 413, 502),
    dependencies=[IdempotencyKey],
)
async def create_run(
    agent_id: AgentIdPath, body: RunRequest, services: ServicesDep, tenant_id: TenantDep
) -> RunResult:
    """Run the agent on one user message, starting a thread or continuing `thread_id`."""
    return await services.runs.run(tenant_id, agent_id, body)
