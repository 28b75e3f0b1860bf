"""Export and import of a tenant's whole memory as JSON Lines (see services/transfer.py)."""

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from agentmem.types import ImportResult

from ...services.transfer import export_records, import_records
from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import IdempotencyKey

router = APIRouter(prefix="/v1", tags=["transfer"], responses=error_responses(401, 429, 500))

_NDJSON = {
    "application/x-ndjson": {
        "schema": {"type": "string", "description": "JSON Lines: one record per line."}
    }
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The tenant's records, one JSON object per line.", "content": _NDJSON}
    },
)
async def export(services: ServicesDep, tenant_id: TenantDep) -> StreamingResponse:
    """Everything the caller's tenant owns: agents, core and archival blocks, threads, runs."""
    return StreamingResponse(
        export_records(services.sql, tenant_id), media_type="application/x-ndjson"
    )


async def _lines(request: Request) -> AsyncIterator[bytes]:
    """The body's lines. A line longer than one chunk collects its parts in a list (joined once):
    a long line costs time in proportion to its length, not its length squared."""
    parts: list[bytes] = []
    async for chunk in request.stream():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            parts.append(chunk[start:end])
            yield b"".join(parts)
            parts = []
            start = end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        yield b"".join(parts)


@router.post(
    "/import",
    responses=error_responses(409, 413, 422),
    dependencies=[IdempotencyKey],
    openapi_extra={"requestBody": {"required": True, "content": _NDJSON}},
)
async def import_(request: Request, services: ServicesDep, tenant_id: TenantDep) -> ImportResult:
    """Load an export into the caller's tenant, all or nothing; archival text is re-embedded with
    this server's model. Threads, messages and runs whose ids are taken get new ones (`renamed`)."""
    result = await import_records(
        services.sql, services.memory, tenant_id, _lines(request), services.events
    )
    return ImportResult.model_validate(result)
