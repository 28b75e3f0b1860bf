"""Keyed state: exact JSON values under `(namespace, key)`, with views for the usual scopes.

Usage:
    client.state.set("last_rebalance", 1735689600)                 # the tenant's root ()
    client.state.session("u1").set("cart", {"items": 2}, ttl=3600)  # ("session", "u1")
    client.state.lookup("tier", session_id="u1", agent_id="bot")    # session -> agent -> tenant
    ctx = client.state.context(workflow_id="wf-1", agent_id="bot")  # writes go to the workflow
    ctx.get_value("tier", default="standard")                       # reads look up the chain
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional, Union

from .._base_client import APIRequest, Timeout, conflict_delay, path_segment
from .._exceptions import ArgumentError, ArgumentTypeError, ConflictError, NotFoundError
from ..types import MemoryEvent, StateVersion
from ..types.state import (
    STATE_LIST_MAX,
    StateClearResult,
    StateDeleteResult,
    StateEntry,
    StateList,
    StateSetRequest,
    encode_namespace,
    key_problem,
    namespace_problem,
)
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource, request_body
from .events import StopSignal, follow, follow_async

if TYPE_CHECKING:
    from .._client import AsyncClient, Client

__all__ = [
    "UNSET",
    "AsyncChangeListener",
    "AsyncState",
    "AsyncStateContext",
    "AsyncStateView",
    "ChangeListener",
    "State",
    "StateContext",
    "StateView",
]

log = logging.getLogger("agentmem")


class _Unset:
    """The default of `expected_updated_at`: no guard, the last write wins."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""`expected_updated_at=UNSET` (the default): an unguarded, last-write-wins `set`."""

Namespace = Sequence[str]
Ttl = Union[float, timedelta, None]
Expected = Union[datetime, str, None]
MODIFY_MAX_ATTEMPTS = 16
"""`modify` tries this often by default: 16 writers racing on one key all finish within it."""


