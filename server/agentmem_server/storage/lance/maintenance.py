"""Background maintenance of archival tables, off the request path.

Writes mark their table; shortly after a burst of writes one task compacts it, folds new rows into
its FTS and ANN indexes, prunes old versions and builds the ANN index when due. Until then
LanceDB searches the new rows flat, so nothing waits for maintenance to be found.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Optional

from .store import PRUNE_GRACE, LanceStore

log = logging.getLogger("agentmem.archival")

MAINTENANCE_DELAY_S = 2.0
"""Wait after a write before maintaining: 1,000 tiny appends then cost one compaction, not 1,000."""


class Maintenance:
    def __init__(self, store: LanceStore, *, background: bool = True, delay_s: float = MAINTENANCE_DELAY_S):
        self.store = store
        self.background = background
        self.delay_s = delay_s
        self._dirty: set[str] = set()
        self._touched: set[str] = set()
        """Tables written since the last cleanup(): their old versions may still hold deleted text."""
        self._running = asyncio.Lock()
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None

    def mark(self, name: str) -> None:
        self._dirty.add(name)
        self._touched.add(name)
        if not self.background:
            return
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="agentmem-archival-maintenance")
        assert self._wakeup is not None
        self._wakeup.set()

    def forget(self, name: str) -> None:
        self._dirty.discard(name)
        self._touched.discard(name)

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.delay_s)
            self._wakeup.clear()
            await self.run(prune_older_than=PRUNE_GRACE)

    async def run(self, *, prune_older_than: timedelta, names: Optional[set[str]] = None) -> None:
        """Maintain the given tables (default: those written since the last run), one at a time."""
        async with self._running:
            if names is None:
                names, self._dirty = self._dirty, set()
            else:
                self._dirty -= names
            for name in sorted(names):
                try:
                    await self.store.maintain(name, prune_older_than=prune_older_than)
                except Exception:  # noqa: BLE001 - one table's failure must not stop the others
                    log.exception("maintenance of archival table %s failed; will retry after its next write", name)

    def take_touched(self) -> set[str]:
        names, self._touched = self._touched, set()
        return names

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        # A maintenance run in flight finishes (or stops at its next await) before the store closes.
        async with self._running:
            pass
