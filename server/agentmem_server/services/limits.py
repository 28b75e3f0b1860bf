"""Abuse limits: per-tenant request rates, failed-authentication throttling, storage quotas.

Rates and failed authentications are counted in each replica's memory, not in SQL: a shared
counter would add a SQL write to every request (the hot paths answer in a few ms), and the limits
exist to stop floods, not to meter. With N replicas behind a balancer a tenant can reach N times
the rate, and an address N times the failures, before it is refused. Quotas are counted in SQL
(what is stored is shared), checked before a write: two writes racing at the edge can both pass,
so a quota can be exceeded by what runs concurrently, never by more.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Connection

from ..errors import PayloadTooLarge, QuotaExceeded
from ..storage.sql import usage as usage_sql
from ..storage.sql.store import SqlStore

if TYPE_CHECKING:
    from ..settings import Settings

MAX_TRACKED = 100_000
"""Tenants or addresses remembered per replica; the least recently seen are forgotten first."""


class RateLimiter:
    """A token bucket per key: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_s(self, key: str) -> float:
        """Take one request for `key`: 0 if allowed now, else the seconds until it would be."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return wait


class AuthThrottle:
    """At most `max_failures` failed authentications per client address in `window_s`; past
    that, the address is refused (429) until its oldest failure leaves the window."""

    def __init__(
        self,
        max_failures: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(address, []) if now - t < self.window_s]
        if times:
            self._failures[address] = times
            self._failures.move_to_end(address)
        else:
            self._failures.pop(address, None)
        return times

    def wait_s(self, address: str) -> float:
        """0 if `address` may try to authenticate now, else the seconds until it may."""
        if self.max_failures <= 0:
            return 0.0
        now = self._clock()
        times = self._recent(address, now)
        if len(times) < self.max_failures:
            return 0.0
        return max(0.001, times[-self.max_failures] + self.window_s - now)

    def failed(self, address: str) -> None:
        if self.max_failures <= 0:
            return
        now = self._clock()
        self._recent(address, now)
        self._failures.setdefault(address, []).append(now)
        if len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)


@dataclass(frozen=True)
class Quota:
    """A per-tenant storage limit: its name (the setting is `AGENTMEM_QUOTA_<NAME>`), what it
    counts, and the SQL that counts what a tenant holds now."""

    name: str
    unit: str
    usage: Callable[[Connection, str], int]


QUOTAS = {
    q.name: q
    for q in (
        Quota("archival_lines", "archival lines", usage_sql.archival_lines),
        Quota("core_blocks", "core blocks", usage_sql.core_blocks),
        Quota("agents", "agents", usage_sql.agents),
        Quota("state_entries", "state entries", usage_sql.state_entries),
        Quota("state_bytes", "bytes of state values", usage_sql.state_bytes),
    )
}
"""Every quota; a new kind of stored thing (keyed state, say) adds one line here and a setting."""


class Quotas:
    def __init__(self, sql: SqlStore, limits: dict[str, int]):
        self._sql = sql
        self.limits = limits
        """Quota name -> limit; 0 turns a quota off."""

    async def ensure_room(
        self, tenant_id: str, name: str, adding: int, *, field: Optional[str] = None
    ) -> None:
        """Refuse a write that would take the tenant past the quota: 413 if it alone is larger
        than the whole quota, else 429 `quota_exceeded` (not retried: waiting frees nothing)."""
        if self._bounded(name, adding, field):
            await self._sql.run_autocommit(
                self.ensure_room_in, tenant_id, name, adding, field=field
            )

    def ensure_room_in(
        self,
        conn: Connection,
        tenant_id: str,
        name: str,
        adding: int,
        *,
        field: Optional[str] = None,
    ) -> None:
        """`ensure_room` on the caller's connection (inside a SQL function)."""
        if self._bounded(name, adding, field):
            self.check(name, QUOTAS[name].usage(conn, tenant_id), adding, field=field)

    def check(self, name: str, used: int, adding: int, *, field: Optional[str] = None) -> None:
        """`ensure_room` for a caller that read what the tenant holds (`used`) itself, under
        its own lock (keyed state keeps its counts in `state_tenants`)."""
        if not self._bounded(name, adding, field):
            return
        quota, limit = QUOTAS[name], self.limits[name]
        if used + adding > limit:
            raise QuotaExceeded(
                f"the tenant holds {used} {quota.unit} of at most {limit}; "
                f"this request adds {adding}: "
                "delete some first, or ask for a larger AGENTMEM_QUOTA_" + name.upper(),
                field=field or name,
                limit=limit,
            )

    def _bounded(self, name: str, adding: int, field: Optional[str]) -> bool:
        """Whether the quota applies; raises 413 if `adding` alone is past it."""
        quota, limit = QUOTAS[name], self.limits.get(name, 0)
        if limit <= 0 or adding <= 0:
            return False
        if adding > limit:
            raise PayloadTooLarge(
                f"this request adds {adding} {quota.unit}; a tenant may hold at most {limit}",
                field=field or name,
                limit=limit,
            )
        return True


@dataclass
class RequestLimits:
    """The per-replica limits api/access.py applies before a request reaches a route."""

    rate: RateLimiter
    auth: AuthThrottle

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            rate=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
            auth=AuthThrottle(settings.auth_failures_per_min, 60.0),
        )


def quotas_from_settings(sql: SqlStore, settings: Settings) -> Quotas:
    return Quotas(sql, {name: getattr(settings, f"quota_{name}") for name in QUOTAS})


def retry_after(seconds: float) -> str:
    """A `Retry-After` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
