"""Agent routes, and running an agent: parse, authenticate, call AgentService / RunService."""

from fastapi import APIRouter, Response

from agentmem.types import Agent, AgentCreateRequest, RunRequest, RunResult

from ..deps import ServicesDep, TenantDep

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.post("", status_code=201)
async def create_agent(
    body: AgentCreateRequest, services: ServicesDep, tenant_id: TenantDep
) -> Agent:
    """Create an agent (409 if the tenant already has one with this id)."""
    return await services.agents.create(tenant_id, body)


@router.get("")
async def list_agents(services: ServicesDep, tenant_id: TenantDep) -> list[Agent]:
    return await services.agents.list(tenant_id)


@router.get("/{agent_id}")
async def get_agent(agent_id: str, services: ServicesDep, tenant_id: TenantDep) -> Agent:
    return await services.agents.get(tenant_id, agent_id)


@router.delete("/{agent_id}", status_code=204)
async def delete_agent(agent_id: str, services: ServicesDep, tenant_id: TenantDep) -> Response:
    """Delete the agent with its memory, threads, messages and runs."""
    await services.agents.delete(tenant_id, agent_id)
    return Response(status_code=204)


@router.post("/{agent_id}/runs")
async def create_run(
    agent_id: str, body: RunRequest, services: ServicesDep, tenant_id: TenantDep
) -> RunResult:
    """Run the agent on one user message, starting a thread or continuing `thread_id`."""
    return await services.runs.run(tenant_id, agent_id, body)
