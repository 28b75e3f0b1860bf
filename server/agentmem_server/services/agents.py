"""Agents: a named set of instructions and a model, owning a private memory scope and threads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from agentmem.types import Agent, AgentCreateRequest

from ..errors import Conflict, NotFound
from ..storage.base import now_micros
from ..storage.sql import conversations as sql

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore
    from .memory import MemoryService

T = TypeVar("T")


async def in_transaction(store: "SqlStore", fn: Callable[[Connection], T]) -> T:
    """Runs `fn(conn)` in one transaction on a worker thread (SQLAlchemy here is synchronous)."""

    def run() -> T:
        with store.begin() as conn:
            return fn(conn)

    return await asyncio.to_thread(run)


def _not_found(agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id!r}; create it with agents.create first", field="agent_id")


class AgentService:
    def __init__(self, sql: "SqlStore", memory: "MemoryService"):
        self._sql = sql
        self._memory = memory

    async def create(self, tenant_id: str, request: AgentCreateRequest) -> Agent:
        def write(conn: Connection):
            return sql.insert_agent(
                conn,
                tenant_id,
                request.agent_id,
                instructions=request.instructions,
                model=request.model,
                metadata=request.metadata,
                now_us=now_micros(),
            )

        try:
            agent = await in_transaction(self._sql, write)
        except IntegrityError:
            agent = None  # a concurrent create won the primary key
        if agent is None:
            raise Conflict(f"agent {request.agent_id!r} already exists", field="agent_id")
        return agent

    async def get(self, tenant_id: str, agent_id: str) -> Agent:
        agent = await in_transaction(self._sql, lambda c: sql.get_agent(c, tenant_id, agent_id))
        if agent is None:
            raise _not_found(agent_id)
        return agent

    async def list(self, tenant_id: str) -> list[Agent]:
        return await in_transaction(self._sql, lambda c: sql.list_agents(c, tenant_id))

    async def delete(self, tenant_id: str, agent_id: str) -> None:
        """Deletes the agent, its memory (core, archival text and vectors), threads, messages and runs."""
        await self.get(tenant_id, agent_id)
        # Memory first: if it fails the agent row still exists, so the caller can simply retry.
        await self._memory.delete_agent_memory(tenant_id, agent_id)
        await in_transaction(self._sql, lambda c: sql.delete_agent(c, tenant_id, agent_id))
