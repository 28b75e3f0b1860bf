"""The change feed: pages of the tenant's event log, and a live stream that resumes by itself.

    page = client.events.list(after=0, kinds=["core"])
    for event in client.events.stream(patterns=["customer_*"]):   # blocks; break to stop
        print(event.seq, event.kind, event.action, event.key)

Streams are Server-Sent Events. After a dropped connection (or a server that closed a stream
whose reader fell behind) the iterator reconnects with `Last-Event-ID` and carries on from the
last event it yielded: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

import httpx

from .._base_client import APIRequest, BaseClient, Timeout, backoff_delay, check_timeout
from .._constants import RETRYABLE_STATUS_CODES
from .._exceptions import AgentMemError, APIStatusError, ArgumentError
from ..types import EVENT_KINDS, EventPage, MemoryEvent
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource

if TYPE_CHECKING:
    from .._client import AsyncClient, Client

__all__ = ["AsyncEvents", "Events"]

log = logging.getLogger("agentmem")

STREAM_READ_TIMEOUT = 60.0
"""Seconds a stream waits for a byte; the server sends a keepalive every 15 s by default."""
MAX_RECONNECT_DELAY = 5.0

Namespace = Union[str, Sequence[str], None]

# Module-level so tests can replace them.
_sleep = time.sleep
_async_sleep = asyncio.sleep


class Events(SyncAPIResource):
    """The tenant's change feed. Usage: `for e in client.events.stream(kinds=["state"]): ...`"""

    def list(
        self,
        *,
        after: int = 0,
        patterns: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        namespace: Namespace = None,
        limit: int = 100,
        timeout: Timeout = None,
    ) -> EventPage:
        """Events after `after` in `seq` order; go on with `after=page.next_after` while
        `page.has_more`. `patterns`: shell globs on the key; `namespace`: a prefix.
        `GoneError` if retention already removed events after `after`."""
        return self._client._request(
            _list(after, patterns, kinds, namespace, limit), timeout=timeout
        )

    def stream(
        self,
        *,
        after: Optional[int] = None,
        patterns: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        namespace: Namespace = None,
        max_reconnects: Optional[int] = None,
        timeout: Timeout = None,
    ) -> Iterator[MemoryEvent]:
        """Matching events as they are written (after `after`, or from now), forever.

        Reconnects by itself after a dropped connection, resuming after the last event it
        yielded; `max_reconnects` bounds consecutive failed attempts (None: no bound). Errors
        a retry cannot fix (401, 410 `GoneError`, 422) are raised. Stop by breaking out.
        """
        yield from follow(
            self._client,
            after=after,
            patterns=patterns,
            kinds=kinds,
            namespace=namespace,
            max_reconnects=max_reconnects,
            timeout=timeout,
        )


class AsyncEvents(AsyncAPIResource):
    """The tenant's change feed. Usage: `async for e in client.events.stream(): ...`"""

    async def list(
        self,
        *,
        after: int = 0,
        patterns: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        namespace: Namespace = None,
        limit: int = 100,
        timeout: Timeout = None,
    ) -> EventPage:
        """Events after `after` in `seq` order; go on with `after=page.next_after` while
        `page.has_more`. `patterns`: shell globs on the key; `namespace`: a prefix.
        `GoneError` if retention already removed events after `after`."""
        return await self._client._request(
            _list(after, patterns, kinds, namespace, limit), timeout=timeout
        )

    async def stream(
        self,
        *,
        after: Optional[int] = None,
        patterns: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        namespace: Namespace = None,
        max_reconnects: Optional[int] = None,
        timeout: Timeout = None,
    ) -> AsyncIterator[MemoryEvent]:
        """Matching events as they are written (after `after`, or from now), forever.

        Reconnects by itself after a dropped connection, resuming after the last event it
        yielded; `max_reconnects` bounds consecutive failed attempts (None: no bound). Errors
        a retry cannot fix (401, 410 `GoneError`, 422) are raised. Stop by breaking out (and
        `aclose()` the iterator, or let `async for` finish it).
        """
        async for event in follow_async(
            self._client,
            after=after,
            patterns=patterns,
            kinds=kinds,
            namespace=namespace,
            max_reconnects=max_reconnects,
            timeout=timeout,
        ):
            yield event


