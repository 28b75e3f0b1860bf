"""Answers of the service routes: health and import."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import ResponseModel


class Health(ResponseModel):
    status: Literal["ok"] = Field(examples=["ok"])
    """`ok`: the server is up and its stores are open."""


class ImportResult(ResponseModel):
    counts: dict[str, int] = Field(examples=[{"agent": 1, "block": 2, "archival_lines": 3}])
    """Records imported by type: `agent`, `block`, `archival_lines`, `thread`, `message`, `run`."""
    renamed: dict[str, dict[str, str]] = Field(
        default_factory=dict, examples=[{"thread": {"thr_0a1b2c": "thr_9f8e7d"}}]
    )
    """Threads, messages and runs whose id was taken on this server got new ids: kind -> {id in
    the export: id here}. Empty when every id was kept."""
