"""Runs: inspect what a run sent to the model, and replay it."""

from __future__ import annotations

from typing import Optional

from .._base_client import APIRequest, Timeout, path_segment
from ..types import Run, RunResult
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource

__all__ = ["AsyncRuns", "Runs"]


class Runs(SyncAPIResource):
    """Usage: `client.runs.get(result.id).model_input` is exactly what the model saw."""

    def get(self, run_id: str, *, timeout: Timeout = None) -> Run:
        """A run with its exact model input, hidden reminders included."""
        return self._client._request(_get(run_id), timeout=timeout)

    def replay(
        self, run_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> RunResult:
        """Send the run's stored model input to the provider again; a new run answers."""
        return self._client._request(_replay(run_id, idempotency_key), timeout=timeout)


class AsyncRuns(AsyncAPIResource):
    """Usage: `(await client.runs.get(result.id)).model_input` is exactly what the model saw."""

    async def get(self, run_id: str, *, timeout: Timeout = None) -> Run:
        """A run with its exact model input, hidden reminders included."""
        return await self._client._request(_get(run_id), timeout=timeout)

    async def replay(
        self, run_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> RunResult:
        """Send the run's stored model input to the provider again; a new run answers."""
        return await self._client._request(_replay(run_id, idempotency_key), timeout=timeout)


def _run_path(run_id: str) -> str:
    check.nonempty("run_id", run_id)
    return f"/v1/runs/{path_segment(run_id)}"


def _get(run_id: str) -> APIRequest[Run]:
    return APIRequest("GET", _run_path(run_id), Run)


def _replay(run_id: str, idempotency_key: Optional[str]) -> APIRequest[RunResult]:
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "POST",
        f"{_run_path(run_id)}/replay",
        RunResult,
        long_running=True,
        idempotency_key=idempotency_key,
    )