class StopSignal:
    """Ends a `follow` from another thread, at once: it shuts down the stream's socket, which
    wakes a read blocked on it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def attach(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._sock = sock if isinstance(sock, socket.socket) else None
            if self._event.is_set() and self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)


def follow(
    client: Client,
    *,
    after: Optional[int] = None,
    patterns: Optional[Sequence[str]] = None,
    kinds: Optional[Sequence[str]] = None,
    namespace: Namespace = None,
    max_reconnects: Optional[int] = None,
    timeout: Timeout = None,
    stop: Optional[StopSignal] = None,
) -> Iterator[MemoryEvent]:
    """`Events.stream`'s loop; `stop` (from another thread) ends it."""
    state = _StreamState(client, after, patterns, kinds, namespace, timeout)
    http = client._http
    while stop is None or not stop.is_set():
        request = state.build(http)
        try:
            with http.stream(
                request.method, request.url, headers=request.headers, timeout=state.timeout
            ) as response:
                if stop is not None:
                    stop.attach(response)
                if not response.is_success:
                    response.read()
                    state.failed(response=response)
                else:
                    for line in response.iter_lines():
                        event = state.feed(line)
                        if event is not None:
                            yield event
                    state.ended()
        except httpx.TransportError as exc:
            if stop is not None and stop.is_set():
                return
            state.failed(error=exc)
        delay = state.next_delay(max_reconnects)
        if delay:
            _sleep(delay)


async def follow_async(
    client: AsyncClient,
    *,
    after: Optional[int] = None,
    patterns: Optional[Sequence[str]] = None,
    kinds: Optional[Sequence[str]] = None,
    namespace: Namespace = None,
    max_reconnects: Optional[int] = None,
    timeout: Timeout = None,
) -> AsyncIterator[MemoryEvent]:
    """`AsyncEvents.stream`'s loop (cancel the task consuming it to end it)."""
    state = _StreamState(client, after, patterns, kinds, namespace, timeout)
    http = client._http
    while True:
        request = state.build(http)
        try:
            async with http.stream(
                request.method, request.url, headers=request.headers, timeout=state.timeout
            ) as response:
                if not response.is_success:
                    await response.aread()
                    state.failed(response=response)
                else:
                    async for line in response.aiter_lines():
                        event = state.feed(line)
                        if event is not None:
                            yield event
                    state.ended()
        except httpx.TransportError as exc:
            state.failed(error=exc)
        delay = state.next_delay(max_reconnects)
        if delay:
            await _async_sleep(delay)


# ---- I/O-free parts both share --------------------------------------------------------------


def _namespace(namespace: Namespace) -> Optional[str]:
    if namespace is None:
        return None
    if isinstance(namespace, str):
        return namespace
    segments = list(namespace)
    for segment in segments:
        if not isinstance(segment, str) or not segment or "/" in segment:
            raise ArgumentError(
                f"namespace segments must be non-empty strings without '/'; got {segment!r}"
            )
    return "/".join(segments)


def _filters(
    patterns: Optional[Sequence[str]], kinds: Optional[Sequence[str]], namespace: Namespace
) -> dict[str, Any]:
    if isinstance(patterns, str) or isinstance(kinds, str):
        raise ArgumentError("patterns and kinds are lists of strings (a bare string is not)")
    for kind in kinds or ():
        check.one_of("kinds", kind, EVENT_KINDS)
    for pattern in patterns or ():
        check.nonempty("patterns", pattern)
    return {
        "patterns": list(patterns) if patterns else None,
        "kinds": list(kinds) if kinds else None,
        "namespace": _namespace(namespace),
    }


