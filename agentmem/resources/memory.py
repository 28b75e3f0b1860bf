"""Memory blocks: read, guarded update, append, delete, recall, and read-modify-write."""

from __future__ import annotations

import builtins
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Optional, Union

from .._base_client import APIRequest, Timeout, conflict_delay, path_segment
from .._exceptions import ArgumentTypeError, ConflictError, NotFoundError
from ..types import (
    BlockVersion,
    MemoryAppendRequest,
    MemoryBlock,
    MemoryRecallRequest,
    MemoryRecallResult,
    MemoryUpdateRequest,
)
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource, request_body

__all__ = ["AsyncMemory", "Memory"]

log = logging.getLogger("agentmem")

_SCOPES = ("user", "agent", "all")
_MODES = ("hybrid", "vector", "keyword")


class Memory(SyncAPIResource):
    """Core and archival memory blocks of the user scope or of one agent.

    Usage: `client.memory.append("archival", "Prefers window seats", agent_id="travel")`
    """

    def list(
        self, *, scope: str = "user", agent_id: Optional[str] = None, timeout: Timeout = None
    ) -> builtins.list[MemoryBlock]:
        """Blocks of a scope. Passing `agent_id` with the default scope selects `"agent"`.

        Archival blocks come with `content=""` and their `line_count`; read them with `get`.
        """
        return self._client._request(_list(scope, agent_id), timeout=timeout)

    def get(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        start_line: Optional[int] = None,
        end_line: Optional[int] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """One block, or its 1-based inclusive line range. Usage: `memory.get("core")`."""
        return self._client._request(
            _get(block_type, agent_id, start_line, end_line), timeout=timeout
        )

    def update(
        self,
        block_type: str,
        content: str,
        *,
        expected_updated_at: Union[datetime, str, None],
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Replace a block's text if it is unchanged since read; else `ConflictError`.

        Usage: `memory.update("core", text, expected_updated_at=block.updated_at)`;
        `expected_updated_at=None` creates the block and conflicts if one exists.
        """
        return self._client._request(
            _update(block_type, content, expected_updated_at, agent_id, idempotency_key),
            timeout=timeout,
        )

    def append(
        self,
        block_type: str,
        text: str,
        *,
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Add lines at the end atomically, creating the block if missing; no read needed."""
        return self._client._request(
            _append(block_type, text, agent_id, idempotency_key), timeout=timeout
        )

    def delete(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> None:
        """Delete a block and everything derived from it; deleting a missing block is fine."""
        self._client._request(_delete(block_type, agent_id, idempotency_key), timeout=timeout)

    def recall(
        self,
        query: str,
        *,
        agent_id: Optional[str] = None,
        scope: str = "all",
        limit: int = 5,
        min_score: float = 0.0,
        mode: str = "hybrid",
        updated_after: Union[datetime, str, None] = None,
        updated_before: Union[datetime, str, None] = None,
        timeout: Timeout = None,
    ) -> builtins.list[MemoryRecallResult]:
        """Archival chunks matching `query`, best first. Usage: `memory.recall("seat?")`."""
        request = _recall(
            query, agent_id, scope, limit, min_score, mode, updated_after, updated_before
        )
        return self._client._request(request, timeout=timeout)

    def history(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        limit: int = 20,
        timeout: Timeout = None,
    ) -> builtins.list[BlockVersion]:
        """Earlier versions of a block from the change feed, newest first (core blocks carry
        their whole `content` for every write). Revert the last write, guarded:
        `v = memory.history("core", limit=2); memory.update("core", v[1].content,
        expected_updated_at=v[0].updated_at)`."""
        return self._client._request(_history(block_type, agent_id, limit), timeout=timeout)

    def modify(
        self,
        block_type: str,
        fn: Callable[[str], str],
        *,
        agent_id: Optional[str] = None,
        max_attempts: int = 8,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Read, apply `fn` to the text, write back guarded; on a lost race re-read and retry.

        Usage: `memory.modify("core", lambda text: text + "\\nLikes tea")`. A missing block
        reads as `""`. After `max_attempts` lost races the last `ConflictError` is raised.
        """
        check.int_between("max_attempts", max_attempts, 1)
        for attempt in range(max_attempts):
            try:
                block = self.get(block_type, agent_id=agent_id, timeout=timeout)
                content, expected = block.content, block.updated_at
            except NotFoundError:
                content, expected = "", None
            new_content = fn(content)
            try:
                return self.update(
                    block_type,
                    new_content,
                    expected_updated_at=expected,
                    agent_id=agent_id,
                    timeout=timeout,
                )
            except ConflictError as exc:
                if attempt + 1 == max_attempts:
                    raise
                _log_conflict(exc, attempt, max_attempts)
                self._client._wait(conflict_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncMemory(AsyncAPIResource):
    """Core and archival memory blocks of the user scope or of one agent.

    Usage: `await client.memory.append("archival", "Prefers window seats", agent_id="travel")`
    """

    async def list(
        self, *, scope: str = "user", agent_id: Optional[str] = None, timeout: Timeout = None
    ) -> builtins.list[MemoryBlock]:
        """Blocks of a scope. Passing `agent_id` with the default scope selects `"agent"`.

        Archival blocks come with `content=""` and their `line_count`; read them with `get`.
        """
        return await self._client._request(_list(scope, agent_id), timeout=timeout)

    async def get(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        start_line: Optional[int] = None,
        end_line: Optional[int] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """One block, or its 1-based inclusive line range. Usage: `await memory.get("core")`."""
        return await self._client._request(
            _get(block_type, agent_id, start_line, end_line), timeout=timeout
        )

    async def update(
        self,
        block_type: str,
        content: str,
        *,
        expected_updated_at: Union[datetime, str, None],
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Replace a block's text if it is unchanged since read; else `ConflictError`.

        Usage: `await memory.update("core", text, expected_updated_at=block.updated_at)`;
        `expected_updated_at=None` creates the block and conflicts if one exists.
        """
        return await self._client._request(
            _update(block_type, content, expected_updated_at, agent_id, idempotency_key),
            timeout=timeout,
        )

    async def append(
        self,
        block_type: str,
        text: str,
        *,
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Add lines at the end atomically, creating the block if missing; no read needed."""
        return await self._client._request(
            _append(block_type, text, agent_id, idempotency_key), timeout=timeout
        )

    async def delete(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> None:
        """Delete a block and everything derived from it; deleting a missing block is fine."""
        await self._client._request(_delete(block_type, agent_id, idempotency_key), timeout=timeout)

    async def recall(
        self,
        query: str,
        *,
        agent_id: Optional[str] = None,
        scope: str = "all",
        limit: int = 5,
        min_score: float = 0.0,
        mode: str = "hybrid",
        updated_after: Union[datetime, str, None] = None,
        updated_before: Union[datetime, str, None] = None,
        timeout: Timeout = None,
    ) -> builtins.list[MemoryRecallResult]:
        """Archival chunks matching `query`, best first. Usage: `await memory.recall("seat?")`."""
        request = _recall(
            query, agent_id, scope, limit, min_score, mode, updated_after, updated_before
        )
        return await self._client._request(request, timeout=timeout)

    async def history(
        self,
        block_type: str,
        *,
        agent_id: Optional[str] = None,
        limit: int = 20,
        timeout: Timeout = None,
    ) -> builtins.list[BlockVersion]:
        """Earlier versions of a block from the change feed, newest first (core blocks carry
        their whole `content` for every write). Revert the last write, guarded:
        `v = await memory.history("core", limit=2); await memory.update("core", v[1].content,
        expected_updated_at=v[0].updated_at)`."""
        return await self._client._request(_history(block_type, agent_id, limit), timeout=timeout)

    async def modify(
        self,
        block_type: str,
        fn: Callable[[str], Union[str, Awaitable[str]]],
        *,
        agent_id: Optional[str] = None,
        max_attempts: int = 8,
        timeout: Timeout = None,
    ) -> MemoryBlock:
        """Read, apply `fn` (sync or async) to the text, write back guarded; retry lost races.

        Usage: `await memory.modify("core", lambda text: text + "\\nLikes tea")`. A missing
        block reads as `""`. After `max_attempts` lost races the last `ConflictError` is raised.
        """
        check.int_between("max_attempts", max_attempts, 1)
        for attempt in range(max_attempts):
            try:
                block = await self.get(block_type, agent_id=agent_id, timeout=timeout)
                content, expected = block.content, block.updated_at
            except NotFoundError:
                content, expected = "", None
            new_content = fn(content)
            if inspect.isawaitable(new_content):
                new_content = await new_content
            try:
                return await self.update(
                    block_type,
                    new_content,
                    expected_updated_at=expected,
                    agent_id=agent_id,
                    timeout=timeout,
                )
            except ConflictError as exc:
                if attempt + 1 == max_attempts:
                    raise
                _log_conflict(exc, attempt, max_attempts)
                await self._client._wait(conflict_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover


def _block_path(block_type: str, agent_id: Optional[str]) -> str:
    check.block_type(block_type)
    check.agent_id(agent_id)
    return f"/v1/memory/{path_segment(block_type)}"


def _list(scope: str, agent_id: Optional[str]) -> APIRequest[list[MemoryBlock]]:
    check.one_of("scope", scope, _SCOPES)
    check.agent_id(agent_id)
    if agent_id is not None and scope == "user":
        scope = "agent"
    check.agent_scope(scope, agent_id)
    return APIRequest(
        "GET", "/v1/memory", list[MemoryBlock], params={"scope": scope, "agent_id": agent_id}
    )


def _history(
    block_type: str, agent_id: Optional[str], limit: int
) -> APIRequest[list[BlockVersion]]:
    path = _block_path(block_type, agent_id) + "/history"
    check.int_between("limit", limit, 1, 1000)
    return APIRequest(
        "GET", path, list[BlockVersion], params={"agent_id": agent_id, "limit": limit}
    )


def _get(
    block_type: str, agent_id: Optional[str], start_line: Optional[int], end_line: Optional[int]
) -> APIRequest[MemoryBlock]:
    path = _block_path(block_type, agent_id)
    check.line_range(start_line, end_line)
    params = {"agent_id": agent_id, "start_line": start_line, "end_line": end_line}
    return APIRequest("GET", path, MemoryBlock, params=params)


def _update(
    block_type: str,
    content: str,
    expected_updated_at: Union[datetime, str, None],
    agent_id: Optional[str],
    idempotency_key: Optional[str],
) -> APIRequest[MemoryBlock]:
    path = _block_path(block_type, agent_id)
    if not isinstance(content, str):
        raise ArgumentTypeError(f"content must be a str; got {type(content).__name__}")
    check.idempotency_key(idempotency_key)
    body = check.model(
        MemoryUpdateRequest,
        content=content,
        expected_updated_at=check.timestamp("expected_updated_at", expected_updated_at),
    )
    return APIRequest(
        "PUT",
        path,
        MemoryBlock,
        params={"agent_id": agent_id},
        json=request_body(body),
        idempotency_key=idempotency_key,
    )


def _append(
    block_type: str, text: str, agent_id: Optional[str], idempotency_key: Optional[str]
) -> APIRequest[MemoryBlock]:
    path = _block_path(block_type, agent_id)
    check.nonempty("text", text)
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "POST",
        f"{path}/append",
        MemoryBlock,
        params={"agent_id": agent_id},
        json=request_body(check.model(MemoryAppendRequest, text=text)),
        idempotency_key=idempotency_key,
    )


def _delete(
    block_type: str, agent_id: Optional[str], idempotency_key: Optional[str]
) -> APIRequest[None]:
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "DELETE",
        _block_path(block_type, agent_id),
        params={"agent_id": agent_id},
        idempotency_key=idempotency_key,
    )


def _recall(
    query: str,
    agent_id: Optional[str],
    scope: str,
    limit: int,
    min_score: float,
    mode: str,
    updated_after: Union[datetime, str, None],
    updated_before: Union[datetime, str, None],
) -> APIRequest[list[MemoryRecallResult]]:
    check.nonempty("query", query)
    check.agent_id(agent_id)
    check.one_of("scope", scope, _SCOPES)
    check.agent_scope(scope, agent_id)
    check.one_of("mode", mode, _MODES)
    check.int_between("limit", limit, 1, 100)
    check.fraction("min_score", min_score)
    fields = {
        "query": query,
        "scope": scope,
        "limit": limit,
        "min_score": min_score,
        "mode": mode,
        "agent_id": agent_id,
        "updated_after": check.timestamp("updated_after", updated_after),
        "updated_before": check.timestamp("updated_before", updated_before),
    }
    body = check.model(MemoryRecallRequest, **{k: v for k, v in fields.items() if v is not None})
    return APIRequest(
        "POST", "/v1/memory/recall", list[MemoryRecallResult], json=request_body(body)
    )


def _log_conflict(exc: ConflictError, attempt: int, max_attempts: int) -> None:
    log.info(
        "memory.modify lost a race (current updated_at %s); re-reading, attempt %d of %d",
        exc.current_updated_at,
        attempt + 2,
        max_attempts,
    )
