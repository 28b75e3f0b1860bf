"""Every error leaves as `{"error": {...}}` with the request id, whatever raised it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentmem.types import ErrorBody, ErrorDetail

from ..errors import ServiceError

log = logging.getLogger("agentmem.api")

_STATUS_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
}


_DESCRIPTIONS = {
    400: "The body could not be read as JSON (not UTF-8, or not JSON at all); `field` is `body`.",
    401: "No API key, or one that is invalid or revoked.",
    403: "The admin API is disabled (set `AGENTMEM_ADMIN_KEY`).",
    404: "Not found in the caller's tenant (another tenant's data answers the same).",
    409: "Conflict: `conflict` (a stale `expected_updated_at`, with `current_updated_at`; or an id "
    "that exists), `in_progress` (a request with this `Idempotency-Key` is still running; retry "
    "after `Retry-After`) or `interrupted` (it stopped midway; check, then use a new key).",
    410: "Gone: events after `after` (or `Last-Event-ID`) were removed by retention; "
    "`oldest_seq` is the oldest event kept.",
    413: "The body, or a value in it, is over a limit (`field` and `limit` say which).",
    422: "Invalid input (`field` names it, `limit` gives the bound where there is one), or an "
    "`Idempotency-Key` reused for a different request (`idempotency_key_reused`).",
    429: "Too many requests (see `Retry-After`), or a storage quota is full (`limit` names it).",
    500: "A fault of the server; `request_id` identifies it in the server's log.",
    502: "The LLM provider failed (the server already retried it: `x-should-retry: false`).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation can answer, all `ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", None) or "unknown"


def error_response(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    *,
    should_retry: bool = True,
    headers: Optional[Mapping[str, str]] = None,
    **fields: Any,
) -> JSONResponse:
    detail = ErrorDetail(
        type=error_type, message=message, request_id=request_id_of(request), **fields
    )
    body = ErrorBody(error=detail).model_dump(exclude_none=True)
    sent = {**(headers or {}), "x-request-id": request_id_of(request)}
    if not should_retry:
        sent["x-should-retry"] = "false"
    return JSONResponse(body, status_code=status, headers=sent)


def _limit_from_ctx(ctx: dict[str, Any] | None) -> Any:
    if not ctx:
        return None
    for key in ("le", "lt", "ge", "gt", "max_length", "min_length", "pattern", "expected"):
        if key in ctx:
            value = ctx[key]
            return value if isinstance(value, (int, float, str)) else str(value)
    return None


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return error_response(
        request,
        exc.status_code,
        exc.error_type,
        exc.message,
        should_retry=exc.client_should_retry,
        field=exc.field,
        limit=exc.limit,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        # Only the first element says where: a body field may itself be named `query`.
        loc = loc[1:]
    field = ".".join(loc) or None
    message = first.get("msg", "invalid request")
    if field:
        message = f"{field}: {message}"
    return error_response(
        request,
        422,
        "invalid_request",
        message,
        field=field,
        limit=_limit_from_ctx(first.get("ctx")),
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # Keep the exception's headers: a 405 must say which methods are allowed (`Allow`).
    # The framework's only 400 is a body it could not parse.
    return error_response(
        request,
        exc.status_code,
        _STATUS_TYPES.get(exc.status_code, "error"),
        str(exc.detail),
        headers=exc.headers,
        field="body" if exc.status_code == 400 else None,
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception(
        "unhandled error in %s %s (request %s)",
        request.method,
        request.url.path,
        request_id_of(request),
    )
    return error_response(request, 500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
