"""Keyed state on the wire: exact JSON values under `(namespace, key)` (DESIGN §10)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, Field, JsonValue

from ._base import RequestModel, ResponseModel
from ._constraints import UtcDatetime, check_text

STATE_KEY_MAX_LENGTH = 255
"""A key is 1-255 characters."""
NAMESPACE_MAX_SEGMENTS = 8
"""A namespace is a path of at most 8 segments."""
SEGMENT_MAX_LENGTH = 128
"""Each namespace segment is 1-128 characters."""
SEGMENT_PATTERN = r"^[A-Za-z0-9_.:@\-]{1,128}$"
"""A namespace segment: 1-128 letters, digits, `_`, `.`, `:`, `@` or `-`."""
NAMESPACE_SEPARATOR = "/"
"""How a namespace travels in a URL (`?namespace=session/u1`): segments joined by `/`, which no
segment contains. The root namespace `()` is the empty string."""
STATE_LIST_MAX = 1000
"""At most this many keys a page of `list`."""
TTL_MAX_S = 100 * 365 * 86400
"""The longest TTL, in seconds (100 years)."""

_SEGMENT = re.compile(SEGMENT_PATTERN)
# C0 and C1 controls and DEL: they break logs, terminals and URLs, and no seed's key needs them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_AT = "2025-03-01T12:00:00.123456Z"


def key_problem(key: object) -> Optional[str]:
    """Why `key` is not a state key, or `None` if it is one."""
    if not isinstance(key, str):
        return f"must be a str, not {type(key).__name__}"
    if not 1 <= len(key) <= STATE_KEY_MAX_LENGTH:
        return f"must be 1-{STATE_KEY_MAX_LENGTH} characters; got {len(key)}"
    if _CONTROL.search(key):
        return "must not contain control characters"
    try:
        check_text(key)
    except ValueError as exc:
        return str(exc)
    return None


def namespace_problem(segments: object) -> Optional[str]:
    """Why `segments` is not a namespace (a tuple/list of segments), or `None` if it is one."""
    if not isinstance(segments, (tuple, list)):
        return f"must be a tuple of str segments, not {type(segments).__name__}"
    if len(segments) > NAMESPACE_MAX_SEGMENTS:
        return f"has {len(segments)} segments; at most {NAMESPACE_MAX_SEGMENTS}"
    for segment in segments:
        if not isinstance(segment, str) or not _SEGMENT.fullmatch(segment):
            return (
                f"segment {segment!r} must be 1-{SEGMENT_MAX_LENGTH} letters, digits, "
                "'_', '.', ':', '@' or '-'"
            )
    return None


def encode_namespace(segments: tuple[str, ...] | list[str]) -> str:
    """The URL form of a namespace: `("session", "u1")` -> `"session/u1"`."""
    return NAMESPACE_SEPARATOR.join(segments)


def decode_namespace(text: str) -> tuple[str, ...]:
    """The inverse of `encode_namespace` (no checking: see `namespace_problem`)."""
    return tuple(text.split(NAMESPACE_SEPARATOR)) if text else ()


def _check_value(value: Any, depth: int = 0) -> Any:
    # Both databases must store it as JSON: no NaN/Infinity (not JSON, PostgreSQL refuses
    # them), no NUL in strings (JSONB refuses it), nothing but valid Unicode.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be JSON: NaN and Infinity are not JSON numbers")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for k, item in value.items():
            check_text(k)
            _check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
    return value


StateValue = Annotated[JsonValue, AfterValidator(_check_value)]
"""Any JSON value (object, array, string, number, boolean or null)."""


def _check_key(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(problem)
    return key


StateKey = Annotated[str, AfterValidator(_check_key)]
"""1-255 characters, no control characters."""


class StateEntry(ResponseModel):
    namespace: list[str] = Field(examples=[["session", "u1"]])
    """Where the entry lives: `[]` for the tenant, `["agent", id]`, `["session", id]`,
    `["workflow", id]`, or any other path."""
    key: str = Field(examples=["last_rebalance"])
    """The entry's key within its namespace."""
    value: Any = Field(examples=[{"at": 1735689600, "pnl": 12.5}])
    """The stored JSON value, exactly as set (PostgreSQL returns object keys in its own order)."""
    created_at: datetime = Field(examples=[_AT])
    """When the entry was first set (UTC); a set after it expired creates it anew."""
    updated_at: datetime = Field(examples=[_AT])
    """Last write (UTC, microseconds, strictly increasing per entry). Pass it back as
    `expected_updated_at` for a guarded write."""
    expires_at: Optional[datetime] = Field(default=None, examples=[None])
    """When the entry stops being visible (UTC), or `None` if it never expires."""


class StateSetRequest(RequestModel):
    value: StateValue = Field(examples=[{"theme": "dark"}])
    """Any JSON value; at most `AGENTMEM_STATE_VALUE_MAX_BYTES` (default 64 KiB) as compact
    UTF-8 JSON."""
    ttl: Optional[float] = Field(default=None, gt=0, le=TTL_MAX_S, examples=[3600])
    """Seconds until the entry expires; `None` (or absent): never."""
    expected_updated_at: Optional[UtcDatetime] = Field(default=None, examples=[_AT, None])
    """Absent: last write wins. `None`: create only (409 if the entry exists). A time: replace
    only if the entry's `updated_at` is still this (409 with the current entry otherwise)."""


class StateListItem(ResponseModel):
    key: str = Field(examples=["customer_123.profile"])
    """The key."""
    updated_at: datetime = Field(examples=[_AT])
    """Its last write (UTC)."""
    expires_at: Optional[datetime] = Field(default=None, examples=[None])
    """When it expires, if it does."""


class StateList(ResponseModel):
    items: list[StateListItem] = Field(examples=[[]])
    """Keys in lexicographic (Unicode code point) order."""
    next_cursor: Optional[str] = Field(default=None, examples=[None])
    """Pass as `cursor` for the next page; `None` on the last page."""


class StateDeleteResult(ResponseModel):
    deleted: bool = Field(examples=[True])
    """Whether an entry was there (and visible) to delete."""


class StateClearResult(ResponseModel):
    deleted: int = Field(examples=[3])
    """How many entries the namespace held."""


class StateTenantSettings(ResponseModel):
    """A tenant's keyed-state settings and what its entries hold (admin API)."""

    default_ttl: Optional[float] = Field(default=None, examples=[86400])
    """Seconds after which entries set without a `ttl` expire; `None`: they never do."""
    entries: int = Field(default=0, examples=[12])
    """Entries the tenant holds (expired ones until the sweep removes them)."""
    bytes: int = Field(default=0, examples=[4096])
    """Bytes of their values, as compact UTF-8 JSON."""


class StateTenantSettingsUpdate(RequestModel):
    default_ttl: Optional[float] = Field(gt=0, le=TTL_MAX_S, examples=[86400, None])
    """Seconds after which entries set from now on without a `ttl` expire; `None`: never.
    Entries already stored keep their expiry."""
