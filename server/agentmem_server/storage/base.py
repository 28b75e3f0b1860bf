"""Storage-facing value types shared by services and stores. Import-light: no engines, no LanceDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Optional

Scope = Literal["user", "agent"]

USER_SCOPE_KEY = ""
"""The `agent_key` of the user scope.

Public APIs name a scope by `agent_id` (None for the user scope). Storage keys it by `agent_key`:
the agent id, or this for the user scope, because a column in a unique key or a LanceDB filter
cannot be NULL. The SQL and LanceDB columns holding it are named `agent_id`."""


def agent_key_of(agent_id: Optional[str]) -> str:
    return agent_id or USER_SCOPE_KEY


@dataclass(frozen=True)
class ScopeKey:
    """One memory scope of a tenant: `user`, or `agent` with its id."""

    scope: Scope
    agent_id: Optional[str] = None

    @property
    def agent_key(self) -> str:
        return self.agent_id if self.scope == "agent" and self.agent_id else USER_SCOPE_KEY

    @classmethod
    def from_agent_key(cls, agent_key: str) -> "ScopeKey":
        """The inverse of `agent_key`: the form SQL stores a scope in."""
        return cls("agent", agent_key) if agent_key != USER_SCOPE_KEY else cls("user")


@dataclass(frozen=True)
class BlockRef:
    """Identifies an archival block for the archival index."""

    tenant_id: str
    block_id: str
    scope: Scope
    agent_id: Optional[str]

    @classmethod
    def of(cls, tenant_id: str, block_id: str, agent_key: str) -> "BlockRef":
        scope = ScopeKey.from_agent_key(agent_key)
        return cls(tenant_id, block_id, scope.scope, scope.agent_id)

    @property
    def scope_key(self) -> ScopeKey:
        return ScopeKey(self.scope, self.agent_id)


def to_micros(ts: datetime) -> int:
    """UTC microseconds since the epoch: the exact form timestamps are compared in SQL."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = ts.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=micros)


def now_micros() -> int:
    return to_micros(datetime.now(timezone.utc))
