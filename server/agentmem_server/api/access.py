"""Who is calling: the bearer token of every `/v1` request, resolved once, before anything else;
and the per-replica abuse limits that apply before a request reaches a route.

`identify` runs in the outer ASGI layer (`middleware.EdgeMiddleware`), so the layers after it
(idempotency keys, then the routes) can key their work by the caller. It puts `tenant_id` (a
tenant API key) or `admin` (the admin key, on `/v1/admin`) into `scope["state"]`; `api/deps.py`
answers 401/403 from what it found. It refuses with a 429 (the edge answers it): an address past
`AGENTMEM_AUTH_FAILURES_PER_MIN` failed authentications (before looking its key up, so guessing
costs no SQL), and a tenant past `AGENTMEM_RATE_LIMIT_PER_S`.
"""

from __future__ import annotations

import hmac
from typing import Any, Optional

from starlette.types import Scope

from ..services.limits import RequestLimits, retry_after

ADMIN_PREFIX = "/v1/admin"


def bearer_token(scope: Scope) -> Optional[str]:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def identify(scope: Scope) -> Optional[tuple[float, str, dict[str, Any]]]:
    """Fill `scope["state"]`; a refusal (seconds to wait, message, fields) if over a limit.
    Called by `middleware.EdgeMiddleware` for every `/v1` and MCP request, before the body."""
    state = scope.setdefault("state", {})
    secret = bearer_token(scope)
    if secret is None:
        return None
    services = scope["app"].state.services
    limits: RequestLimits = services.limits
    address = client_address(scope)
    wait = limits.auth.wait_s(address)
    if wait:
        return (
            wait,
            (
                f"too many failed authentications from this address (at most "
                f"{limits.auth.max_failures} a minute); retry in {retry_after(wait)}s"
            ),
            {"field": "Authorization", "limit": limits.auth.max_failures},
        )
    if is_admin_path(scope["path"]):
        admin_key = services.settings.admin_key
        state["admin"] = bool(admin_key) and hmac.compare_digest(
            secret.encode(), admin_key.encode()
        )
        if admin_key and not state["admin"]:
            limits.auth.failed(address)
        return None
    tenant_id = state["tenant_id"] = await services.tenants.tenant_for_key(secret)
    if tenant_id is None:
        limits.auth.failed(address)
        return None
    wait = limits.rate.wait_s(tenant_id)
    if wait:
        return (
            wait,
            (
                f"too many requests for this tenant (at most {limits.rate.rate:g} a second); "
                f"retry in {retry_after(wait)}s"
            ),
            {"limit": limits.rate.rate},
        )
    return None
