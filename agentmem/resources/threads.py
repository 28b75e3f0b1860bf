"""Threads: the visible transcript of an agent conversation."""

from __future__ import annotations

from .._base_client import APIRequest, Timeout, path_segment
from ..types import Message
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource

__all__ = ["AsyncThreads", "Threads"]


class Threads(SyncAPIResource):
    """Usage: `client.threads.messages(result.thread_id)`."""

    def messages(self, thread_id: str, *, timeout: Timeout = None) -> list[Message]:
        """User and assistant turns, oldest first; hidden reminders are not part of them."""
        return self._client._request(_messages(thread_id), timeout=timeout)


class AsyncThreads(AsyncAPIResource):
    """Usage: `await client.threads.messages(result.thread_id)`."""

    async def messages(self, thread_id: str, *, timeout: Timeout = None) -> list[Message]:
        """User and assistant turns, oldest first; hidden reminders are not part of them."""
        return await self._client._request(_messages(thread_id), timeout=timeout)


def _messages(thread_id: str) -> APIRequest[list[Message]]:
    check.nonempty("thread_id", thread_id)
    return APIRequest("GET", f"/v1/threads/{path_segment(thread_id)}/messages", list[Message])
