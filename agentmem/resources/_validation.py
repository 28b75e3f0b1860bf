"""Argument checks run before any request, so a bad value fails fast and names itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Optional, TypeVar, Union

from pydantic import BaseModel, ValidationError

from .._exceptions import ArgumentError, ArgumentTypeError
from ..types import AGENT_ID_PATTERN, TenantCreateRequest
from ..types._constraints import MAX_LINE_NUMBER
from ..types.state import TTL_MAX_S

M = TypeVar("M", bound=BaseModel)

IDEMPOTENCY_KEY_MAX = 255

_AGENT_ID = re.compile(AGENT_ID_PATTERN)


def one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ArgumentError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def block_type(value: object) -> None:
    one_of("block_type", value, ("core", "archival"))


def agent_id(value: object, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not _AGENT_ID.fullmatch(value):
        raise ArgumentError(
            f"agent_id must be 1-128 letters, digits, '_', '-' or '.'; got {value!r}"
        )


def agent_scope(scope: str, agent_id: Optional[str]) -> None:
    if scope == "agent" and agent_id is None:
        raise ArgumentError("scope 'agent' needs an agent_id")


def tenant_name(value: object) -> None:
    try:
        TenantCreateRequest(name=value)  # type: ignore[arg-type]
    except (ValidationError, TypeError):
        raise ArgumentError(
            f"tenant name must be 1-128 letters, digits, '_', '-' or '.'; got {value!r}"
        ) from None


def nonempty(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"{name} must be a non-empty string; got {value!r}")


def int_between(name: str, value: object, low: int, high: Optional[int] = None) -> None:
    # bool is an int subclass, but `limit=True` is a mistake, not 1.
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= low and (high is None or value <= high):
            return
    bounds = f">= {low}" if high is None else f"from {low} to {high}"
    raise ArgumentError(f"{name} must be an int {bounds}; got {value!r}")


def fraction(name: str, value: object) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return
    raise ArgumentError(f"{name} must be a number within [0, 1]; got {value!r}")


def line_range(start_line: Optional[int], end_line: Optional[int]) -> None:
    for name, value in (("start_line", start_line), ("end_line", end_line)):
        if value is not None:
            int_between(name, value, 1, MAX_LINE_NUMBER)  # lines are 1-based
    if start_line is not None and end_line is not None and start_line > end_line:
        raise ArgumentError(f"start_line ({start_line}) must not be after end_line ({end_line})")


def timestamp(name: str, value: Union[datetime, str, None]) -> Optional[datetime]:
    """An aware UTC datetime from a datetime or ISO 8601 string; `None` stays `None`."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ArgumentError(f"{name} must be an ISO 8601 timestamp; got {value!r}") from None
    if not isinstance(value, datetime):
        raise ArgumentError(f"{name} must be a datetime, an ISO string or None; got {value!r}")
    # A naive time could be any zone; comparing it with stored UTC would silently conflict.
    if value.tzinfo is None:
        raise ArgumentError(f"{name} must be timezone-aware; got naive {value.isoformat()!r}")
    return value.astimezone(UTC)


def model(cls: type[M], **fields: Any) -> M:
    """Build a wire request model from arguments; a refusal names the argument, as ours do."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or cls.__name__}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ArgumentError(problems) from None


def idempotency_key(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ArgumentTypeError(f"idempotency_key must be a str; got {type(value).__name__}")
    if not (1 <= len(value) <= IDEMPOTENCY_KEY_MAX and value.isascii() and value.isprintable()):
        raise ArgumentError(
            f"idempotency_key must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters; "
            f"got {value!r}"
        )


def ttl(name: str, value: object) -> Optional[float]:
    """Seconds from a number or a `timedelta` (more than 0, at most 100 years); `None` stays."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ArgumentTypeError(
            f"{name} must be seconds or a timedelta; got {type(value).__name__}"
        )
    if not 0 < seconds <= TTL_MAX_S:
        raise ArgumentError(
            f"{name} must be more than 0 and at most {TTL_MAX_S} seconds; got {value}"
        )
    return float(seconds)
