"""Annotated dependencies: how routes reach services and learn the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import Forbidden, Unauthorized
from ..services.container import Services
from ..services.tenants import unknown_key

_bearer = HTTPBearer(
    auto_error=False, description="An agentmem API key: `Authorization: Bearer am_...`"
)


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency on its thread pool, and that hop
    # cost ~0.5-1 ms per request on this 2-core box (more than the rest of a core-block read).
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _secret(credentials: Optional[HTTPAuthorizationCredentials]) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    return credentials.credentials


async def authenticate(
    request: Request,
    credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
) -> str:
    # api/access.py resolved the key before the request got here (once, for every layer).
    _secret(credentials)
    tenant_id: Optional[str] = getattr(request.state, "tenant_id", None)
    if tenant_id is None:
        raise unknown_key()
    return tenant_id


TenantDep = Annotated[str, Depends(authenticate)]
"""The caller's tenant id, from its API key (never from a request field)."""


async def require_admin(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
) -> None:
    if not services.settings.admin_key:
        raise Forbidden("the admin API is disabled; set AGENTMEM_ADMIN_KEY to enable it")
    _secret(credentials)
    if not getattr(request.state, "admin", False):  # compared in api/access.py
        raise Unauthorized("invalid admin key")


AdminDep = Depends(require_admin)
