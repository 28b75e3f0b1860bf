"""Every error leaves as `{"error": {...}}` with the request id, whatever raised it."""

from __future__ import annotations

import logging
from typing import Any

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
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
}


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", None) or "unknown"


def error_response(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    *,
    should_retry: bool = True,
    **fields: Any,
) -> JSONResponse:
    detail = ErrorDetail(
        type=error_type, message=message, request_id=request_id_of(request), **fields
    )
    body = ErrorBody(error=detail).model_dump(exclude_none=True)
    headers = {"x-request-id": request_id_of(request)}
    if not should_retry:
        headers["x-should-retry"] = "false"
    return JSONResponse(body, status_code=status, headers=headers)


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
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
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
    return error_response(
        request, exc.status_code, _STATUS_TYPES.get(exc.status_code, "error"), str(exc.detail)
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
