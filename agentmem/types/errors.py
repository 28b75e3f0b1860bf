"""The JSON error body every non-2xx response carries."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from ._base import ResponseModel


class ErrorDetail(ResponseModel):
    type: str = Field(examples=["invalid_request"])
    """Machine-readable kind, e.g. `conflict`, `not_found`, `payload_too_large`, `rate_limited`."""
    message: str = Field(examples=["content: String should have at most 8000 characters"])
    """What went wrong, for people."""
    field: Optional[str] = Field(default=None, examples=["content"])
    """The request field at fault, dotted (`options.max_steps`), or a header name."""
    limit: Optional[Any] = Field(default=None, examples=[8000])
    """The limit that was exceeded, when one was."""
    request_id: Optional[str] = Field(default=None, examples=["req_45492fe57b004f32"])
    """The request's id, also in the `x-request-id` header: quote it when reporting a problem."""
    current_updated_at: Optional[str] = Field(
        default=None, examples=["2025-03-01T12:00:00.123456+00:00"]
    )
    """On 409 `conflict`: the block's (or state entry's) current `updated_at`."""
    current: Optional[dict[str, Any]] = Field(default=None, examples=[None])
    """On 409 `conflict` of a state write: the current `StateEntry` (`None` if there is none)."""
    oldest_seq: Optional[int] = Field(default=None, examples=[1042])
    """On 410 `gone` (events): the oldest event the log still holds."""


class ErrorBody(ResponseModel):
    """Every error answer: `{"error": {...}}`."""

    error: ErrorDetail
    """The error's details."""