def _list(
    after: int,
    patterns: Optional[Sequence[str]],
    kinds: Optional[Sequence[str]],
    namespace: Namespace,
    limit: int,
) -> APIRequest[EventPage]:
    check.int_between("after", after, 0)
    check.int_between("limit", limit, 1, 1000)
    params = {"after": after, "limit": limit, **_filters(patterns, kinds, namespace)}
    return APIRequest("GET", "/v1/events", EventPage, params=params)


@dataclass
class _Message:
    event: str = "message"
    data: list[str] = field(default_factory=list)
    id: Optional[str] = None


class _StreamState:
    """One `stream()` call: where it is in the log, the SSE message being read, reconnects."""

    def __init__(
        self,
        client: BaseClient,
        after: Optional[int],
        patterns: Optional[Sequence[str]],
        kinds: Optional[Sequence[str]],
        namespace: Namespace,
        timeout: Timeout,
    ) -> None:
        if after is not None:
            check.int_between("after", after, 0)
        check_timeout(timeout)
        self._client = client
        self._params = _filters(patterns, kinds, namespace)
        self.last: Optional[int] = after
        """The seq to resume after: the last event yielded, or where the server said the
        stream started (`ready`)."""
        self.timeout = (
            timeout if timeout is not None else httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        )
        self._message = _Message()
        self._failures = 0
        self._error: Optional[Exception] = None

    def build(self, http: Union[httpx.Client, httpx.AsyncClient]) -> httpx.Request:
        params = dict(self._params)
        headers = {}
        if self.last is not None:
            params["after"] = self.last
            headers["Last-Event-ID"] = str(self.last)
        request = self._client._build_request(
            http, APIRequest("GET", "/v1/events/stream", None, params=params), self.timeout
        )
        request.headers.update(headers)
        request.headers["Accept"] = "text/event-stream"
        self._message = _Message()
        return request

    def feed(self, line: str) -> Optional[MemoryEvent]:
        """One line of the stream; the event it completes, if any."""
        if line:
            if line.startswith(":"):
                return None  # a keepalive comment
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._message.data.append(value)
            elif name == "event":
                self._message.event = value
            elif name == "id":
                self._message.id = value
            return None
        message, self._message = self._message, _Message()
        if message.event == "ready":
            self._failures = 0  # connected and reading: a later drop starts a fresh count
            if self.last is None and message.id is not None:
                self.last = int(message.id)
            return None
        if message.event == "overflow":
            log.info("event stream fell behind; resuming after seq %s", self.last)
            return None
        if message.event != "message" or not message.data:
            return None
        event = MemoryEvent.model_validate_json("\n".join(message.data))
        if self.last is not None and event.seq <= self.last:
            return None  # already yielded before a reconnect
        self.last = event.seq
        return event

    def ended(self) -> None:
        """The server closed the stream (shutdown, overflow): reconnect at once."""
        self._error = None

    def failed(
        self, *, response: Optional[httpx.Response] = None, error: Optional[Exception] = None
    ) -> None:
        if response is not None:
            status_error = self._client._status_error(response)
            if response.status_code not in RETRYABLE_STATUS_CODES:
                raise status_error
            self._error = status_error
        else:
            self._error = error
        self._failures += 1

    def next_delay(self, max_reconnects: Optional[int]) -> float:
        if self._error is None:
            return 0.0
        if max_reconnects is not None and self._failures > max_reconnects:
            if isinstance(self._error, APIStatusError):
                raise self._error
            raise AgentMemError(
                f"event stream: gave up after {self._failures} failed connections: "
                f"{self._client._redact(repr(self._error))}"
            ) from None
        delay = min(backoff_delay(self._failures - 1), MAX_RECONNECT_DELAY)
        log.info("event stream disconnected (%s); reconnecting in %.2fs", self._error, delay)
        self._error = None
        return delay
