"""The per-app set of services, built in the lifespan and reached from routes via `api/deps.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.sql.store import SqlStore
    from .archival import ArchivalIndex
    from .memory import MemoryService
    from .tenants import TenantService


@dataclass
class Services:
    settings: "Settings"
    sql: "SqlStore"
    tenants: "TenantService"
    archival: "ArchivalIndex"
    memory: "MemoryService"
    agents: Any = None
    runs: Any = None
    provider: Any = None
