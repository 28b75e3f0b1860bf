"""One module per resource; each holds the sync class and its async twin side by side."""

from .admin import Admin, AsyncAdmin
from .agents import Agents, AsyncAgents
from .memory import AsyncMemory, Memory
from .runs import AsyncRuns, Runs
from .threads import AsyncThreads, Threads

__all__ = [
    "Admin",
    "Agents",
    "AsyncAdmin",
    "AsyncAgents",
    "AsyncMemory",
    "AsyncRuns",
    "AsyncThreads",
    "Memory",
    "Runs",
    "Threads",
]
