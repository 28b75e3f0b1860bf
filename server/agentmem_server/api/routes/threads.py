"""Thread routes: the visible transcript."""

from fastapi import APIRouter

from agentmem.types import Message

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import ThreadIdPath

router = APIRouter(
    prefix="/v1/threads", tags=["threads"], responses=error_responses(401, 404, 422, 429, 500)
)


@router.get("/{thread_id}/messages")
async def list_messages(
    thread_id: ThreadIdPath, services: ServicesDep, tenant_id: TenantDep
) -> list[Message]:
    """User messages and final answers in order; hidden model input never appears here."""
    return await services.threads.messages(tenant_id, thread_id)
