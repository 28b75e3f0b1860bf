"""One module per resource; each holds the sync class and its async twin side by side."""

from .admin import Admin, AsyncAdmin
from .agents import Agents, AsyncAgents
from .events import AsyncEvents, Events
from .memory import AsyncMemory, Memory
from .runs import AsyncRuns, Runs
from .state import AsyncState, AsyncStateContext, AsyncStateView, State, StateContext, StateView
from .threads import AsyncThreads, Threads

__all__ = [
    "Admin",
    "Agents",
    "AsyncAdmin",
    "AsyncAgents",
    "AsyncEvents",
    "AsyncMemory",
    "AsyncRuns",
    "AsyncState",
    "AsyncStateContext",
    "AsyncStateView",
    "AsyncThreads",
    "Events",
    "Memory",
    "Runs",
    "State",
    "StateContext",
    "StateView",
    "Threads",
]
