"""The per-app set of services, built in the lifespan and reached from routes via `api/deps.py`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..ids import PROCESS, new_id
from ..storage.sql.leases import SqlLeases
from ..storage.sql.store import SqlStore
from .events import EventHub, EventLog
from .idempotency import IdempotencyService
from .limits import RequestLimits, quotas_from_settings
from .memory import MemoryService
from .repair import REPAIR_INTERVAL_S
from .state import StateService
from .store import StoreService
from .tenants import TenantService

if TYPE_CHECKING:
    from ..embedding import Embedder
    from ..providers import ChatProvider
    from ..settings import Settings
    from .agents import AgentService
    from .archival import ArchivalIndex
    from .runs import RunService
    from .threads import ThreadService

log = logging.getLogger("agentmem")


@dataclass
class Services:
    settings: Settings
    sql: SqlStore
    tenants: TenantService
    embedder: Embedder
    archival: ArchivalIndex
    memory: MemoryService
    provider: ChatProvider
    agents: AgentService
    threads: ThreadService
    runs: RunService
    idempotency: IdempotencyService
    limits: RequestLimits
    state: StateService
    events: EventLog
    event_hub: EventHub
    store: StoreService
    repairer: Optional[asyncio.Task[None]] = field(default=None, repr=False)
    pruner: Optional[asyncio.Task[None]] = field(default=None, repr=False)

    async def close(self) -> None:
        await self.event_hub.close()
        if self.pruner is not None:
            self.pruner.cancel()
            await asyncio.gather(self.pruner, return_exceptions=True)
        await self.idempotency.close()
        await self.state.close()
        if self.repairer is not None:
            # Safe mid-pass: a repair is idempotent, and the SQL store's close below waits for
            # the SQL call in flight before it closes the connections.
            self.repairer.cancel()
            await asyncio.gather(self.repairer, return_exceptions=True)
            try:
                await self.memory.repair.stop()
            except Exception:  # noqa: BLE001 - a process left registered is judged by its pid
                log.exception("could not unregister this server process")
        await self.archival.close()
        await self.provider.aclose()
        await self.sql.aclose()


async def build_services(settings: Settings) -> Services:
    """Open every store and load the model. Heavy imports happen here, never at module import."""
    from ..embedding import load_embedder
    from ..providers import build_provider
    from .agents import AgentService
    from .archival import ArchivalIndex
    from .runs import RunService
    from .threads import ThreadService

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sql = await asyncio.to_thread(SqlStore.open, settings.resolved_database_url())
    try:
        embedder = await asyncio.to_thread(load_embedder, settings)
        # One maintainer per archival table across replicas: leases in the shared SQL store.
        leases = SqlLeases(sql, holder=new_id(PROCESS))
        archival = await ArchivalIndex.open(settings, embedder, leases=leases)
    except BaseException:
        await sql.aclose()  # a server that refuses to start leaves no connection open
        raise
    quotas = quotas_from_settings(sql, settings)
    events = EventLog(sql, data_cap_bytes=settings.events_data_cap_bytes)
    event_hub = EventHub(
        events,
        queue_size=settings.events_stream_queue,
        heartbeat_s=settings.events_heartbeat_s,
        poll_s=settings.events_poll_s,
        listen_url=_listen_url(sql) if settings.events_listen else None,
    )
    events.hub = event_hub
    memory = MemoryService(
        sql, archival, core_limit_chars=settings.core_limit_chars, quotas=quotas, events=events
    )
    if settings.llm_provider == "openai" and not settings.llm_api_key:
        log.warning(
            "AGENTMEM_LLM_PROVIDER=openai but AGENTMEM_LLM_API_KEY is not set: runs will fail "
            "(502 provider_error) unless %s needs no key",
            settings.llm_base_url,
        )
    provider = build_provider(settings)
    state = StateService(
        sql, value_max_bytes=settings.state_value_max_bytes, quotas=quotas, events=events
    )
    agents = AgentService(sql, memory, quotas=quotas, state=state, events=events)
    threads = ThreadService(
        sql,
        memory=memory,
        provider=provider,
        default_model=settings.llm_model,
        compact_token_budget=settings.thread_compact_token_budget,
        compact_keep_last=settings.thread_compact_keep_last,
        events=events,
    )
    runs = RunService(
        settings=settings,
        sql=sql,
        memory=memory,
        agents=agents,
        threads=threads,
        provider=provider,
        state=state,
    )
    idempotency = IdempotencyService(
        sql,
        retention_s=settings.idempotency_retention_s,
        lease_s=settings.idempotency_lease_s,
        wait_s=settings.idempotency_wait_s,
    )
    if settings.state_sweep_interval_s > 0:
        state.start_sweeping(settings.state_sweep_interval_s)
    # Expired keys go within a tenth of the retention (and at least hourly).
    idempotency.start_sweeping(min(settings.idempotency_retention_s / 10, 3600.0))
    log.info(
        "agentmem ready: sql=%s archival=%s model=%s (%s)",
        sql.dialect,
        settings.resolved_archival_uri(),
        embedder.model_id,
        type(embedder).__name__,
    )
    services = Services(
        settings=settings,
        sql=sql,
        tenants=TenantService(sql, key_cache_s=settings.api_key_cache_s),
        embedder=embedder,
        archival=archival,
        memory=memory,
        provider=provider,
        agents=agents,
        threads=threads,
        runs=runs,
        idempotency=idempotency,
        limits=RequestLimits.from_settings(settings),
        state=state,
        events=events,
        store=StoreService(sql, state, archival),
        event_hub=event_hub,
    )
    event_hub.start()
    services.pruner = asyncio.get_running_loop().create_task(
        _prune_events(events, settings.events_retention_s), name="agentmem-prune-events"
    )
    # Writes left in flight by processes that died are repaired before this one serves.
    try:
        report = await memory.repair.start()
    except BaseException:
        await services.close()
        raise
    if report.repaired or report.quarantined:
        log.warning(
            "start-up repair: %d interrupted archival writes repaired, %d quarantined",
            report.repaired,
            report.quarantined,
        )
    services.repairer = asyncio.get_running_loop().create_task(
        _repair_interrupted_writes(memory), name="agentmem-repair-interrupted-writes"
    )
    return services


async def _repair_interrupted_writes(memory: MemoryService) -> None:
    while True:
        await asyncio.sleep(REPAIR_INTERVAL_S)
        try:
            await memory.repair.run_pass()
        except Exception:  # noqa: BLE001 - a failed pass is retried on the next one
            log.exception("repairing interrupted archival writes failed")


def _listen_url(sql: SqlStore) -> Optional[str]:
    """A libpq URL for the PostgreSQL LISTEN connection (None on SQLite)."""
    if sql.dialect != "postgresql":
        return None
    url = sql.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _prune_events(events: EventLog, retention_s: float) -> None:
    # Within a tenth of the retention (and at least hourly); replicas pruning at once is fine:
    # each deletes a prefix of each log and records where it ends (the larger end wins).
    interval = min(retention_s / 10, 3600.0)
    while True:
        try:
            removed = await events.prune(retention_s)
            if removed:
                log.info("pruned %d events older than %.0f s", removed, retention_s)
        except Exception:  # noqa: BLE001 - a failed pass is retried on the next one
            log.exception("pruning the event log failed")
        await asyncio.sleep(interval)
