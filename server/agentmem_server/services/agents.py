"""Agents: a named set of instructions and a model, owning a private memory scope and threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sqlalchemy.exc import IntegrityError

from agentmem.types import Agent, AgentCreateRequest

from ..errors import Conflict, NotFound
from ..storage.base import now_micros
from ..storage.sql import conversations as conversations_sql

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore
    from .limits import Quotas
    from .memory import MemoryService
    from .state import StateService


def _not_found(agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id!r}; create it with agents.create first", field="agent_id")


class AgentService:
    def __init__(
        self,
        sql: SqlStore,
        memory: MemoryService,
        *,
        quotas: Optional[Quotas] = None,
        state: Optional[StateService] = None,
    ):
        self._sql = sql
        self._memory = memory
        self._quotas = quotas
        self._state = state

    async def create(self, tenant_id: str, request: AgentCreateRequest) -> Agent:
        if self._quotas is not None:
            await self._quotas.ensure_room(tenant_id, "agents", 1, field="agent_id")
        try:
            agent = await self._sql.run_in_transaction(
                conversations_sql.insert_agent,
                tenant_id,
                request.agent_id,
                instructions=request.instructions,
                model=request.model,
                metadata=request.metadata,
                now_us=now_micros(),
            )
        except IntegrityError:
            agent = None  # a concurrent create won the primary key
        if agent is None:
            raise Conflict(f"agent {request.agent_id!r} already exists", field="agent_id")
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
        await self._sql.run_in_transaction(conversations_sql.delete_agent, tenant_id, agent_id)
