"""`Client` and `AsyncClient`: configuration, lazy resources, and the send-and-retry loop."""

from __future__ import annotations

import asyncio
import time
from functools import cached_property
from types import TracebackType
from typing import Optional

import httpx

from ._base_client import APIRequest, BaseClient, T, Timeout
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._exceptions import AgentMemError, ArgumentTypeError
from .resources import (
    Admin,
    Agents,
    AsyncAdmin,
    AsyncAgents,
    AsyncEvents,
    AsyncMemory,
    AsyncRuns,
    AsyncState,
    AsyncThreads,
    Events,
    Memory,
    Runs,
    State,
    Threads,
)
from .resources.state import AsyncChangeListener, ChangeListener

__all__ = ["AsyncClient", "Client"]

# Module-level so tests can replace them and assert the waits without waiting.
_sleep = time.sleep
_async_sleep = asyncio.sleep


class Client(BaseClient):
    """Synchronous client for the agentmem server.

    Usage: `with Client() as client: client.memory.append("archival", "likes tea")`

    `api_key` and `base_url` default to `AGENTMEM_API_KEY` and `AGENTMEM_BASE_URL`. Every
    method also takes `timeout=` for that call alone. A given `http_client` is used as is and
    left open on `close()`: its owner closes it.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ArgumentTypeError(
                f"http_client must be an httpx.Client, got {type(http_client)!r}"
            )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)
        self._listeners: list[ChangeListener] = []

    @cached_property
    def memory(self) -> Memory:
        return Memory(self)

    @cached_property
    def agents(self) -> Agents:
        return Agents(self)

    @cached_property
    def runs(self) -> Runs:
        return Runs(self)

    @cached_property
    def events(self) -> Events:
        """The change feed: `list` pages it, `stream` follows it live."""
        return Events(self)

    @cached_property
    def threads(self) -> Threads:
        return Threads(self)

    @cached_property
    def state(self) -> State:
        """Keyed state: exact JSON values by `(namespace, key)`, with TTLs and lookups."""
        return State(self)

    @cached_property
    def admin(self) -> Admin:
        """Tenant and key management; needs a client built with the server's admin key."""
        return Admin(self)

    def close(self) -> None:
        for listener in self._listeners:  # on_change handlers end before the connections
            listener.stop()
        self._listeners.clear()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def _request(self, request: APIRequest[T], *, timeout: Timeout = None) -> T:
        http_request = self._build_request(self._http, request, timeout)
        retries_taken = 0
        while True:
            try:
                response = self._http.send(http_request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(http_request, retries_taken, error=exc)
                if delay is None:
                    error, cause = self._transport_error(exc, http_request)
                    raise error from cause
            except httpx.HTTPError as exc:  # not transient: undecodable body, redirect loop
                raise AgentMemError(
                    f"{request.method} {request.path} failed: {self._redact(str(exc))}"
                ) from None
            else:
                if response.is_success:
                    return self._parse_response(request, response)
                delay = self._retry_delay(http_request, retries_taken, response=response)
                if delay is None:
                    raise self._status_error(response)
            self._wait(delay)
            retries_taken += 1

    def _wait(self, seconds: float) -> None:
        _sleep(seconds)


class AsyncClient(BaseClient):
    """Asynchronous client for the agentmem server; the same surface as `Client`, awaited.

    Usage: `async with AsyncClient() as client: await client.memory.recall("tea")`
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ArgumentTypeError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client)!r}"
            )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._listeners: list[AsyncChangeListener] = []

    @cached_property
    def memory(self) -> AsyncMemory:
        return AsyncMemory(self)

    @cached_property
    def agents(self) -> AsyncAgents:
        return AsyncAgents(self)

    @cached_property
    def runs(self) -> AsyncRuns:
        return AsyncRuns(self)

    @cached_property
    def events(self) -> AsyncEvents:
        """The change feed: `list` pages it, `stream` follows it live."""
        return AsyncEvents(self)

    @cached_property
    def threads(self) -> AsyncThreads:
        return AsyncThreads(self)

    @cached_property
    def state(self) -> AsyncState:
        """Keyed state: exact JSON values by `(namespace, key)`, with TTLs and lookups."""
        return AsyncState(self)

    @cached_property
    def admin(self) -> AsyncAdmin:
        """Tenant and key management; needs a client built with the server's admin key."""
        return AsyncAdmin(self)

    async def aclose(self) -> None:
        for listener in self._listeners:  # on_change handlers end before the connections
            await listener.stop()
        self._listeners.clear()
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    async def _request(self, request: APIRequest[T], *, timeout: Timeout = None) -> T:
        http_request = self._build_request(self._http, request, timeout)
        retries_taken = 0
        while True:
            try:
                response = await self._http.send(http_request)
            except httpx.TransportError as exc:
                delay = self._retry_delay(http_request, retries_taken, error=exc)
                if delay is None:
                    error, cause = self._transport_error(exc, http_request)
                    raise error from cause
            except httpx.HTTPError as exc:  # not transient: undecodable body, redirect loop
                raise AgentMemError(
                    f"{request.method} {request.path} failed: {self._redact(str(exc))}"
                ) from None
            else:
                if response.is_success:
                    return self._parse_response(request, response)
                delay = self._retry_delay(http_request, retries_taken, response=response)
                if delay is None:
                    raise self._status_error(response)
            await self._wait(delay)
            retries_taken += 1

    async def _wait(self, seconds: float) -> None:
        await _async_sleep(seconds)
