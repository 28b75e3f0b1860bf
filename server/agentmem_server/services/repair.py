"""Crash repair of archival writes: one entry point, `ArchivalRepair.run_pass()`.

An archival write records itself in `archival_writes_in_flight` (with the server process that
runs it) before it touches the archival index, and its SQL transaction deletes the record as it
commits (services/memory.py). A record whose process is gone marks a write that never committed:
its rows may sit in the index. Until the record goes, recall hides those rows
(`blocks_sql.uncommitted_writes`); the repair takes them back and ends the record.

    repair = ArchivalRepair(sql, memory)
    await repair.start()                 # register this process; repair what dead ones left
    await repair.run_pass()              # now and then: heartbeat, repair, report
    await repair.stop()                  # unregister (what is left in flight is repaired later)

Whose write is dead: a process that unregistered or was never registered; one on this host whose
pid is gone (or is this process under another identity: a restart reusing the pid); one silent
for `LIVENESS_S` (another host). Rows of older versions (no owner) after `LEGACY_GRACE`.

Every replica runs the repair, so each write is claimed first: the repairer holds its scope's
lease in SQL (`repair:<digest of tenant and scope>`, renewed while it works) and checks the write
is still in flight under it. So a write is repaired by one replica, and one scope's index is never
rebuilt by two at once (their replaces would delete each other's rows, or keep both). A scope
whose lease another replica holds is left to that one (or to the next pass).

Each write is repaired on its own. One whose repair fails is retried on the next passes and,
after `MAX_ATTEMPTS` failures, quarantined: moved to `archival_writes_quarantined` (still hidden
from recall), logged and counted, so no record can stop the repair of the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Optional, Protocol

from ..ids import PROCESS, new_id
from ..storage.base import ScopeKey, leased, now_micros
from ..storage.sql import blocks as blocks_sql
from ..storage.sql import processes as processes_sql
from ..storage.sql.leases import SqlLeases
from ..storage.sql.processes import ProcessRow

if TYPE_CHECKING:
    from ..storage.base import ArchivalStore
    from ..storage.sql.store import SqlStore
    from .archival import ArchivalIndex

log = logging.getLogger("agentmem.repair")

REPAIR_INTERVAL_S = 10.0
"""How often a server beats and looks for writes of dead processes."""
LIVENESS_S = 60.0
"""A process on another host that has not beaten for this long is taken to be dead."""
LEGACY_GRACE = timedelta(minutes=10)
"""Rows written before writes named their process: repaired once this old."""
MAX_ATTEMPTS = 3
"""Failed repairs of one write before it is quarantined."""
ORPHAN_SWEEP_S = 3600.0
"""How often a server looks for archival tables of blocks SQL no longer holds (one replica at a
time, under the lease `ORPHAN_SWEEP_LEASE`); `agentmem cleanup` also does."""
ORPHAN_SWEEP_LEASE = "archival-orphan-tables"

_LIVE_HERE: set[str] = set()
"""Process ids started in this OS process and not stopped (tests run several apps in one)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


REPAIR_LEASE_S = 60.0
"""A scope's repair lease lasts this long unless renewed (every third of it while the repair
runs): how long a scope waits after its repairer died."""


def repair_lease_name(tenant_id: str, agent_key: str) -> str:
    """`repair:` and a digest of the scope (ids are longer than a lease name may be)."""
    digest = hashlib.blake2b(f"{tenant_id}\0{agent_key}".encode(), digest_size=16).hexdigest()
    return f"repair:{digest}"


@dataclass
class RepairReport:
    repaired: int = 0
    quarantined: int = 0
    failed: int = 0
    """Failed this pass, to be tried again."""
    skipped: int = 0
    """Left to another replica: it held the scope's lease, or had repaired the write already."""


class Resyncable(Protocol):
    """What the repair needs of the memory service (services/memory.py), which owns the repair:
    named here so that this module does not import the one above it."""

    @property
    def archival_index(self) -> ArchivalIndex: ...

    async def resync_scope(self, tenant_id: str, agent_key: str) -> None: ...


