"""Tenants and keys. Guarded by AGENTMEM_ADMIN_KEY; `agentmem keys` does the same offline."""

from fastapi import APIRouter, Response

from agentmem.types import ApiKey, ApiKeyCreated, Tenant, TenantCreateRequest
from agentmem.types.state import StateTenantSettings, StateTenantSettingsUpdate

from ..deps import AdminDep, ServicesDep
from ..errors import error_responses
from ..params import IdempotencyKey, KeyIdPath, TenantNamePath

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses=error_responses(401, 403, 422, 429, 500),
)


@router.post(
    "/tenants",
    status_code=201,
    responses=error_responses(400, 409, 413),
    dependencies=[IdempotencyKey],
)
async def create_tenant(body: TenantCreateRequest, services: ServicesDep) -> Tenant:
    """Create a tenant (an existing one is returned as it is)."""
    return await services.tenants.create_tenant(body.name)


@router.get("/tenants")
async def list_tenants(services: ServicesDep) -> list[Tenant]:
    """Every tenant, by name."""
    return await services.tenants.list_tenants()


@router.post(
    "/tenants/{name}/keys",
    status_code=201,
    responses=error_responses(409),
    dependencies=[IdempotencyKey],
)
async def create_key(name: TenantNamePath, services: ServicesDep) -> ApiKeyCreated:
    """Create an API key, creating the tenant if it is new. The key is shown only in this answer."""
    return await services.tenants.create_key(name)


@router.get("/tenants/{name}/keys", responses=error_responses(404))
async def list_keys(name: TenantNamePath, services: ServicesDep) -> list[ApiKey]:
    """A tenant's keys (their prefixes; the keys themselves are not stored)."""
    return await services.tenants.list_keys(name)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    responses=error_responses(404, 409),
    dependencies=[IdempotencyKey],
)
async def revoke_key(key_id: KeyIdPath, services: ServicesDep) -> Response:
    """Revoke a key: requests with it get 401 from then on."""
    await services.tenants.revoke_key(key_id)
    return Response(status_code=204)


@router.get("/tenants/{name}/state", responses=error_responses(404))
async def get_state_settings(name: TenantNamePath, services: ServicesDep) -> StateTenantSettings:
    """The tenant's keyed-state settings (default TTL) and what its entries hold."""
    return await services.state.tenant_settings(await services.tenants.tenant_id(name))


@router.put(
    "/tenants/{name}/state",
    responses=error_responses(400, 404, 409),
    dependencies=[IdempotencyKey],
)
async def update_state_settings(
    name: TenantNamePath, body: StateTenantSettingsUpdate, services: ServicesDep
) -> StateTenantSettings:
    """Set the default TTL of the tenant's entries set from now on without a `ttl` (`null`:
    none). Entries already stored keep their expiry."""
    tenant_id = await services.tenants.tenant_id(name)
    return await services.state.set_default_ttl(tenant_id, body.default_ttl)
