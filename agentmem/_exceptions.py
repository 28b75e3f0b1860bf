"""Exceptions raised by the client.

```
AgentMemError
├── ArgumentError                 a bad argument, refused before any request (also a ValueError)
├── ArgumentTypeError             an argument of the wrong type (also a TypeError)
├── APIConnectionError            the request got no HTTP answer
│   └── APITimeoutError
└── APIStatusError                the server answered 4xx or 5xx
    ├── BadRequestError           400
    ├── AuthenticationError       401
    ├── PermissionDeniedError     403
    ├── NotFoundError             404
    ├── ConflictError             409  (stale `expected_updated_at`; never retried)
    ├── RequestInProgressError    409  `in_progress`: the first request with this idempotency key
    │                                  is still running (retried after `Retry-After`)
    ├── RequestInterruptedError   409  `interrupted`: the first request with this key stopped
    │                                  midway (its server died); its effects are unknown
    ├── GoneError                 410  events removed by retention (`oldest_seq`: what is kept)
    ├── PayloadTooLargeError      413
    ├── UnprocessableEntityError  422  (also: an idempotency key reused for another request)
    ├── RateLimitError            429
    └── InternalServerError       5xx
```

The two idempotency 409s are not `ConflictError`s on purpose: code that answers a lost version
race by re-reading and writing again must not do that while the first write may still land.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import httpx
from pydantic import ValidationError

from .types import ErrorBody, ErrorDetail
from .types.state import StateEntry

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AgentMemError",
    "ArgumentError",
    "ArgumentTypeError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "GoneError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInProgressError",
    "RequestInterruptedError",
    "UnprocessableEntityError",
]


class AgentMemError(Exception):
    """Base of every error the client raises. Messages never contain the API key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArgumentError(AgentMemError, ValueError):
    """An argument the server would refuse, caught before anything is sent; names the argument."""


class ArgumentTypeError(AgentMemError, TypeError):
    """An argument of the wrong type, caught before anything is sent; names the argument."""


class APIConnectionError(AgentMemError):
    """The request failed before any HTTP answer: refused, reset, DNS, TLS."""

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    def __init__(self, request: httpx.Request) -> None:
        super().__init__("Request timed out.", request=request)


class APIStatusError(AgentMemError):
    """The server answered with a 4xx or 5xx status.

    `body` is the parsed JSON (or `None`); the other attributes come from its `error` object.
    """

    status_code: int

    def __init__(
        self, message: Optional[str] = None, *, response: httpx.Response, body: Any
    ) -> None:
        detail = _error_detail(body)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.error_type: Optional[str] = detail.type if detail else None
        self.field: Optional[str] = detail.field if detail else None
        self.limit: Any = detail.limit if detail else None
        self.request_id: Optional[str] = (
            detail.request_id if detail else None
        ) or response.headers.get("x-request-id")
        if message is None:
            text = detail.message if detail else (response.text or "-")
            message = f"{response.status_code} {response.reason_phrase}: {text}"
            if self.request_id:
                message += f" (request_id={self.request_id})"
        super().__init__(message)


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    """The block changed since it was read; `current_updated_at` is its `updated_at` now.

    Usage: `client.memory.update("core", text, expected_updated_at=err.current_updated_at)`
    after merging your change into a fresh read (or use `memory.modify`, which does this).
    A guarded state write's conflict also carries the entry as it is now: `current_entry`
    (`None` when there is none).
    """

    status_code = 409

    def __init__(
        self, message: Optional[str] = None, *, response: httpx.Response, body: Any
    ) -> None:
        super().__init__(message, response=response, body=body)
        detail = _error_detail(body)
        self.current_updated_at = _parse_datetime(detail.current_updated_at if detail else None)
        self.current_entry: Optional[StateEntry] = _parse_entry(detail.current if detail else None)


class RequestInProgressError(APIStatusError):
    """A request with the same idempotency key is still running on the server.

    The client already waited and retried (honouring `Retry-After`) before raising this; the
    first request may still take effect. Retry later with the same key to get its answer.
    """

    status_code = 409


class RequestInterruptedError(APIStatusError):
    """The first request with this idempotency key stopped midway (its server process died).

    Whether it took effect is unknown: check (e.g. the thread's messages after a run) and send
    a new request, with a new key, if needed. Not retried: the same key answers the same.
    """

    status_code = 409


class GoneError(APIStatusError):
    """Events after the requested seq were removed by retention; `oldest_seq` is the oldest
    kept. Re-read the current state, then follow the feed from `oldest_seq - 1`."""

    status_code = 410

    def __init__(
        self, message: Optional[str] = None, *, response: httpx.Response, body: Any
    ) -> None:
        super().__init__(message, response=response, body=body)
        detail = _error_detail(body)
        self.oldest_seq: Optional[int] = detail.oldest_seq if detail else None


class PayloadTooLargeError(APIStatusError):
    status_code = 413


class UnprocessableEntityError(APIStatusError):
    status_code = 422


class RateLimitError(APIStatusError):
    status_code = 429


class InternalServerError(APIStatusError):
    pass


def _error_detail(body: Any) -> Optional[ErrorDetail]:
    # Proxies and load balancers answer with bodies of their own; those carry no detail.
    try:
        return ErrorBody.model_validate(body).error
    except ValidationError:
        return None


def _parse_datetime(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _parse_entry(value: Optional[dict[str, Any]]) -> Optional[StateEntry]:
    if value is None:
        return None
    try:
        return StateEntry.model_validate(value)
    except ValidationError:
        return None
