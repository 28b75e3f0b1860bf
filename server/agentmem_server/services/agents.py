"""Agents: a named set of instructions and a model, owning a private memory scope and threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from agentmem.types import Agent, AgentCreateRequest

from ..errors import Conflict, NotFound
from ..storage.base import now_micros
from ..storage.sql import conversations as conversations_sql
from ..storage.sql.events import NewEvent
from .threads import thread_event

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore
    from .events import EventLog
    from .limits import Quotas
    from .memory import MemoryService
    from .state import StateService


def _not_found(agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id!r}; create it with agents.create first", field="agent_id")


def agent_event(action: str, agent_id: str, data: Optional[dict[str, Any]] = None) -> NewEvent:
    return NewEvent(
        kind="agent",
        action=action,
        key=agent_id,
        namespace=("agent", agent_id),
        agent_id=agent_id,
        data=data,
    )


class AgentService:
    def __init__(
        self,
        sql: SqlStore,
        memory: MemoryService,
        *,
        quotas: Optional[Quotas] = None,
        state: Optional[StateService] = None,
        events: Optional[EventLog] = None,
    ):
        self._sql = sql
        self._memory = memory
        self._quotas = quotas
        self._state = state
        self._events = events

    async def create(self, tenant_id: str, request: AgentCreateRequest) -> Agent:
        if self._quotas is not None:
            await self._quotas.ensure_room(tenant_id, "agents", 1, field="agent_id")

        def insert(conn: Connection) -> Optional[Agent]:
            agent = conversations_sql.insert_agent(
                conn,
                tenant_id,
                request.agent_id,
                instructions=request.instructions,
                model=request.model,
                metadata=request.metadata,
                now_us=now_micros(),
            )
            if agent is not None and self._events is not None:
                data = {"instructions": agent.instructions, "model": agent.model}
                self._events.record(conn, tenant_id, agent_event("create", agent.id, data))
            return agent

        try:
            agent = await self._sql.run_in_transaction(insert)
        except IntegrityError:
            agent = None  # a concurrent create won the primary key
        if agent is None:
            raise Conflict(f"agent {request.agent_id!r} already exists", field="agent_id")
        if self._events is not None:
            self._events.committed(tenant_id)
        return agent

    async def get(self, tenant_id: str, agent_id: str) -> Agent:
        agent = await self._sql.run_in_transaction(conversations_sql.get_agent, tenant_id, agent_id)
        if agent is None:
            raise _not_found(agent_id)
        return agent

    async def list(self, tenant_id: str) -> list[Agent]:
        return await self._sql.run_in_transaction(conversations_sql.list_agents, tenant_id)

    async def delete(self, tenant_id: str, agent_id: str) -> None:
        """Deletes the agent, its memory (core, archival text and vectors, its state namespace
        `("agent", id)` and those below it), threads, messages and runs."""
        await self.get(tenant_id, agent_id)
        # Memory first: if it fails the agent row still exists, so the caller can simply retry.
        await self._memory.delete_agent_memory(tenant_id, agent_id)
        if self._state is not None:
            await self._state.delete_agent_namespace(tenant_id, agent_id)

        def delete(conn: Connection) -> bool:
            threads = conversations_sql.agent_thread_ids(conn, tenant_id, agent_id)
            gone = conversations_sql.delete_agent(conn, tenant_id, agent_id)
            if gone and self._events is not None:
                # Each thread's deletion too: a subscriber following threads learns of it.
                for thread_id in threads:
                    event = thread_event("delete", thread_id, agent_id)
                    self._events.record(conn, tenant_id, event)
                self._events.record(conn, tenant_id, agent_event("delete", agent_id))
            return gone

        if await self._sql.run_in_transaction(delete) and self._events is not None:
            self._events.committed(tenant_id)