class State(SyncAPIResource):
    """Keyed state of the tenant. Every method takes `namespace=` (a tuple of segments, `()`
    by default); the views (`tenant`, `agent(id)`, `session(id)`, `workflow(id)`,
    `namespace(*segments)`, `context(...)`) fix it once.

    Usage: `client.state.session("u1").set("cart", {"items": 2})`
    """

    @property
    def tenant(self) -> StateView:
        """The tenant's root namespace `()`: global within the tenant."""
        return StateView(self, ())

    def agent(self, agent_id: str) -> StateView:
        """`("agent", agent_id)`: an agent's state, shared across its sessions."""
        return StateView(self, _scope("agent", agent_id))

    def session(self, session_id: str) -> StateView:
        """`("session", session_id)`: a session's (or user's) state; `clear()` ends it."""
        return StateView(self, _scope("session", session_id))

    def workflow(self, workflow_id: str) -> StateView:
        """`("workflow", workflow_id)`: one workflow run's state; `clear()` ends it."""
        return StateView(self, _scope("workflow", workflow_id))

    def namespace(self, *segments: str) -> StateView:
        """Any namespace: `state.namespace("team", "blue")` is `("team", "blue")`."""
        return StateView(self, _namespace(segments))

    def context(
        self,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
    ) -> StateContext:
        """A view that writes to the most specific scope given (workflow, else session, else
        agent, else the tenant) and whose `get`/`get_value`/`exists` look up the whole chain."""
        return StateContext(self, workflow_id=workflow_id, session_id=session_id, agent_id=agent_id)

    def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: Namespace = (),
        ttl: Ttl = None,
        expected_updated_at: Expected = UNSET,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Store a JSON value; the last write wins. `ttl` (seconds or timedelta) makes it expire.

        `expected_updated_at=None` creates only; `=entry.updated_at` replaces only that version.
        A lost guard raises `ConflictError` carrying `current_entry`.
        """
        request = _set(namespace, key, value, ttl, expected_updated_at, idempotency_key)
        return self._client._request(request, timeout=timeout)

    def get(self, key: str, *, namespace: Namespace = (), timeout: Timeout = None) -> StateEntry:
        """The entry; `NotFoundError` when it is absent or expired."""
        return self._client._request(_get(namespace, key), timeout=timeout)

    def get_value(
        self, key: str, *, namespace: Namespace = (), default: Any = None, timeout: Timeout = None
    ) -> Any:
        """The value, or `default` when the entry is absent or expired."""
        try:
            return self.get(key, namespace=namespace, timeout=timeout).value
        except NotFoundError:
            return default

    def exists(self, key: str, *, namespace: Namespace = (), timeout: Timeout = None) -> bool:
        try:
            self.get(key, namespace=namespace, timeout=timeout)
        except NotFoundError:
            return False
        return True

    def delete(
        self,
        key: str,
        *,
        namespace: Namespace = (),
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> bool:
        """Delete the entry; idempotent. Whether there was one to delete."""
        result = self._client._request(_delete(namespace, key, idempotency_key), timeout=timeout)
        return result.deleted

    def list(
        self,
        *,
        namespace: Namespace = (),
        prefix: str = "",
        limit: int = 100,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateList:
        """A page of keys (with `updated_at`) in lexicographic order; `next_cursor` pages on."""
        return self._client._request(_list(namespace, prefix, limit, cursor), timeout=timeout)

    def clear(
        self,
        *,
        namespace: Namespace = (),
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> int:
        """Delete every entry of the namespace (not of namespaces below it); how many."""
        result = self._client._request(_clear(namespace, idempotency_key), timeout=timeout)
        return result.deleted

    def history(
        self, key: str, *, namespace: Namespace = (), limit: int = 20, timeout: Timeout = None
    ) -> builtins.list[StateVersion]:
        """Earlier versions of the entry from the change feed, newest first. Revert the last
        write, guarded: `v = state.history(k); state.set(k, v[1].value,
        expected_updated_at=v[0].updated_at)`."""
        return self._client._request(_history(namespace, key, limit), timeout=timeout)

    def on_change(
        self,
        patterns: Union[str, Sequence[str]] = "*",
        *,
        namespace: Optional[Namespace] = None,
        after: Optional[int] = None,
    ) -> Callable[[Callable[[MemoryEvent], Any]], ChangeListener]:
        """Decorator: call the function with each state change whose key matches a pattern
        (shell globs), in every namespace or below `namespace`, on a background thread.

        Usage: `@client.state.on_change("customer_*")` above `def handle(event): ...`;
        `handle.stop()` ends it (closing the client ends them all). At least once, in order:
        after a reconnect the stream resumes after the last event handled. A handler that
        raises is logged and the next event comes.
        """
        return _listener_decorator(self._client, patterns, namespace, after)

    def lookup(
        self,
        key: str,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """The first entry for `key` along workflow -> session -> agent -> tenant (the levels
        whose id is given); `entry.namespace` says where. `NotFoundError` if none holds it."""
        request = _lookup(key, workflow_id, session_id, agent_id)
        return self._client._request(request, timeout=timeout)

    def modify(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        namespace: Namespace = (),
        default: Any = None,
        ttl: Ttl = None,
        max_attempts: int = MODIFY_MAX_ATTEMPTS,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Read, apply `fn` to the value (`default` when absent), write back guarded; after a
        lost race, apply `fn` to the winner's value and try again.

        Usage: `state.modify("runs", lambda n: n + 1, default=0)`. After `max_attempts` lost
        races the last `ConflictError` is raised.
        """
        check.int_between("max_attempts", max_attempts, 1)
        try:
            entry: Optional[StateEntry] = self.get(key, namespace=namespace, timeout=timeout)
        except NotFoundError:
            entry = None
        for attempt in range(max_attempts):
            new_value = fn(entry.value if entry is not None else default)
            try:
                return self.set(
                    key,
                    new_value,
                    namespace=namespace,
                    ttl=ttl,
                    expected_updated_at=entry.updated_at if entry is not None else None,
                    timeout=timeout,
                )
            except ConflictError as exc:
                if attempt + 1 == max_attempts:
                    raise
                _log_conflict(key, attempt, max_attempts)
                # The conflict carries the winner's entry: no re-read needed.
                entry = exc.current_entry
                self._client._wait(conflict_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover


class StateView:
    """One namespace of keyed state: `State`'s methods without the `namespace=` argument."""

    def __init__(self, state: State, namespace: tuple[str, ...]) -> None:
        self._state = state
        self.namespace = namespace
        """The namespace this view reads and writes."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"

    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: Ttl = None,
        expected_updated_at: Expected = UNSET,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Store a JSON value (see `State.set`)."""
        return self._state.set(
            key,
            value,
            namespace=self.namespace,
            ttl=ttl,
            expected_updated_at=expected_updated_at,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def get(self, key: str, *, timeout: Timeout = None) -> StateEntry:
        """The entry; `NotFoundError` when it is absent or expired."""
        return self._state.get(key, namespace=self.namespace, timeout=timeout)

    def get_value(self, key: str, *, default: Any = None, timeout: Timeout = None) -> Any:
        """The value, or `default` when the entry is absent or expired."""
        return self._state.get_value(
            key, namespace=self.namespace, default=default, timeout=timeout
        )

    def exists(self, key: str, *, timeout: Timeout = None) -> bool:
        return self._state.exists(key, namespace=self.namespace, timeout=timeout)

    def delete(
        self, key: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> bool:
        """Delete the entry; idempotent. Whether there was one to delete."""
        return self._state.delete(
            key, namespace=self.namespace, idempotency_key=idempotency_key, timeout=timeout
        )

    def list(
        self,
        *,
        prefix: str = "",
        limit: int = 100,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateList:
        """A page of keys in lexicographic order (see `State.list`)."""
        return self._state.list(
            namespace=self.namespace, prefix=prefix, limit=limit, cursor=cursor, timeout=timeout
        )

    def clear(self, *, idempotency_key: Optional[str] = None, timeout: Timeout = None) -> int:
        """Delete every entry of this namespace; how many."""
        return self._state.clear(
            namespace=self.namespace, idempotency_key=idempotency_key, timeout=timeout
        )

    def history(
        self, key: str, *, limit: int = 20, timeout: Timeout = None
    ) -> builtins.list[StateVersion]:
        """Earlier versions of the entry, newest first (see `State.history`)."""
        return self._state.history(key, namespace=self.namespace, limit=limit, timeout=timeout)

    def on_change(
        self, patterns: Union[str, Sequence[str]] = "*", *, after: Optional[int] = None
    ) -> Callable[[Callable[[MemoryEvent], Any]], ChangeListener]:
        """Decorator: changes in this namespace (and below) only (see `State.on_change`)."""
        return self._state.on_change(patterns, namespace=self.namespace, after=after)

    def modify(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        default: Any = None,
        ttl: Ttl = None,
        max_attempts: int = MODIFY_MAX_ATTEMPTS,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Read-modify-write that loses no update (see `State.modify`)."""
        return self._state.modify(
            key,
            fn,
            namespace=self.namespace,
            default=default,
            ttl=ttl,
            max_attempts=max_attempts,
            timeout=timeout,
        )


class StateContext(StateView):
    """Execution-context state: writes go to the most specific scope given; `get`,
    `get_value` and `exists` look up workflow -> session -> agent -> tenant."""

    def __init__(
        self,
        state: State,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
    ) -> None:
        super().__init__(state, _most_specific(workflow_id, session_id, agent_id))
        self.workflow_id = workflow_id
        self.session_id = session_id
        self.agent_id = agent_id

    def get(self, key: str, *, timeout: Timeout = None) -> StateEntry:
        """The first entry along the chain; `NotFoundError` when no level holds it."""
        return self._state.lookup(
            key,
            workflow_id=self.workflow_id,
            session_id=self.session_id,
            agent_id=self.agent_id,
            timeout=timeout,
        )

    def get_value(self, key: str, *, default: Any = None, timeout: Timeout = None) -> Any:
        try:
            return self.get(key, timeout=timeout).value
        except NotFoundError:
            return default

    def exists(self, key: str, *, timeout: Timeout = None) -> bool:
        try:
            self.get(key, timeout=timeout)
        except NotFoundError:
            return False
        return True


class AsyncState(AsyncAPIResource):
    """Keyed state of the tenant (see `State`); every method awaited.

    Usage: `await client.state.session("u1").set("cart", {"items": 2})`
    """

    @property
    def tenant(self) -> AsyncStateView:
        """The tenant's root namespace `()`: global within the tenant."""
        return AsyncStateView(self, ())

    def agent(self, agent_id: str) -> AsyncStateView:
        """`("agent", agent_id)`: an agent's state, shared across its sessions."""
        return AsyncStateView(self, _scope("agent", agent_id))

    def session(self, session_id: str) -> AsyncStateView:
        """`("session", session_id)`: a session's (or user's) state; `clear()` ends it."""
        return AsyncStateView(self, _scope("session", session_id))

    def workflow(self, workflow_id: str) -> AsyncStateView:
        """`("workflow", workflow_id)`: one workflow run's state; `clear()` ends it."""
        return AsyncStateView(self, _scope("workflow", workflow_id))

    def namespace(self, *segments: str) -> AsyncStateView:
        """Any namespace: `state.namespace("team", "blue")` is `("team", "blue")`."""
        return AsyncStateView(self, _namespace(segments))

    def context(
        self,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
    ) -> AsyncStateContext:
        """A view that writes to the most specific scope given and looks reads up the chain."""
        return AsyncStateContext(
            self, workflow_id=workflow_id, session_id=session_id, agent_id=agent_id
        )

    async def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: Namespace = (),
        ttl: Ttl = None,
        expected_updated_at: Expected = UNSET,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Store a JSON value; the last write wins unless `expected_updated_at` is given."""
        request = _set(namespace, key, value, ttl, expected_updated_at, idempotency_key)
        return await self._client._request(request, timeout=timeout)

    async def get(
        self, key: str, *, namespace: Namespace = (), timeout: Timeout = None
    ) -> StateEntry:
        """The entry; `NotFoundError` when it is absent or expired."""
        return await self._client._request(_get(namespace, key), timeout=timeout)

    async def get_value(
        self, key: str, *, namespace: Namespace = (), default: Any = None, timeout: Timeout = None
    ) -> Any:
        """The value, or `default` when the entry is absent or expired."""
        try:
            return (await self.get(key, namespace=namespace, timeout=timeout)).value
        except NotFoundError:
            return default

    async def exists(self, key: str, *, namespace: Namespace = (), timeout: Timeout = None) -> bool:
        try:
            await self.get(key, namespace=namespace, timeout=timeout)
        except NotFoundError:
            return False
        return True

    async def delete(
        self,
        key: str,
        *,
        namespace: Namespace = (),
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> bool:
        """Delete the entry; idempotent. Whether there was one to delete."""
        request = _delete(namespace, key, idempotency_key)
        return (await self._client._request(request, timeout=timeout)).deleted

    async def list(
        self,
        *,
        namespace: Namespace = (),
        prefix: str = "",
        limit: int = 100,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateList:
        """A page of keys (with `updated_at`) in lexicographic order; `next_cursor` pages on."""
        return await self._client._request(_list(namespace, prefix, limit, cursor), timeout=timeout)

    async def clear(
        self,
        *,
        namespace: Namespace = (),
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> int:
        """Delete every entry of the namespace (not of namespaces below it); how many."""
        request = _clear(namespace, idempotency_key)
        return (await self._client._request(request, timeout=timeout)).deleted

    async def history(
        self, key: str, *, namespace: Namespace = (), limit: int = 20, timeout: Timeout = None
    ) -> builtins.list[StateVersion]:
        """Earlier versions of the entry from the change feed, newest first (see
        `State.history`)."""
        return await self._client._request(_history(namespace, key, limit), timeout=timeout)

    def on_change(
        self,
        patterns: Union[str, Sequence[str]] = "*",
        *,
        namespace: Optional[Namespace] = None,
        after: Optional[int] = None,
    ) -> Callable[[Callable[[MemoryEvent], Any]], AsyncChangeListener]:
        """Decorator: call the function (a coroutine function or a plain one) with each
        matching state change, on a background task of the running loop (see
        `State.on_change`). `handle.stop()` ends it; `aclose()` of the client ends them all."""
        return _async_listener_decorator(self._client, patterns, namespace, after)

    async def lookup(
        self,
        key: str,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """The first entry for `key` along workflow -> session -> agent -> tenant."""
        request = _lookup(key, workflow_id, session_id, agent_id)
        return await self._client._request(request, timeout=timeout)

    async def modify(
        self,
        key: str,
        fn: Callable[[Any], Union[Any, Awaitable[Any]]],
        *,
        namespace: Namespace = (),
        default: Any = None,
        ttl: Ttl = None,
        max_attempts: int = MODIFY_MAX_ATTEMPTS,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Read, apply `fn` (sync or async) to the value, write back guarded; retry lost races.

        Usage: `await state.modify("runs", lambda n: n + 1, default=0)`.
        """
        check.int_between("max_attempts", max_attempts, 1)
        try:
            entry: Optional[StateEntry] = await self.get(key, namespace=namespace, timeout=timeout)
        except NotFoundError:
            entry = None
        for attempt in range(max_attempts):
            new_value = fn(entry.value if entry is not None else default)
            if inspect.isawaitable(new_value):
                new_value = await new_value
            try:
                return await self.set(
                    key,
                    new_value,
                    namespace=namespace,
                    ttl=ttl,
                    expected_updated_at=entry.updated_at if entry is not None else None,
                    timeout=timeout,
                )
            except ConflictError as exc:
                if attempt + 1 == max_attempts:
                    raise
                _log_conflict(key, attempt, max_attempts)
                entry = exc.current_entry
                await self._client._wait(conflict_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncStateView:
    """One namespace of keyed state (see `StateView`); every method awaited."""

    def __init__(self, state: AsyncState, namespace: tuple[str, ...]) -> None:
        self._state = state
        self.namespace = namespace
        """The namespace this view reads and writes."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: Ttl = None,
        expected_updated_at: Expected = UNSET,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Store a JSON value (see `State.set`)."""
        return await self._state.set(
            key,
            value,
            namespace=self.namespace,
            ttl=ttl,
            expected_updated_at=expected_updated_at,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    async def get(self, key: str, *, timeout: Timeout = None) -> StateEntry:
        """The entry; `NotFoundError` when it is absent or expired."""
        return await self._state.get(key, namespace=self.namespace, timeout=timeout)

    async def get_value(self, key: str, *, default: Any = None, timeout: Timeout = None) -> Any:
        """The value, or `default` when the entry is absent or expired."""
        return await self._state.get_value(
            key, namespace=self.namespace, default=default, timeout=timeout
        )

    async def exists(self, key: str, *, timeout: Timeout = None) -> bool:
        return await self._state.exists(key, namespace=self.namespace, timeout=timeout)

    async def delete(
        self, key: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> bool:
        """Delete the entry; idempotent. Whether there was one to delete."""
        return await self._state.delete(
            key, namespace=self.namespace, idempotency_key=idempotency_key, timeout=timeout
        )

    async def list(
        self,
        *,
        prefix: str = "",
        limit: int = 100,
        cursor: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateList:
        """A page of keys in lexicographic order (see `State.list`)."""
        return await self._state.list(
            namespace=self.namespace, prefix=prefix, limit=limit, cursor=cursor, timeout=timeout
        )

    async def clear(self, *, idempotency_key: Optional[str] = None, timeout: Timeout = None) -> int:
        """Delete every entry of this namespace; how many."""
        return await self._state.clear(
            namespace=self.namespace, idempotency_key=idempotency_key, timeout=timeout
        )

    async def history(
        self, key: str, *, limit: int = 20, timeout: Timeout = None
    ) -> builtins.list[StateVersion]:
        """Earlier versions of the entry, newest first (see `State.history`)."""
        return await self._state.history(
            key, namespace=self.namespace, limit=limit, timeout=timeout
        )

    def on_change(
        self, patterns: Union[str, Sequence[str]] = "*", *, after: Optional[int] = None
    ) -> Callable[[Callable[[MemoryEvent], Any]], AsyncChangeListener]:
        """Decorator: changes in this namespace (and below) only (see `State.on_change`)."""
        return self._state.on_change(patterns, namespace=self.namespace, after=after)

    async def modify(
        self,
        key: str,
        fn: Callable[[Any], Union[Any, Awaitable[Any]]],
        *,
        default: Any = None,
        ttl: Ttl = None,
        max_attempts: int = MODIFY_MAX_ATTEMPTS,
        timeout: Timeout = None,
    ) -> StateEntry:
        """Read-modify-write that loses no update (see `State.modify`)."""
        return await self._state.modify(
            key,
            fn,
            namespace=self.namespace,
            default=default,
            ttl=ttl,
            max_attempts=max_attempts,
            timeout=timeout,
        )


class AsyncStateContext(AsyncStateView):
    """Execution-context state (see `StateContext`); every method awaited."""

    def __init__(
        self,
        state: AsyncState,
        *,
        workflow_id: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
    ) -> None:
        super().__init__(state, _most_specific(workflow_id, session_id, agent_id))
        self.workflow_id = workflow_id
        self.session_id = session_id
        self.agent_id = agent_id

    async def get(self, key: str, *, timeout: Timeout = None) -> StateEntry:
        """The first entry along the chain; `NotFoundError` when no level holds it."""
        return await self._state.lookup(
            key,
            workflow_id=self.workflow_id,
            session_id=self.session_id,
            agent_id=self.agent_id,
            timeout=timeout,
        )

    async def get_value(self, key: str, *, default: Any = None, timeout: Timeout = None) -> Any:
        try:
            return (await self.get(key, timeout=timeout)).value
        except NotFoundError:
            return default

    async def exists(self, key: str, *, timeout: Timeout = None) -> bool:
        try:
            await self.get(key, timeout=timeout)
        except NotFoundError:
            return False
        return True


# ---- requests, built and checked without I/O --------------------------------------------------


def _namespace(segments: object) -> tuple[str, ...]:
    if isinstance(segments, str):
        raise ArgumentTypeError(
            f"namespace must be a tuple of segments such as ('session', 'u1'), not the str "
            f"{segments!r}"
        )
    problem = namespace_problem(segments)
    if problem is not None:
        raise ArgumentError(f"namespace {problem}")
    return tuple(segments)  # type: ignore[arg-type]


def _scope(level: str, ident: object) -> tuple[str, ...]:
    if not isinstance(ident, str):
        raise ArgumentTypeError(f"{level}_id must be a str; got {type(ident).__name__}")
    problem = namespace_problem((level, ident))
    if problem is not None:
        raise ArgumentError(
            f"{level}_id must be 1-128 letters, digits, '_', '.', ':', '@' or '-'; got {ident!r}"
        )
    return (level, ident)


def _most_specific(
    workflow_id: Optional[str], session_id: Optional[str], agent_id: Optional[str]
) -> tuple[str, ...]:
    levels = (("workflow", workflow_id), ("session", session_id), ("agent", agent_id))
    scopes = [_scope(level, ident) for level, ident in levels if ident is not None]
    return scopes[0] if scopes else ()


def _key(key: object) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise ArgumentError(f"key {problem}")
    return key  # type: ignore[return-value]


def _params(namespace: Namespace) -> dict[str, Any]:
    ns = _namespace(namespace)
    return {"namespace": encode_namespace(ns)} if ns else {}


def _entry_path(kind: str, key: str) -> str:
    return f"/v1/state/{kind}/{path_segment(_key(key))}"


def _set(
    namespace: Namespace,
    key: str,
    value: Any,
    ttl: Ttl,
    expected_updated_at: Expected,
    idempotency_key: Optional[str],
) -> APIRequest[StateEntry]:
    path = _entry_path("entries", key)
    params = _params(namespace)
    check.idempotency_key(idempotency_key)
    fields: dict[str, Any] = {"value": value}
    seconds = check.ttl("ttl", ttl)
    if seconds is not None:
        fields["ttl"] = seconds
    if expected_updated_at is not UNSET:
        fields["expected_updated_at"] = check.timestamp("expected_updated_at", expected_updated_at)
    body = check.model(StateSetRequest, **fields)
    return APIRequest(
        "PUT",
        path,
        StateEntry,
        params=params,
        json=request_body(body),
        idempotency_key=idempotency_key,
    )


def _history(namespace: Namespace, key: str, limit: int) -> APIRequest[list[StateVersion]]:
    check.int_between("limit", limit, 1, 1000)
    params = {**_params(namespace), "limit": limit}
    return APIRequest("GET", _entry_path("history", key), list[StateVersion], params=params)


def _get(namespace: Namespace, key: str) -> APIRequest[StateEntry]:
    return APIRequest("GET", _entry_path("entries", key), StateEntry, params=_params(namespace))


def _delete(
    namespace: Namespace, key: str, idempotency_key: Optional[str]
) -> APIRequest[StateDeleteResult]:
    path = _entry_path("entries", key)
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "DELETE",
        path,
        StateDeleteResult,
        params=_params(namespace),
        idempotency_key=idempotency_key,
    )


def _list(
    namespace: Namespace, prefix: str, limit: int, cursor: Optional[str]
) -> APIRequest[StateList]:
    params = _params(namespace)
    if not isinstance(prefix, str):
        raise ArgumentTypeError(f"prefix must be a str; got {type(prefix).__name__}")
    check.int_between("limit", limit, 1, STATE_LIST_MAX)
    if cursor is not None and not isinstance(cursor, str):
        raise ArgumentTypeError(f"cursor must be a str or None; got {type(cursor).__name__}")
    params.update({"prefix": prefix or None, "limit": limit, "cursor": cursor})
    return APIRequest("GET", "/v1/state/entries", StateList, params=params)


def _clear(namespace: Namespace, idempotency_key: Optional[str]) -> APIRequest[StateClearResult]:
    params = _params(namespace)
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "DELETE",
        "/v1/state/entries",
        StateClearResult,
        params=params,
        idempotency_key=idempotency_key,
    )


def _lookup(
    key: str, workflow_id: Optional[str], session_id: Optional[str], agent_id: Optional[str]
) -> APIRequest[StateEntry]:
    path = _entry_path("lookup", key)
    params: dict[str, Any] = {}
    for level, ident in (("workflow", workflow_id), ("session", session_id), ("agent", agent_id)):
        if ident is not None:
            params[f"{level}_id"] = _scope(level, ident)[1]
    return APIRequest("GET", path, StateEntry, params=params)


def _log_conflict(key: str, attempt: int, max_attempts: int) -> None:
    log.info(
        "state.modify(%r) lost a race; applying fn to the winner's value, attempt %d of %d",
        key,
        attempt + 2,
        max_attempts,
    )


# ---- on_change: listeners ---------------------------------------------------------------------


def _patterns(patterns: Union[str, Sequence[str]]) -> list[str]:
    listed = [patterns] if isinstance(patterns, str) else list(patterns)
    if not listed:
        raise ArgumentError("on_change needs at least one pattern ('*' for every key)")
    for pattern in listed:
        check.nonempty("patterns", pattern)
    return listed


def _filters(patterns: Union[str, Sequence[str]], namespace: Optional[Namespace]) -> dict[str, Any]:
    listed = _patterns(patterns)
    return {
        "kinds": ["state"],
        "patterns": None if listed == ["*"] else listed,
        "namespace": None if namespace is None else list(_namespace(namespace)) or None,
    }


class ChangeListener:
    """A handler called with each matching state change, on its own thread (`on_change`)."""

    def __init__(
        self,
        client: Client,
        fn: Callable[[MemoryEvent], Any],
        filters: dict[str, Any],
        after: Optional[int],
    ) -> None:
        self.fn = fn
        self.last_seq: Optional[int] = after
        """The seq of the last event handled (the stream resumes after it)."""
        self._client = client
        self._filters = filters
        self._stop = StopSignal()
        self._thread = threading.Thread(
            target=self._run,
            name=f"agentmem-on-change-{getattr(fn, '__name__', 'handler')}",
            daemon=True,
        )
        client._listeners.append(self)
        self._thread.start()

    def __call__(self, event: MemoryEvent) -> Any:
        return self.fn(event)

    def _run(self) -> None:
        try:
            for event in follow(
                self._client, after=self.last_seq, stop=self._stop, **self._filters
            ):
                try:
                    self.fn(event)
                except Exception:  # noqa: BLE001 - one bad event must not end the listener
                    log.exception("on_change handler %r failed on event %s", self.fn, event.seq)
                self.last_seq = event.seq
        except Exception:  # noqa: BLE001 - e.g. 401: nothing a retry fixes
            if not self._stop.is_set():
                log.exception("on_change listener %r stopped", self.fn)

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        """End the listener (the handler may be running; it finishes first)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:  # a handler may stop its listener
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class AsyncChangeListener:
    """A handler called with each matching state change, on a task (`on_change`)."""

    def __init__(
        self,
        client: AsyncClient,
        fn: Callable[[MemoryEvent], Any],
        filters: dict[str, Any],
        after: Optional[int],
    ) -> None:
        self.fn = fn
        self.last_seq: Optional[int] = after
        self._client = client
        self._filters = filters
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"agentmem-on-change-{getattr(fn, '__name__', 'handler')}"
        )
        client._listeners.append(self)

    def __call__(self, event: MemoryEvent) -> Any:
        return self.fn(event)

    async def _run(self) -> None:
        try:
            async for event in follow_async(self._client, after=self.last_seq, **self._filters):
                try:
                    result = self.fn(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # noqa: BLE001 - one bad event must not end the listener
                    log.exception("on_change handler %r failed on event %s", self.fn, event.seq)
                self.last_seq = event.seq
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - e.g. 401: nothing a retry fixes
            log.exception("on_change listener %r stopped", self.fn)

    async def stop(self) -> None:
        """End the listener (cancels its task, waiting for it)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return not self._task.done()


def _listener_decorator(
    client: Client,
    patterns: Union[str, Sequence[str]],
    namespace: Optional[Namespace],
    after: Optional[int],
) -> Callable[[Callable[[MemoryEvent], Any]], ChangeListener]:
    filters = _filters(patterns, namespace)

    def register(fn: Callable[[MemoryEvent], Any]) -> ChangeListener:
        return ChangeListener(client, fn, filters, after)

    return register


def _async_listener_decorator(
    client: AsyncClient,
    patterns: Union[str, Sequence[str]],
    namespace: Optional[Namespace],
    after: Optional[int],
) -> Callable[[Callable[[MemoryEvent], Any]], AsyncChangeListener]:
    filters = _filters(patterns, namespace)

    def register(fn: Callable[[MemoryEvent], Any]) -> AsyncChangeListener:
        return AsyncChangeListener(client, fn, filters, after)

    return register
