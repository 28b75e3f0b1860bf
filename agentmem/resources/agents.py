"""Agents: create, read, delete, and run one turn with memory."""

from __future__ import annotations

import builtins
from typing import Any, Optional

from .._base_client import APIRequest, Timeout, path_segment
from ..types import Agent, AgentCreateRequest, RunOptions, RunRequest, RunResult
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource, request_body

__all__ = ["Agents", "AsyncAgents"]


class Agents(SyncAPIResource):
    """Usage: `client.agents.run("travel", "Book me a seat", options=RunOptions())`."""

    def create(
        self,
        agent_id: str,
        *,
        instructions: str = "",
        model: Optional[str] = None,
        metadata: Optional[dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Agent:
        """Create an agent; `ConflictError` if the id exists. `model=None`: the server's."""
        return self._client._request(
            _create(agent_id, instructions, model, metadata, idempotency_key), timeout=timeout
        )

    def get(self, agent_id: str, *, timeout: Timeout = None) -> Agent:
        return self._client._request(_get(agent_id), timeout=timeout)

    def list(self, *, timeout: Timeout = None) -> builtins.list[Agent]:
        return self._client._request(_LIST, timeout=timeout)

    def delete(
        self, agent_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        """Delete the agent with its memory, threads and runs."""
        self._client._request(_delete(agent_id, idempotency_key), timeout=timeout)

    def run(
        self,
        agent_id: str,
        message: str,
        *,
        thread_id: Optional[str] = None,
        options: Optional[RunOptions] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> RunResult:
        """One turn: the agent answers `message`, continuing `thread_id` or starting a thread.

        Without `timeout=` a run may take at least `RUN_TIMEOUT` seconds (it waits on an LLM).
        A retry (the client's own, or yours with the same `idempotency_key`) never runs the
        model again: it gets the first run's answer.
        """
        return self._client._request(
            _run(agent_id, message, thread_id, options, idempotency_key), timeout=timeout
        )


class AsyncAgents(AsyncAPIResource):
    """Usage: `await client.agents.run("travel", "Book me a seat", options=RunOptions())`."""

    async def create(
        self,
        agent_id: str,
        *,
        instructions: str = "",
        model: Optional[str] = None,
        metadata: Optional[dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Agent:
        """Create an agent; `ConflictError` if the id exists. `model=None`: the server's."""
        return await self._client._request(
            _create(agent_id, instructions, model, metadata, idempotency_key), timeout=timeout
        )

    async def get(self, agent_id: str, *, timeout: Timeout = None) -> Agent:
        return await self._client._request(_get(agent_id), timeout=timeout)

    async def list(self, *, timeout: Timeout = None) -> builtins.list[Agent]:
        return await self._client._request(_LIST, timeout=timeout)

    async def delete(
        self, agent_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        """Delete the agent with its memory, threads and runs."""
        await self._client._request(_delete(agent_id, idempotency_key), timeout=timeout)

    async def run(
        self,
        agent_id: str,
        message: str,
        *,
        thread_id: Optional[str] = None,
        options: Optional[RunOptions] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> RunResult:
        """One turn: the agent answers `message`, continuing `thread_id` or starting a thread.

        Without `timeout=` a run may take at least `RUN_TIMEOUT` seconds (it waits on an LLM).
        A retry (the client's own, or yours with the same `idempotency_key`) never runs the
        model again: it gets the first run's answer.
        """
        return await self._client._request(
            _run(agent_id, message, thread_id, options, idempotency_key), timeout=timeout
        )


_LIST: APIRequest[list[Agent]] = APIRequest("GET", "/v1/agents", list[Agent])


def _agent_path(agent_id: str) -> str:
    check.agent_id(agent_id, required=True)
    return f"/v1/agents/{path_segment(agent_id)}"


def _create(
    agent_id: str,
    instructions: str,
    model: Optional[str],
    metadata: Optional[dict[str, Any]],
    idempotency_key: Optional[str],
) -> APIRequest[Agent]:
    check.agent_id(agent_id, required=True)
    check.idempotency_key(idempotency_key)
    fields = {"model": model, "metadata": metadata}
    body = check.model(
        AgentCreateRequest,
        agent_id=agent_id,
        instructions=instructions,
        **{k: v for k, v in fields.items() if v is not None},
    )
    return APIRequest(
        "POST", "/v1/agents", Agent, json=request_body(body), idempotency_key=idempotency_key
    )


def _get(agent_id: str) -> APIRequest[Agent]:
    return APIRequest("GET", _agent_path(agent_id), Agent)


def _delete(agent_id: str, idempotency_key: Optional[str]) -> APIRequest[None]:
    check.idempotency_key(idempotency_key)
    return APIRequest("DELETE", _agent_path(agent_id), idempotency_key=idempotency_key)


def _run(
    agent_id: str,
    message: str,
    thread_id: Optional[str],
    options: Optional[RunOptions],
    idempotency_key: Optional[str],
) -> APIRequest[RunResult]:
    path = _agent_path(agent_id)
    check.nonempty("message", message)
    if thread_id is not None:
        check.nonempty("thread_id", thread_id)
    check.idempotency_key(idempotency_key)
    fields = {"thread_id": thread_id, "options": options}
    body = check.model(
        RunRequest, message=message, **{k: v for k, v in fields.items() if v is not None}
    )
    return APIRequest(
        "POST",
        f"{path}/runs",
        RunResult,
        json=request_body(body),
        long_running=True,
        idempotency_key=idempotency_key,
    )
