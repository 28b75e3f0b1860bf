"""Who is calling: the bearer token of every `/v1` request, resolved once, before anything else.

Pure ASGI so the layers after it (idempotency keys, then the routes) can key their work by the
caller. It puts `tenant_id` (a tenant API key) or `admin` (the admin key, on `/v1/admin`) into
`scope["state"]`; it refuses nothing itself: `api/deps.py` answers 401/403 from what it found.
"""

from __future__ import annotations

import hmac
from typing import Optional

from starlette.types import ASGIApp, Receive, Scope, Send

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


class AccessMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self._identify(scope)
        await self.app(scope, receive, send)

    async def _identify(self, scope: Scope) -> None:
        state = scope.setdefault("state", {})
        secret = bearer_token(scope)
        if secret is None:
            return
        services = scope["app"].state.services
        if is_admin_path(scope["path"]):
            admin_key = services.settings.admin_key
            state["admin"] = bool(admin_key) and hmac.compare_digest(
                secret.encode(), admin_key.encode()
            )
        else:
            state["tenant_id"] = await services.tenants.tenant_for_key(secret)
