"""Background maintenance of archival tables, off the request path.

Writes mark their table; one task compacts it, folds new rows into its FTS and ANN indexes, prunes
old versions and builds the ANN index when due. Until then LanceDB searches the new rows flat, so
nothing waits for maintenance to be found. A table is maintained once it is due (`Pending.due_at`):
after a quiet period with no write to it, and, while it is written without pause, once it holds
`MAX_WRITES` writes since its last maintenance or its oldest such write is `MAX_WAIT_S` old. The
quiet period alone made a table written every second or so compacted every ~2 s, rewriting and
re-indexing it each time; the other two bound its uncompacted fragments (small appends slow flat
search down until compacted) and how long its new rows wait for the indexes.

Across replicas, a table is maintained by one replica at a time: the one holding its lease in SQL
(`Leases`, `archival:<digest of the table name>`), renewed while the work goes on (an ANN build
takes minutes). A replica that finds the lease taken keeps the table marked and tries again after
its next delay: the holder's pass may have started before this replica's writes. LanceDB's
retryable commit conflicts (an append from another replica beside a compaction) are retried
(`store.retrying`).

Old versions are kept for `prune_grace` (readers in other replicas may still be on them), so the
pass after a write cannot prune the versions that write superseded. A second pass runs once the
grace has passed since that pass: replaced and deleted rows leave the files then, whether or not
the table is written again.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

from ..base import Leases
from ..base import leased as base_leased
from .store import LanceStore

log = logging.getLogger("agentmem.archival")

MAINTENANCE_DELAY_S = 2.0
"""Quiet period: a table is maintained this long after its last write, so a burst of 1,000 tiny
appends costs one compaction, not 1,000."""
MAX_WAIT_S = 30.0
"""A table written without a quiet period is maintained at least this often."""
MAX_WRITES = 64
"""... and once it holds this many writes since its last maintenance (each append is a fragment:
1,000 appends of 10 rows made flat search 13x slower until compacted)."""
PRUNE_MARGIN_S = 1.0
"""The pruning pass waits this long past the grace, so the versions it is meant for are older."""
LEASE_TTL_S = 60.0
"""A maintenance lease lasts this long unless renewed (every third of it while the work runs):
the longest a table waits for maintenance after its maintainer died."""


def lease_name(table: str) -> str:
    """`archival:` and a digest of the table name (names are longer than a lease name may be)."""
    return "archival:" + hashlib.blake2b(table.encode(), digest_size=16).hexdigest()


@asynccontextmanager
async def leased(leases: Optional[Leases], name: str) -> AsyncIterator[bool]:
    """`async with leased(leases, name) as held:` a table's maintenance lease (`base.leased`)."""
    async with base_leased(leases, name, ttl_s=LEASE_TTL_S) as held:
        yield held


@dataclass
class Pending:
    """A table's writes since its last maintenance (loop times)."""

    first: float
    last: float
    writes: int = 1
    not_before: float = 0.0
    """`delay_s` after the table's previous pass began: a table written faster than
    `MAX_WRITES` per `delay_s` is maintained no more often than it was before pacing."""

    def due_at(self, *, delay_s: float, max_wait_s: float, max_writes: int) -> float:
        if self.writes >= max_writes:
            due = self.last
        else:
            due = min(self.last + delay_s, self.first + max_wait_s)
        return max(due, self.not_before)


