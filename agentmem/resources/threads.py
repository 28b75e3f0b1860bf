"""Threads: conversations as their own resource, and their visible transcript.

thread = client.threads.create(agent_id="travel", title="Lisbon")
client.threads.add_messages(thread.id, [{"role": "user", "content": "Window seat, please"}])
page = client.threads.messages(thread.id, limit=50)          # oldest first
client.agents.run("travel", "Which seat?", thread_id=thread.id)
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

from .._base_client import APIRequest, Timeout, path_segment
from ..types import (
    CompactResult,
    Message,
    MessageInput,
    MessagesAddRequest,
    MessagesDeleted,
    Thread,
    ThreadCompactRequest,
    ThreadCreateRequest,
    ThreadPage,
    ThreadUpdateRequest,
)
from ..types.threads import PAGE_MAX
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource, request_body

__all__ = ["NOT_GIVEN", "AsyncThreads", "Threads"]


class _NotGiven:
    """The default of `update`'s fields: leave the field as it is (`None` clears the title)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()

MessagesArg = Iterable[Union[MessageInput, Mapping[str, Any]]]
"""`MessageInput`s or dicts like `{"role": "user", "content": "Hi"}`."""


class Threads(SyncAPIResource):
    """Usage: `client.threads.messages(result.thread_id)`."""

    def create(
        self,
        *,
        agent_id: Optional[str] = None,
        title: Optional[str] = None,
        metadata: Optional[dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Thread:
        """A new thread: of `agent_id` (`NotFoundError` if no such agent), or of no agent until
        its first run binds it."""
        return self._client._request(
            _create(agent_id, title, metadata, idempotency_key), timeout=timeout
        )

    def list(
        self,
        *,
        agent_id: Optional[str] = None,
        limit: int = 20,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> ThreadPage:
        """A page of threads, newest first; pass `page.next_cursor` as `cursor` for the next."""
        return self._client._request(_list(agent_id, limit, cursor), timeout=timeout)

    def get(self, thread_id: str, *, timeout: Timeout = None) -> Thread:
        return self._client._request(_get(thread_id), timeout=timeout)

    def update(
        self,
        thread_id: str,
        *,
        title: Optional[str] = NOT_GIVEN,
        metadata: Optional[dict[str, Any]] = NOT_GIVEN,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Thread:
        """Change the title (`None` removes it) and/or replace the metadata; others stay."""
        return self._client._request(
            _update(thread_id, title, metadata, idempotency_key), timeout=timeout
        )

    def delete(
        self, thread_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        """Delete the thread with its messages and run records."""
        self._client._request(_delete(thread_id, idempotency_key), timeout=timeout)

    def messages(
        self,
        thread_id: str,
        *,
        limit: int = 100,
        before: Optional[str] = None,
        after: Optional[str] = None,
        timeout: Timeout = None,
    ) -> builtins.list[Message]:
        """Messages oldest first: the first `limit`, or the `limit` after message id `after`;
        with `before` alone the last `limit` before it. Hidden reminders are not among them."""
        return self._client._request(_messages(thread_id, limit, before, after), timeout=timeout)

    def add_messages(
        self,
        thread_id: str,
        messages: MessagesArg,
        *,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> builtins.list[Message]:
        """Append messages without a run (all or none); later runs see them as history."""
        return self._client._request(
            _add_messages(thread_id, messages, idempotency_key), timeout=timeout
        )

    def delete_messages(
        self,
        thread_id: str,
        *,
        before: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> int:
        """Delete the thread's messages (only those before message id `before`); how many."""
        return self._client._request(
            _delete_messages(thread_id, before, idempotency_key), timeout=timeout
        ).deleted

    def compact(
        self,
        thread_id: str,
        *,
        keep_last: int = 20,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> CompactResult:
        """Replace the messages before the last `keep_last` with one summary the provider
        writes, moving them to the agent's archival memory as dated lines (recall finds them).
        Waits on the LLM, like a run."""
        return self._client._request(
            _compact(thread_id, keep_last, idempotency_key), timeout=timeout
        )


class AsyncThreads(AsyncAPIResource):
    """Usage: `await client.threads.messages(result.thread_id)`."""

    async def create(
        self,
        *,
        agent_id: Optional[str] = None,
        title: Optional[str] = None,
        metadata: Optional[dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Thread:
        """A new thread: of `agent_id` (`NotFoundError` if no such agent), or of no agent until
        its first run binds it."""
        return await self._client._request(
            _create(agent_id, title, metadata, idempotency_key), timeout=timeout
        )

    async def list(
        self,
        *,
        agent_id: Optional[str] = None,
        limit: int = 20,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> ThreadPage:
        """A page of threads, newest first; pass `page.next_cursor` as `cursor` for the next."""
        return await self._client._request(_list(agent_id, limit, cursor), timeout=timeout)

    async def get(self, thread_id: str, *, timeout: Timeout = None) -> Thread:
        return await self._client._request(_get(thread_id), timeout=timeout)

    async def update(
        self,
        thread_id: str,
        *,
        title: Optional[str] = NOT_GIVEN,
        metadata: Optional[dict[str, Any]] = NOT_GIVEN,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Thread:
        """Change the title (`None` removes it) and/or replace the metadata; others stay."""
        return await self._client._request(
            _update(thread_id, title, metadata, idempotency_key), timeout=timeout
        )

    async def delete(
        self, thread_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        """Delete the thread with its messages and run records."""
        await self._client._request(_delete(thread_id, idempotency_key), timeout=timeout)

    async def messages(
        self,
        thread_id: str,
        *,
        limit: int = 100,
        before: Optional[str] = None,
        after: Optional[str] = None,
        timeout: Timeout = None,
    ) -> builtins.list[Message]:
        """Messages oldest first: the first `limit`, or the `limit` after message id `after`;
        with `before` alone the last `limit` before it. Hidden reminders are not among them."""
        return await self._client._request(
            _messages(thread_id, limit, before, after), timeout=timeout
        )

    async def add_messages(
        self,
        thread_id: str,
        messages: MessagesArg,
        *,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> builtins.list[Message]:
        """Append messages without a run (all or none); later runs see them as history."""
        return await self._client._request(
            _add_messages(thread_id, messages, idempotency_key), timeout=timeout
        )

    async def delete_messages(
        self,
        thread_id: str,
        *,
        before: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> int:
        """Delete the thread's messages (only those before message id `before`); how many."""
        deleted = await self._client._request(
            _delete_messages(thread_id, before, idempotency_key), timeout=timeout
        )
        return deleted.deleted

    async def compact(
        self,
        thread_id: str,
        *,
        keep_last: int = 20,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> CompactResult:
        """Replace the messages before the last `keep_last` with one summary the provider
        writes, moving them to the agent's archival memory as dated lines (recall finds them).
        Waits on the LLM, like a run."""
        return await self._client._request(
            _compact(thread_id, keep_last, idempotency_key), timeout=timeout
        )


def _thread_path(thread_id: str) -> str:
    check.nonempty("thread_id", thread_id)
    return f"/v1/threads/{path_segment(thread_id)}"


def _optional_id(name: str, value: Optional[str]) -> None:
    if value is not None:
        check.nonempty(name, value)


def _create(
    agent_id: Optional[str],
    title: Optional[str],
    metadata: Optional[dict[str, Any]],
    idempotency_key: Optional[str],
) -> APIRequest[Thread]:
    check.agent_id(agent_id)
    check.idempotency_key(idempotency_key)
    fields = {"agent_id": agent_id, "title": title, "metadata": metadata}
    body = check.model(ThreadCreateRequest, **{k: v for k, v in fields.items() if v is not None})
    return APIRequest(
        "POST", "/v1/threads", Thread, json=request_body(body), idempotency_key=idempotency_key
    )


def _list(agent_id: Optional[str], limit: int, cursor: Optional[str]) -> APIRequest[ThreadPage]:
    check.agent_id(agent_id)
    check.int_between("limit", limit, 1, PAGE_MAX)
    _optional_id("cursor", cursor)
    params = {"agent_id": agent_id, "limit": limit, "cursor": cursor}
    return APIRequest("GET", "/v1/threads", ThreadPage, params=params)


def _get(thread_id: str) -> APIRequest[Thread]:
    return APIRequest("GET", _thread_path(thread_id), Thread)


def _update(
    thread_id: str,
    title: Optional[str],
    metadata: Optional[dict[str, Any]],
    idempotency_key: Optional[str],
) -> APIRequest[Thread]:
    path = _thread_path(thread_id)
    check.idempotency_key(idempotency_key)
    fields = {"title": title, "metadata": metadata}
    body = check.model(
        ThreadUpdateRequest, **{k: v for k, v in fields.items() if v is not NOT_GIVEN}
    )
    return APIRequest(
        "PATCH", path, Thread, json=request_body(body), idempotency_key=idempotency_key
    )


def _delete(thread_id: str, idempotency_key: Optional[str]) -> APIRequest[None]:
    check.idempotency_key(idempotency_key)
    return APIRequest("DELETE", _thread_path(thread_id), idempotency_key=idempotency_key)


def _messages(
    thread_id: str, limit: int, before: Optional[str], after: Optional[str]
) -> APIRequest[list[Message]]:
    path = _thread_path(thread_id)
    check.int_between("limit", limit, 1, PAGE_MAX)
    _optional_id("before", before)
    _optional_id("after", after)
    params = {"limit": limit, "before": before, "after": after}
    return APIRequest("GET", f"{path}/messages", list[Message], params=params)


def _add_messages(
    thread_id: str, messages: MessagesArg, idempotency_key: Optional[str]
) -> APIRequest[list[Message]]:
    path = _thread_path(thread_id)
    check.idempotency_key(idempotency_key)
    if isinstance(messages, (str, bytes, Mapping)):
        check.model(MessagesAddRequest, messages=messages)  # refuses it, naming the field
    body = check.model(MessagesAddRequest, messages=list(messages))
    return APIRequest(
        "POST",
        f"{path}/messages",
        list[Message],
        json=request_body(body),
        idempotency_key=idempotency_key,
    )


def _delete_messages(
    thread_id: str, before: Optional[str], idempotency_key: Optional[str]
) -> APIRequest[MessagesDeleted]:
    path = _thread_path(thread_id)
    _optional_id("before", before)
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "DELETE",
        f"{path}/messages",
        MessagesDeleted,
        params={"before": before},
        idempotency_key=idempotency_key,
    )


def _compact(
    thread_id: str, keep_last: int, idempotency_key: Optional[str]
) -> APIRequest[CompactResult]:
    path = _thread_path(thread_id)
    check.int_between("keep_last", keep_last, 0, PAGE_MAX)
    check.idempotency_key(idempotency_key)
    body = check.model(ThreadCompactRequest, keep_last=keep_last)
    return APIRequest(
        "POST",
        f"{path}/compact",
        CompactResult,
        json=request_body(body),
        long_running=True,
        idempotency_key=idempotency_key,
    )
