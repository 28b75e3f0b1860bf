"""The value rules every request model shares: which text, ids and times the API takes.

They live with the models so the client refuses before sending what the server would refuse,
and the OpenAPI document states the same limits. Both databases must store what passes: text
without NUL characters (PostgreSQL refuses them) that encodes as UTF-8 (no lone surrogates,
which JSON's `\\ud800` escapes can carry), times within years 1-9999 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

ID_CHARS = r"^[A-Za-z0-9_.\-]+$"
"""Letters, digits, `_`, `-` and `.`: what ids (agents, threads, runs, keys, tenants) consist of."""
ID_MAX_LENGTH = 128
MAX_LINE_NUMBER = 2**31 - 1
"""Archival line numbers are 32-bit in SQL; no block holds more lines."""
MODEL_MAX_LENGTH = 256


def check_text(value: str) -> str:
    """`value` if both databases can store it; else `ValueError` saying why."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode: it holds a lone surrogate (an unpaired \\ud800-\\udfff)"
        ) from None
    return value


def _check_json(value: Any) -> Any:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range in UTC (years 1-9999)") from None


Text = Annotated[str, AfterValidator(check_text)]
"""Any text both databases store as given."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]
"""A JSON object whose strings (keys too) are `Text`."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timestamp with its timezone (a naive one could be any time), converted to UTC."""

Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_CHARS)]
"""An id: 1-128 letters, digits, `_`, `-` or `.`."""
