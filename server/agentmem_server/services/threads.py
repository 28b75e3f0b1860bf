"""Threads: the visible transcript of an agent's conversations (user messages and final answers).

Hidden model input (reminders, tool calls) never appears here; it lives in run records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sqlalchemy import Connection

from agentmem.types import Message

from ..errors import NotFound
from ..storage.sql import conversations as conversations_sql

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore


class ThreadService:
    def __init__(self, sql: SqlStore):
        self._sql = sql

    async def messages(
        self, tenant_id: str, thread_id: str, *, agent_id: Optional[str] = None
    ) -> list[Message]:
        """The thread's visible messages in order; NotFound when the tenant has no such thread
        (or, given `agent_id`, when the thread is another agent's)."""

        def read(conn: Connection) -> Optional[list[Message]]:
            thread = conversations_sql.get_thread(conn, tenant_id, thread_id)
            if thread is None or (agent_id is not None and thread.agent_id != agent_id):
                return None
            return conversations_sql.list_messages(conn, tenant_id, thread_id)

        found = await self._sql.run_in_transaction(read)
        if found is None:
            owner = f" for agent {agent_id!r}" if agent_id else ""
            raise NotFound(f"no thread {thread_id!r}{owner}", field="thread_id")
        return found
