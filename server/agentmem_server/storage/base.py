"""Storage-facing value types shared by services and stores. Import-light: no engines, no LanceDB."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Optional

Scope = Literal["user", "agent"]

USER_SCOPE_AGENT = ""
"""How the `user` scope is keyed where a column cannot be NULL (unique keys, LanceDB filters)."""


@dataclass(frozen=True)
class ScopeKey:
    """One memory scope of a tenant: `user`, or `agent` with its id."""

    scope: Scope
    agent_id: Optional[str] = None

    @property
    def agent_key(self) -> str:
        return self.agent_id if self.scope == "agent" and self.agent_id else USER_SCOPE_AGENT

    @classmethod
    def from_agent_key(cls, agent_key: str) -> "ScopeKey":
        """The inverse of `agent_key`: the form SQL stores a scope in."""
        return cls("agent", agent_key) if agent_key != USER_SCOPE_AGENT else cls("user")


@dataclass(frozen=True)
class BlockRef:
    """Identifies an archival block for the archival index."""

    tenant_id: str
    block_id: str
    scope: Scope
    agent_id: Optional[str]

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


def new_write_id() -> str:
    """Tags the archival rows of one write, so a failed or interrupted write can be taken back."""
    return uuid.uuid4().hex[:16]
