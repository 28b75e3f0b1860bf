"""Run routes: read a run record, replay it. (Starting a run is `POST /v1/agents/{id}/runs`,
in agents.py.)"""

from fastapi import APIRouter

from agentmem.types import Run, RunResult

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import IdempotencyKey, RunIdPath

router = APIRouter(
    prefix="/v1/runs", tags=["runs"], responses=error_responses(401, 404, 422, 429, 500)
)


@router.get("/{run_id}")
async def get_run(run_id: RunIdPath, services: ServicesDep, tenant_id: TenantDep) -> Run:
    """The run record: the exact model input (hidden parts included), tools, steps, output."""
    return await services.runs.get(tenant_id, run_id)


@router.post("/{run_id}/replay", responses=error_responses(409, 502), dependencies=[IdempotencyKey])
async def replay_run(run_id: RunIdPath, services: ServicesDep, tenant_id: TenantDep) -> RunResult:
    """Send the run's stored first model input to the provider again; stored as a new run."""
    return await services.runs.replay(tenant_id, run_id)
