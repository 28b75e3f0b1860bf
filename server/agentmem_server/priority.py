"""Bulk work runs at a lower OS priority than the threads that answer requests.

A big append keeps every core embedding for minutes. The event loop and the query lane must still
get a core at once when a small request arrives, and the OS scheduler decides that, not Python:
Linux schedules each thread on its own, and any thread may lower its own priority (raise its
nice value) without privileges. `lower_this_thread` does so, as a `ThreadPoolExecutor`
initializer for the embedding lanes that run bulk batches.

Only threads that spend their time outside the GIL should be lowered (a model's forward pass): a
lowered thread that held the GIL while the box is busy would make every other thread wait for it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("agentmem")

BULK_NICE = 10
"""How much lower bulk threads run (nice +10: about a tenth of a normal thread's share of a
contended core, and they still use every idle cycle)."""


def lower_this_thread(by: int = BULK_NICE) -> None:
    """Raise the calling thread's nice value by `by` (capped at 19). Linux only; elsewhere, or
    where the OS refuses, the thread keeps its priority."""
    if sys.platform != "linux" or by <= 0:
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + by))
    except OSError as exc:  # a sandbox that forbids it: run at the same priority
        log.debug("could not lower the priority of thread %s: %s", tid, exc)


def thread_nice() -> int:
    """The calling thread's nice value (0 where threads have none of their own)."""
    if sys.platform != "linux":
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
