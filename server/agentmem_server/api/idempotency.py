"""`Idempotency-Key` for every write route: a retried request gets the first answer.

Pure ASGI, between authentication (api/access.py, which puts the caller in `scope["state"]`)
and the routes, so the routes and services stay unaware of it and a recorded answer is the exact
bytes the client would have received. The decisions live in services/idempotency.py.

Which routes, and what happens to a first request whose server died (docs/architecture.md):
- `POST /v1/memory/recall` and the store's `get`, `search` and `namespaces` read only: they are
  answered afresh, key or not.
- Runs, replays and imports call the model or write in many steps. Every answer they give is
  kept (a 5xx too: a retry must never run the model twice), and if their server died midway,
  a retry is told so (409 `interrupted`) rather than run again.
- Every other write is one transaction: only its 2xx answers are kept, since any other answer
  means nothing changed and a retry may simply run it again; one whose server died is re-run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Optional

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..services.idempotency import (
    ADMIN_SCOPE,
    Claim,
    IdempotencyService,
    Interrupted,
    KeyReused,
    StillRunning,
    StoredAnswer,
)
from .errors import error_response

log = logging.getLogger("agentmem.api")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "idempotent-replayed"
_KEPT_HEADERS = {"content-type", "x-should-retry", "location"}
"""The response headers a replay repeats; the rest (request id, length, date) are per answer."""
_READ_ONLY = {
    ("POST", "/v1/memory/recall"),
    # The document store's reads take a JSON body (api/routes/store.py).
    ("POST", "/v1/store/get"),
    ("POST", "/v1/store/search"),
    ("POST", "/v1/store/namespaces"),
}
_MULTI_STEP = re.compile(r"^/v1/(agents/[^/]+/runs|runs/[^/]+/replay|import)$")
_KEY_RE = re.compile(rf"^[\x21-\x7e][\x20-\x7e]{{0,{MAX_KEY_LENGTH - 1}}}$")


@dataclass(frozen=True)
class RoutePolicy:
    multi_step: bool
    """Kept whatever it answers, and never re-run after its server died (see the module doc)."""


def route_policy(method: str, path: str) -> Optional[RoutePolicy]:
    """How a write route takes a key; `None` for requests that do not."""
    if (
        method in ("GET", "HEAD", "OPTIONS")
        or not path.startswith("/v1/")
        or (method, path) in _READ_ONLY
    ):
        return None
    return RoutePolicy(multi_step=method == "POST" and _MULTI_STEP.match(path) is not None)


def _header(scope: Scope, name: bytes) -> Optional[bytes]:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


def _request_hash(scope: Scope) -> str:
    h = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = route_policy(scope["method"], scope["path"])
        raw_key = _header(scope, b"idempotency-key") if policy else None
        state = scope.get("state", {})
        caller = state.get("tenant_id") or (ADMIN_SCOPE if state.get("admin") else None)
        if policy is None or raw_key is None or caller is None:
            # Unauthenticated requests go on to be refused by the route, key or not.
            return await self.app(scope, receive, send)
        key = raw_key.decode("latin-1")
        if not _KEY_RE.match(key):
            return await _error(
                scope,
                receive,
                send,
                422,
                "invalid_request",
                f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
                field=HEADER,
                limit=MAX_KEY_LENGTH,
            )
        service: IdempotencyService = scope["app"].state.services.idempotency
        try:
            outcome = await service.begin(
                caller, key, _request_hash(scope), rerun_abandoned=not policy.multi_step
            )
        except KeyReused:
            return await _reused(scope, receive, send)
        except StillRunning as exc:
            return await _error(
                scope,
                receive,
                send,
                409,
                "in_progress",
                f"a request with this {HEADER} is still running; "
                f"retry in {exc.retry_after_s}s for its answer",
                field=HEADER,
                headers={"retry-after": str(exc.retry_after_s), "x-should-retry": "true"},
            )
        except Interrupted:
            return await _error(
                scope,
                receive,
                send,
                409,
                "interrupted",
                f"the first request with this {HEADER} stopped midway (its server stopped); "
                "whether it took effect is unknown: check, then send it again with a new key "
                "if needed",
                field=HEADER,
                should_retry=False,
            )
        if isinstance(outcome, StoredAnswer):
            return await self._replay(outcome, scope, receive, send)
        await self._run(outcome, policy, service, scope, receive, send)

    async def _replay(
        self, answer: StoredAnswer, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if answer.body_hash is not None and await _hash_body(receive) != answer.body_hash:
            return await _reused(scope, receive, send)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        headers += [
            (b"content-length", str(len(answer.body)).encode()),
            (REPLAYED_HEADER.encode(), b"true"),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _run(
        self,
        claim: Claim,
        policy: RoutePolicy,
        service: IdempotencyService,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        hasher = hashlib.sha256()
        body_read = False
        start: Optional[Message] = None
        chunks: list[bytes] = []

        async def hashing_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request":
                hasher.update(message.get("body", b""))
                body_read = body_read or not message.get("more_body", False)
            return message

        async def capturing_send(message: Message) -> None:
            # Held back until the answer is stored: the client must never hold an answer that a
            # retry could not get again.
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        keep_alive = asyncio.get_running_loop().create_task(service.keep_alive(claim))
        try:
            await self.app(scope, hashing_receive, capturing_send)
        except BaseException:
            keep_alive.cancel()
            # The exception handlers outside answer 500. A one-transaction write rolled back, so
            # its key is freed; a run may have written through its tools, so it stays answered.
            if policy.multi_step:
                await asyncio.shield(_store_failure(service, claim, scope))
            else:
                await asyncio.shield(service.release(claim))
            raise
        finally:
            keep_alive.cancel()
        assert start is not None, "the app returned without answering"
        status: int = start["status"]
        body = b"".join(chunks)
        if 200 <= status < 300 or (policy.multi_step and status not in (401, 403, 429)):
            headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in start.get("headers", [])
                if k.decode("latin-1").lower() in _KEPT_HEADERS
            ]
            try:
                await service.finish(
                    claim,
                    status=status,
                    headers=headers,
                    body=body,
                    body_hash=hasher.hexdigest() if body_read else None,
                )
            except Exception:  # noqa: BLE001 - the write happened; the client gets its answer anyway
                log.exception(
                    "could not store the answer for idempotency key %s", claim.key.id[:12]
                )
        else:
            await service.release(claim)
        await send(start)
        await send({"type": "http.response.body", "body": body})


async def _hash_body(receive: Receive) -> str:
    """Read the request body to its end (never held whole: an import can be gigabytes)."""
    hasher = hashlib.sha256()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        hasher.update(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return hasher.hexdigest()


async def _store_failure(service: IdempotencyService, claim: Claim, scope: Scope) -> None:
    request_id = scope.get("state", {}).get("request_id", "unknown")
    body = (
        b'{"error":{"type":"internal_error","message":"internal server error; '
        b"the request may have taken "
        b'effect in part: check before sending it again with a new Idempotency-Key","request_id":"'
        + request_id.encode("latin-1", "replace")
        + b'"}}'
    )
    try:
        await service.finish(
            claim,
            status=500,
            headers=[("content-type", "application/json"), ("x-should-retry", "false")],
            body=body,
            body_hash=None,
        )
    except Exception:  # noqa: BLE001 - the lease runs out and a retry is told it was interrupted
        log.exception("could not store the failure for idempotency key %s", claim.key.id[:12])


async def _reused(scope: Scope, receive: Receive, send: Send) -> None:
    await _error(
        scope,
        receive,
        send,
        422,
        "idempotency_key_reused",
        f"this {HEADER} was first used for a different request (method, path, query or body); "
        "use a new key for a new request",
        field=HEADER,
    )


async def _error(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    error_type: str,
    message: str,
    **fields: Any,
) -> None:
    response = error_response(Request(scope), status, error_type, message, **fields)
    await response(scope, receive, send)