@dataclass
class ArchivalRepair:
    sql: SqlStore
    memory: Resyncable
    process_id: str = field(default_factory=lambda: new_id(PROCESS))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    attempts: dict[str, int] = field(default_factory=dict)
    quarantined_total: int = 0
    """Writes this process quarantined since it started."""
    swept_at: Optional[float] = None
    """Loop time of this process's last sweep for orphan tables (`drop_orphan_tables`)."""

    # ---- this process ---------------------------------------------------------------------------

    async def start(self) -> RepairReport:
        """Register this process, then repair what dead processes left (before serving)."""
        now = now_micros()
        row = ProcessRow(self.process_id, self.host[:255], self.pid, now, now)
        await self.sql.run_in_transaction(processes_sql.register, row)
        _LIVE_HERE.add(self.process_id)
        return await self.repair()

    async def run_pass(self) -> RepairReport:
        """One periodic step: beat, forget processes long silent, repair."""
        now = now_micros()
        await self.sql.run_autocommit(processes_sql.heartbeat, self.process_id, now)
        await self.sql.run_autocommit(
            processes_sql.forget_stale, now - int(10 * LIVENESS_S * 1_000_000)
        )
        report = await self.repair()
        loop_now = asyncio.get_running_loop().time()
        if self.swept_at is None or loop_now - self.swept_at >= ORPHAN_SWEEP_S:
            self.swept_at = loop_now
            leases = SqlLeases(self.sql, holder=self.process_id)
            async with leased(leases, ORPHAN_SWEEP_LEASE, ttl_s=REPAIR_LEASE_S) as held:
                if held:
                    await drop_orphan_tables(self.sql, self.memory.archival_index.store)
        return report

    async def stop(self) -> None:
        _LIVE_HERE.discard(self.process_id)
        await self.sql.run_autocommit(processes_sql.unregister, self.process_id)

    # ---- the repair ------------------------------------------------------------------------------

    async def repair(self, *, older_than: Optional[timedelta] = None) -> RepairReport:
        """Repair every write whose process is dead; with `older_than`, every write started
        longer ago than that, whoever runs it (for an operator who knows they all died)."""
        writes = await self.sql.run_autocommit(blocks_sql.archival_writes_in_flight)
        if older_than is None:
            dead = await self._dead(writes)
        else:
            cutoff = now_micros() - int(older_than.total_seconds() * 1_000_000)
            dead = [w for w in writes if w.started_at < cutoff]
        report = RepairReport()
        for write in dead:
            await self._repair_one(write, report)
        return report

    async def _dead(
        self, writes: list[blocks_sql.ArchivalWriteRow]
    ) -> list[blocks_sql.ArchivalWriteRow]:
        owners = sorted({w.owner for w in writes if w.owner})
        processes = await self.sql.run_autocommit(processes_sql.get_processes, owners)
        now = now_micros()
        legacy_cutoff = now - int(LEGACY_GRACE.total_seconds() * 1_000_000)
        silent_cutoff = now - int(LIVENESS_S * 1_000_000)
        dead = []
        for w in writes:
            if w.owner is None:
                if w.started_at < legacy_cutoff:
                    dead.append(w)
            elif not self._alive(processes.get(w.owner), silent_cutoff):
                dead.append(w)
        return dead

    def _alive(self, process: Optional[ProcessRow], silent_cutoff: int) -> bool:
        if process is None:
            return False  # stopped (what it left in flight it abandoned) or never registered
        if process.id in _LIVE_HERE:
            return True
        if process.host == self.host[:255] and (
            process.pid == self.pid or not _pid_alive(process.pid)
        ):
            return False
        return process.heartbeat_at >= silent_cutoff

    async def _repair_one(self, write: blocks_sql.ArchivalWriteRow, report: RepairReport) -> None:
        leases = SqlLeases(self.sql, holder=self.process_id)
        name = repair_lease_name(write.tenant_id, write.agent_key)
        try:
            async with leased(leases, name, ttl_s=REPAIR_LEASE_S) as held:
                if held and await self.sql.run_autocommit(
                    blocks_sql.archival_write_in_flight, write.write_id
                ):
                    await self._repair_claimed(write, report)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the lease's SQL failed: the next pass retries
            report.failed += 1
            log.warning("could not claim interrupted write %s: %r", write.write_id, exc)
            return
        report.skipped += 1

    async def _repair_claimed(
        self, write: blocks_sql.ArchivalWriteRow, report: RepairReport
    ) -> None:
        try:
            if write.kind == "append":
                scope = ScopeKey.from_agent_key(write.agent_key)
                await self.memory.archival_index.discard_write(
                    write.tenant_id, scope, write.write_id
                )
            else:
                await self.memory.resync_scope(write.tenant_id, write.agent_key)
            await self.sql.run_autocommit(blocks_sql.end_archival_write, write.write_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one write's failure must not stop the others
            attempts = self.attempts.get(write.write_id, 0) + 1
            self.attempts[write.write_id] = attempts
            if attempts < MAX_ATTEMPTS:
                report.failed += 1
                log.warning(
                    "could not repair interrupted %s write %s of tenant %s (attempt %d of %d): %r",
                    write.kind,
                    write.write_id,
                    write.tenant_id,
                    attempts,
                    MAX_ATTEMPTS,
                    exc,
                )
                return
            await self.sql.run_in_transaction(
                blocks_sql.quarantine_archival_write, write, repr(exc), now_micros()
            )
            self.attempts.pop(write.write_id, None)
            report.quarantined += 1
            self.quarantined_total += 1
            log.error(
                "quarantined interrupted %s write %s of tenant %s after %d failed repairs "
                "(its rows stay hidden from recall; see archival_writes_quarantined): %r",
                write.kind,
                write.write_id,
                write.tenant_id,
                attempts,
                exc,
            )
            return
        self.attempts.pop(write.write_id, None)
        report.repaired += 1
        log.warning(
            "repaired the archival index after an interrupted %s write %s",
            write.kind,
            write.write_id,
        )


async def drop_orphan_tables(sql: SqlStore, store: ArchivalStore) -> list[str]:
    """Drop the archival tables of blocks SQL does not hold (left by a process that died in an
    append or a delete); returns their names. Safe while servers run: a scope with a write in
    flight is skipped (an append records itself before it creates its block's table, and ends
    that record as its block commits), and a table a replica is maintaining is left for later.

    The writes in flight are read before the blocks: an append committing in between is then
    seen in one or the other (the two reads need not be one snapshot)."""
    tables = await store.block_tables()
    if not tables:
        return []
    busy = await sql.run_autocommit(blocks_sql.scopes_with_writes_in_flight)
    known = await sql.run_autocommit(blocks_sql.existing_blocks, [t.block_id for t in tables])
    dropped = []
    for t in tables:
        if t.block_id in known or (t.tenant_id, t.scope.agent_key) in busy:
            continue
        if await store.drop_unused_table(t.name):
            dropped.append(t.name)
    if dropped:
        log.warning("dropped %d archival tables of blocks SQL no longer holds", len(dropped))
    return dropped
