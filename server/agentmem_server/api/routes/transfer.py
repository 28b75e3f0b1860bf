"""Export and import of a tenant's whole memory as JSON Lines (see services/transfer.py)."""

from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...services.transfer import export_records, import_records
from ..deps import ServicesDep, TenantDep

router = APIRouter(prefix="/v1", tags=["transfer"])


@router.get("/export", response_class=StreamingResponse)
async def export(services: ServicesDep, tenant_id: TenantDep) -> StreamingResponse:
    """Everything the caller's tenant owns: agents, core and archival blocks, threads, runs."""
    return StreamingResponse(
        export_records(services.sql, tenant_id), media_type="application/x-ndjson"
    )


async def _lines(request: Request) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in request.stream():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
    if pending:
        yield pending


@router.post("/import")
async def import_(
    request: Request, services: ServicesDep, tenant_id: TenantDep
) -> dict[str, dict[str, int]]:
    """Load an export into the caller's tenant; archival text is re-embedded with this server's model."""
    counts = await import_records(services.sql, services.memory, tenant_id, _lines(request))
    return {"counts": counts}
