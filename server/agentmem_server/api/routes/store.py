"""Document store routes (services/store.py): keyed state as LangGraph's `BaseStore` uses it.

All POST with a JSON body (namespaces are lists, filters are objects); `get`, `search` and
`namespaces` only read (a TTL refresh aside), so api/idempotency.py answers them afresh.
"""

from fastapi import APIRouter

from agentmem.types.store import (
    StoreDeleteResult,
    StoreItem,
    StoreKeyRequest,
    StoreNamespaces,
    StoreNamespacesRequest,
    StorePutRequest,
    StoreSearchRequest,
)

from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import IdempotencyKey

router = APIRouter(
    prefix="/v1/store", tags=["store"], responses=error_responses(401, 422, 429, 500)
)


@router.post("/put", responses=error_responses(400, 409, 413), dependencies=[IdempotencyKey])
async def put(body: StorePutRequest, services: ServicesDep, tenant_id: TenantDep) -> StoreItem:
    """Write an item (last write wins), embedding its `index_texts` for semantic search."""
    return await services.store.put(tenant_id, body)


@router.post("/get", responses=error_responses(400, 404))
async def get(body: StoreKeyRequest, services: ServicesDep, tenant_id: TenantDep) -> StoreItem:
    """One item (404 when absent or expired); `refresh_ttl` restarts its TTL."""
    return await services.store.get(tenant_id, body)


@router.post("/delete", responses=error_responses(400, 409), dependencies=[IdempotencyKey])
async def delete(
    body: StoreKeyRequest, services: ServicesDep, tenant_id: TenantDep
) -> StoreDeleteResult:
    """Delete an item and its vectors; deleting a missing item is fine."""
    return StoreDeleteResult(deleted=await services.store.delete(tenant_id, body))


@router.post("/search", responses=error_responses(400))
async def search(
    body: StoreSearchRequest, services: ServicesDep, tenant_id: TenantDep
) -> list[StoreItem]:
    """Items under a namespace prefix: filtered, most recent first, or ranked by `query`."""
    return await services.store.search(tenant_id, body)


@router.post("/namespaces", responses=error_responses(400))
async def namespaces(
    body: StoreNamespacesRequest, services: ServicesDep, tenant_id: TenantDep
) -> StoreNamespaces:
    """The namespaces under `root` that hold items, matching `prefix`/`suffix`, cut at
    `max_depth`."""
    return await services.store.namespaces(tenant_id, body)
