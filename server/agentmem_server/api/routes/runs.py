"""Run routes: start a run, read a run record, replay it."""

from fastapi import APIRouter

from agentmem.types import Run, RunRequest, RunResult

from ..deps import ServicesDep, TenantDep

router = APIRouter(tags=["runs"])


@router.post("/v1/agents/{agent_id}/runs")
async def create_run(
    agent_id: str, body: RunRequest, services: ServicesDep, tenant_id: TenantDep
) -> RunResult:
    """Run the agent on one user message, starting a thread or continuing `thread_id`."""
    return await services.runs.run(tenant_id, agent_id, body)


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str, services: ServicesDep, tenant_id: TenantDep) -> Run:
    """The run record: the exact model input (hidden parts included), tools, steps, output."""
    return await services.runs.get(tenant_id, run_id)


@router.post("/v1/runs/{run_id}/replay")
async def replay_run(run_id: str, services: ServicesDep, tenant_id: TenantDep) -> RunResult:
    """Send the run's stored first model input to the provider again; stored as a new run."""
    return await services.runs.replay(tenant_id, run_id)
