"""Give freed heap back to the OS after a big request (glibc keeps it otherwise), and keep the
garbage collector's full passes short.

A large append or import allocates its text, chunks and vectors many times over; Python frees
them when the request ends, but glibc's allocator keeps the pages, so the server's RSS stays at
its peak. `schedule_trim()` asks glibc to return them (`malloc_trim(0)`), once, a moment after the
request (its response must be gone first), off the event loop. No-op where there is no glibc.

`freeze_heap()`, once a server has started: Python's full collection walks every object the
process holds, and while it runs no thread runs Python. A started server holds ~300k such objects
(models, schemas, routes), which made each full pass take 0.1-1 s on a busy 2-core box, an
event-loop stall at random; frozen, they are no longer walked (they live as long as the process).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
from collections.abc import Callable
from typing import Optional

log = logging.getLogger("agentmem")

TRIM_DELAY_S = 1.0
BIG_REQUEST_CHARS = 1 << 20
"""Requests with at least this much text schedule a trim."""


@functools.cache
def _malloc_trim() -> Optional[Callable[[int], int]]:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return trim


_pending: set[asyncio.AbstractEventLoop] = set()


def schedule_trim() -> None:
    """From the event loop: trim the heap in a worker thread after `TRIM_DELAY_S` (once, however
    many big requests end meanwhile)."""
    trim = _malloc_trim()
    if trim is None:
        return
    loop = asyncio.get_running_loop()
    if loop in _pending:
        return
    _pending.add(loop)

    def run() -> None:
        _pending.discard(loop)
        if not loop.is_closed():
            loop.run_in_executor(None, trim, 0)

    loop.call_later(TRIM_DELAY_S, run)


def freeze_heap() -> int:
    """Collect what is garbage now, then leave every object still alive out of later collections
    (`gc.freeze`). For a process that owns its heap (`agentmem serve`), after start-up: objects
    frozen here are never collected, so a library's heap must not be frozen. Returns how many
    objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
