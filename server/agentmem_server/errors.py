"""Domain errors, raised by any layer; `api/errors.py` maps each to its HTTP status and JSON body.

The bottom of the house: imports nothing of the server, and nothing of FastAPI, so the same errors
serve services, storage, the REST routes, the CLI and any future transport.
"""

from __future__ import annotations

from typing import Any, Optional


class ServiceError(Exception):
    status_code = 500
    error_type = "internal_error"
    client_should_retry = True
    """False tells clients (header `x-should-retry: false`) that a retry would only repeat work
    the server already retried."""

    def __init__(
        self, message: str, *, field: Optional[str] = None, limit: Any = None, **extra: Any
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.limit = limit
        self.extra = extra


class InvalidInput(ServiceError):
    status_code = 422
    error_type = "invalid_request"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "authentication_error"


class Forbidden(ServiceError):
    status_code = 403
    error_type = "permission_denied"


class NotFound(ServiceError):
    status_code = 404
    error_type = "not_found"


class Conflict(ServiceError):
    """A guarded write lost: `extra["current_updated_at"]` holds what the caller should re-read."""

    status_code = 409
    error_type = "conflict"


class Gone(ServiceError):
    """410: what was asked for was removed by retention (`extra["oldest_seq"]`: what is kept)."""

    status_code = 410
    error_type = "gone"
    client_should_retry = False


class PayloadTooLarge(ServiceError):
    status_code = 413
    error_type = "payload_too_large"


class TooManyRequests(ServiceError):
    """429: a rate limit (`Retry-After` says when to come back)."""

    status_code = 429
    error_type = "rate_limited"


class QuotaExceeded(TooManyRequests):
    """429: a storage quota is full; waiting frees nothing, so clients do not retry it."""

    error_type = "quota_exceeded"
    client_should_retry = False


class UpstreamError(ServiceError):
    """The LLM provider failed; nothing of the turn was stored."""

    status_code = 502
    error_type = "provider_error"
    client_should_retry = False


class EmbeddingModelMismatch(ServiceError):
    """Stored vectors were made by another model than the one this server loaded."""

    status_code = 409
    error_type = "embedding_model_mismatch"
