"""The JSON error body every non-2xx response carries."""

from __future__ import annotations

from typing import Any, Optional

from ._base import ResponseModel


class ErrorDetail(ResponseModel):
    type: str
    """Machine-readable kind, e.g. `conflict`, `not_found`, `payload_too_large`."""
    message: str
    field: Optional[str] = None
    """The request field at fault, dotted (`body.content`)."""
    limit: Optional[Any] = None
    """The limit that was exceeded, when one was."""
    request_id: Optional[str] = None
    current_updated_at: Optional[str] = None
    """On 409: the block's current `updated_at`."""


class ErrorBody(ResponseModel):
    error: ErrorDetail
