"""Sync and async twins expose the same methods with the same signatures."""

from __future__ import annotations

import inspect
from functools import cached_property

import pytest

from agentmem import AsyncClient, Client
from agentmem.resources import (
    Admin,
    Agents,
    AsyncAdmin,
    AsyncAgents,
    AsyncEvents,
    AsyncMemory,
    AsyncRuns,
    AsyncState,
    AsyncStateContext,
    AsyncStateView,
    AsyncThreads,
    Events,
    Memory,
    Runs,
    State,
    StateContext,
    StateView,
    Threads,
)

TWINS = [
    (Memory, AsyncMemory),
    (Agents, AsyncAgents),
    (Runs, AsyncRuns),
    (Threads, AsyncThreads),
    (Admin, AsyncAdmin),
    (State, AsyncState),
    (StateView, AsyncStateView),
    (StateContext, AsyncStateContext),
    (Events, AsyncEvents),
]

# `client.state`'s views are made without I/O: plain methods on both twins, no `timeout=`.
VIEW_FACTORIES = {"agent", "session", "workflow", "namespace", "context"}
# `on_change` is a decorator: it starts a listener (a thread, or a task) and returns it.
PLAIN_METHODS = VIEW_FACTORIES | {"on_change"}

# The async `modify` also accepts a coroutine function; that is the one intended difference.
WIDER_IN_ASYNC = {("modify", "fn")}


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(("sync_cls", "async_cls"), TWINS, ids=lambda c: c.__name__)
def test_async_twin_has_the_same_signatures(sync_cls: type, async_cls: type) -> None:
    sync_methods, async_methods = public_methods(sync_cls), public_methods(async_cls)
    assert sync_methods.keys() == async_methods.keys()
    for name, sync_method in sync_methods.items():
        async_method = async_methods[name]
        sync_sig, async_sig = inspect.signature(sync_method), inspect.signature(async_method)
        if inspect.isasyncgenfunction(async_method):  # streams: a generator and its async twin
            assert inspect.isgeneratorfunction(sync_method), name
            assert async_sig.return_annotation == f"Async{sync_sig.return_annotation}", name
        elif name not in PLAIN_METHODS:  # StateView vs AsyncStateView
            assert inspect.iscoroutinefunction(async_method), name
            assert sync_sig.return_annotation == async_sig.return_annotation, name
        else:
            assert not inspect.iscoroutinefunction(async_method), name
        assert list(sync_sig.parameters) == list(async_sig.parameters), name
        for param in sync_sig.parameters.values():
            twin = async_sig.parameters[param.name]
            assert (param.kind, param.default) == (twin.kind, twin.default), (name, param.name)
            if (name, param.name) not in WIDER_IN_ASYNC and name not in PLAIN_METHODS:
                assert param.annotation == twin.annotation, (name, param.name)


@pytest.mark.parametrize("cls", [cls for pair in TWINS for cls in pair], ids=lambda c: c.__name__)
def test_every_method_takes_keyword_only_options_and_timeout(cls: type) -> None:
    for name, method in public_methods(cls).items():
        if name in PLAIN_METHODS:
            continue
        params = list(inspect.signature(method).parameters.values())[1:]  # drop self
        timeout = inspect.signature(method).parameters.get("timeout")
        assert timeout is not None and timeout.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert timeout.default is None, name
        positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        assert all(p.default is inspect.Parameter.empty for p in positional), (
            f"{cls.__name__}.{name}: optional arguments must be keyword-only"
        )


def test_clients_have_the_same_constructor_and_resources() -> None:
    sync_sig, async_sig = inspect.signature(Client), inspect.signature(AsyncClient)
    assert [(p.name, p.kind, p.default) for p in sync_sig.parameters.values()] == [
        (p.name, p.kind, p.default) for p in async_sig.parameters.values()
    ]

    def resources(cls: type) -> set[str]:
        return {name for name, attr in vars(cls).items() if isinstance(attr, cached_property)}

    assert (
        resources(Client)
        == resources(AsyncClient)
        == {
            "memory",
            "agents",
            "runs",
            "threads",
            "admin",
            "state",
            "events",
        }
    )
