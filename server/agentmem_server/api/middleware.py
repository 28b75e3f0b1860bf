"""Pure ASGI middleware: request ids, the request-body size limit and who is calling, in one
layer (`EdgeMiddleware`).

Pure ASGI (not BaseHTTPMiddleware) so a too-large body is refused while it streams in, before it
is buffered, and so streaming responses pass through untouched. One layer, not three: each layer
costs every request a call and, per message sent, a wrapper; and a body whose length is declared
needs no counting at all (the HTTP server never hands on more than the declared length).
"""

from __future__ import annotations

import json
from typing import Optional

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ids import REQUEST, new_id
from ..services.limits import retry_after
from . import access
from .errors import error_response
from .mcp import MCP_PATH


class EdgeMiddleware:
    """In this order, as the three layers it replaces did: every answer carries the request id
    (`x-request-id`, the caller's own up to 64 characters, else a new one); a body over the
    limit is a 413 (by its declared length before anything is read, else while it streams in);
    then `access.identify` fills `scope["state"]` for a `/v1` or MCP request, or answers 429."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: Optional[dict[str, int]] = None):
        self.app = app
        self.default_max_bytes = max_bytes
        # Path prefix -> limit, for the few routes that stream large bodies (import).
        self.overrides = overrides or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = b""
        declared: Optional[bytes] = None
        chunked = False
        for key, value in scope["headers"]:
            # The last of repeated headers counts, as it did when they were read through a dict.
            if key == b"x-request-id":
                incoming = value
            elif key == b"content-length":
                declared = value
            elif key == b"transfer-encoding":
                chunked = True
        request_id = incoming.decode("latin-1")[:64] if incoming else new_id(REQUEST)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        path = scope["path"]
        max_bytes = self._limit(path)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return await _refuse(scope, send_with_id, max_bytes)
        if path.startswith("/v1/") or path == MCP_PATH:
            refusal = await access.identify(scope)
            if refusal is not None:
                wait, message, fields = refusal
                response = error_response(
                    Request(scope),
                    429,
                    "rate_limited",
                    message,
                    headers={"retry-after": retry_after(wait)},
                    **fields,
                )
                return await response(scope, receive, send_with_id)
        if declared is not None and declared.isdigit() and not chunked:
            # Framed by its declared length, which is within the limit: nothing to count.
            return await self.app(scope, receive, send_with_id)
        await self._counted(scope, receive, send_with_id, max_bytes)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        """The app, with a body of unknown length refused once it grows past `max_bytes`."""
        seen = 0
        exceeded = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not exceeded:
                return await send(message)
            # The framework turns a failed body read into its own error response; send ours instead.
            if not refused:
                refused = True
                await _refuse(scope, send, max_bytes)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            pass
        if exceeded and not refused:
            await _refuse(scope, send, max_bytes)


class _TooLarge(Exception):
    pass


async def _refuse(scope: Scope, send: Send, max_bytes: int) -> None:
    request_id = scope.get("state", {}).get("request_id", "unknown")
    body = json.dumps(
        {
            "error": {
                "type": "payload_too_large",
                "message": f"request body is larger than the limit of {max_bytes} bytes",
                "field": "body",
                "limit": max_bytes,
                "request_id": request_id,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