class Maintenance:
    def __init__(
        self,
        store: LanceStore,
        *,
        prune_grace: timedelta,
        background: bool = True,
        delay_s: float = MAINTENANCE_DELAY_S,
        max_wait_s: float = MAX_WAIT_S,
        max_writes: int = MAX_WRITES,
        leases: Optional[Leases] = None,
    ):
        self.store = store
        self.leases = leases
        self.skipped = 0
        """Tables passed over because another replica held their lease (tests, benchmarks)."""
        self.prune_grace = prune_grace
        self.background = background
        self.delay_s = delay_s
        self.max_wait_s = max_wait_s
        self.max_writes = max_writes
        self._dirty: dict[str, Pending] = {}
        """Tables written since their last maintenance."""
        self._passed: dict[str, float] = {}
        """Loop time at which each table's last pass began."""
        self._prune_at: dict[str, float] = {}
        """Tables whose superseded versions outlive the grace at this (event-loop) time."""
        self._touched: set[str] = set()
        """Tables written since the last cleanup(): their old versions may still hold deleted
        text."""
        self._running = asyncio.Lock()
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task[None]] = None

    def mark(self, name: str) -> None:
        self._touched.add(name)
        now = asyncio.get_running_loop().time()
        pending = self._dirty.get(name)
        if pending is None:
            passed = self._passed.get(name)
            self._dirty[name] = Pending(
                now, now, not_before=0.0 if passed is None else passed + self.delay_s
            )
        else:
            pending.last = now
            pending.writes += 1
            if pending.writes != self.max_writes:
                # It is not due any sooner than the loop already knows: no need to wake it.
                return
        if not self.background:
            return
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            # A context of its own: the write marking the table may be inside a SQL
            # transaction, whose context variables must not follow the task (leases use SQL).
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="agentmem-archival-maintenance", context=contextvars.Context()
            )
        assert self._wakeup is not None
        self._wakeup.set()

    def forget(self, name: str) -> None:
        self._dirty.pop(name, None)
        self._passed.pop(name, None)
        self._touched.discard(name)
        self._prune_at.pop(name, None)

    def due_at(self, name: str) -> Optional[float]:
        """Loop time at which the table's writes are due for maintenance; None if it has none."""
        pending = self._dirty.get(name)
        if pending is None:
            return None
        return pending.due_at(
            delay_s=self.delay_s, max_wait_s=self.max_wait_s, max_writes=self.max_writes
        )

    async def _loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            due_at = {name: self.due_at(name) for name in self._dirty}
            now = loop.time()
            written = {name for name, at in due_at.items() if at is not None and at <= now}
            pruning = {name for name, at in self._prune_at.items() if at <= now}
            if written:
                await self.run(prune_older_than=self.prune_grace, names=written)
                continue
            if pruning:
                await self.run(prune_older_than=self.prune_grace, names=pruning, pruning_pass=True)
                continue
            next_at = min(
                [at for at in due_at.values() if at is not None] + list(self._prune_at.values()),
                default=None,
            )
            try:
                await asyncio.wait_for(
                    self._wakeup.wait(), None if next_at is None else max(0.0, next_at - now)
                )
            except TimeoutError:
                pass

    async def run(
        self,
        *,
        prune_older_than: timedelta,
        names: Optional[set[str]] = None,
        pruning_pass: bool = False,
    ) -> None:
        """Maintain the given tables (default: those written since the last run), one at a time.

        A background run that keeps versions for the grace books a pruning pass for each table
        it maintains, except a pruning pass for a table not written since (nothing new to prune);
        a shorter `prune_older_than` (`cleanup()`) leaves nothing for one."""
        loop = asyncio.get_running_loop()
        async with self._running:
            if names is None:
                names = set(self._dirty)
            written = names & self._dirty.keys()
            now = loop.time()
            for name in names:
                self._dirty.pop(name, None)
                self._passed[name] = now
            for name in sorted(names):
                self._prune_at.pop(name, None)
                try:
                    async with leased(self.leases, lease_name(name)) as held:
                        if not held:
                            # Another replica maintains it now, maybe from before our writes.
                            self.skipped += 1
                            if name in written and name not in self._dirty:
                                # Tried again after a quiet period, as if written now.
                                now = loop.time()
                                self._dirty[name] = Pending(now, now)
                                if self._wakeup is not None:
                                    self._wakeup.set()
                            continue
                        await self.store.maintain(name, prune_older_than=prune_older_than)
                except Exception:  # noqa: BLE001 - one table's failure must not stop the others
                    log.exception(
                        "maintenance of archival table %s failed; will retry after its next write",
                        name,
                    )
                if (
                    self.background
                    and prune_older_than >= self.prune_grace
                    and (name in written or not pruning_pass)
                ):
                    self._prune_at[name] = (
                        loop.time() + prune_older_than.total_seconds() + PRUNE_MARGIN_S
                    )

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
