"""Tenants and keys. Guarded by AGENTMEM_ADMIN_KEY; `agentmem keys` does the same offline."""

from fastapi import APIRouter, Response

from agentmem.types import ApiKey, ApiKeyCreated, Tenant, TenantCreateRequest

from ..deps import AdminDep, ServicesDep

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreateRequest, services: ServicesDep) -> Tenant:
    return await services.tenants.create_tenant(body.name)


@router.get("/tenants")
async def list_tenants(services: ServicesDep) -> list[Tenant]:
    return await services.tenants.list_tenants()


@router.post("/tenants/{name}/keys", status_code=201)
async def create_key(name: str, services: ServicesDep) -> ApiKeyCreated:
    """Create an API key, creating the tenant if it is new. The key is shown only in this answer."""
    TenantCreateRequest(name=name)  # same name rules as tenant creation
    return await services.tenants.create_key(name)


@router.get("/tenants/{name}/keys")
async def list_keys(name: str, services: ServicesDep) -> list[ApiKey]:
    return await services.tenants.list_keys(name)


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, services: ServicesDep) -> Response:
    await services.tenants.revoke_key(key_id)
    return Response(status_code=204)
