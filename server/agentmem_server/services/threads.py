"""Threads: conversations as their own resource, and the visible transcript of each.

    thread = await threads.create(tenant_id, ThreadCreateRequest(agent_id="helper"))
    await threads.add_messages(tenant_id, thread.id, MessagesAddRequest(messages=[...]))
    page = await threads.page_messages(tenant_id, thread.id, limit=50, after=last_id)

A thread belongs to one agent, or to none until its first run binds it (runs.py). The visible
transcript holds user messages, final answers, messages written by `add_messages` and
compaction summaries; hidden model input (reminders, tool calls) lives only in run records.
A thread of another tenant is never found: every method answers NotFound for it.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from agentmem.types import (
    CompactResult,
    Message,
    MessagesAddRequest,
    Thread,
    ThreadCreateRequest,
    ThreadPage,
    ThreadUpdateRequest,
)

from ..errors import Conflict, InvalidInput, NotFound
from ..ids import THREAD, new_id
from ..providers.base import ChatProvider
from ..storage.base import from_micros, now_micros
from ..storage.sql import conversations as conversations_sql
from ..storage.sql import threads as threads_sql
from ..storage.sql.conversations import SavedTurn, ThreadRow
from ..storage.sql.events import NewEvent
from .compaction import SUMMARY_HEADER, archival_lines, split_point, summarise
from .prompt import message_tokens

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore
    from .events import EventLog
    from .memory import MemoryService

log = logging.getLogger("agentmem.threads")

WRITE_ATTEMPTS = 10
"""Writers racing on one thread collide on the message sequence; the loser writes again (each
round lets at least one writer through)."""


def thread_model(row: ThreadRow) -> Thread:
    return Thread(
        id=row.id,
        agent_id=row.agent_id or None,
        title=row.title,
        metadata=row.metadata,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
    )


def thread_event(
    action: str, thread_id: str, agent_id: str, data: Optional[dict[str, Any]] = None
) -> NewEvent:
    """The change-feed event of a thread write: keyed by the thread id, in its agent's namespace
    (`("agent", id)`, or `()` while no agent is bound), so `namespace="agent/x"` follows agent x
    and its threads together."""
    return NewEvent(
        kind="thread",
        action=action,
        key=thread_id,
        namespace=("agent", agent_id) if agent_id else (),
        agent_id=agent_id or None,
        data=data,
    )


def thread_data(row: ThreadRow) -> dict[str, Any]:
    """What `create` and `update` events carry: the thread's fields after the write."""
    return {
        "agent_id": row.agent_id or None,
        "title": row.title,
        "metadata": row.metadata,
        "updated_at": from_micros(row.updated_at).isoformat(),
    }


def messages_data(
    items: Sequence[tuple[str, str, str, str]], run_id: Optional[str] = None
) -> dict[str, Any]:
    """What an `append` event carries for (id, role, kind, content) items, in order: the range
    (`first_id`, `last_id`, `count`) always, the messages themselves while they fit the event
    data cap (`messages` is left out past it, and the event says `truncated`)."""
    return {
        "count": len(items),
        "first_id": items[0][0],
        "last_id": items[-1][0],
        "run_id": run_id,
        "messages": [
            {"id": i, "role": role, "kind": kind, "content": content}
            for i, role, kind, content in items
        ],
    }


def no_thread(thread_id: str) -> NotFound:
    return NotFound(f"no thread {thread_id!r}", field="thread_id")


def encode_cursor(row: ThreadRow) -> str:
    raw = f"{row.created_at}:{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, thread_id = raw.split(":", 1)
        return int(created), thread_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "cursor is not one this API gave out; pass the next_cursor of the previous page",
            field="cursor",
        ) from None


class ThreadService:
    def __init__(
        self,
        sql: SqlStore,
        *,
        memory: Optional[MemoryService] = None,
        provider: Optional[ChatProvider] = None,
        default_model: str = "",
        compact_token_budget: int = 0,
        compact_keep_last: int = 20,
        events: Optional[EventLog] = None,
    ):
        """`memory` and `provider` are what compaction needs (the archival memory the turns move
        to, the model that summarises them); `compact_token_budget` > 0 turns on compaction after
        a run whose thread grew past it (see `compact_if_over_budget`)."""
        self._sql = sql
        self._memory = memory
        self._provider = provider
        self._default_model = default_model
        self.compact_token_budget = compact_token_budget
        self.compact_keep_last = compact_keep_last
        self._events = events

    # ---- the change feed --------------------------------------------------------------------

    def record(self, conn: Connection, tenant_id: str, event: NewEvent) -> None:
        """Record a thread event in the write's transaction (its last step)."""
        if self._events is not None:
            self._events.record(conn, tenant_id, event)

    def committed(self, tenant_id: str) -> None:
        if self._events is not None:
            self._events.committed(tenant_id)

    def record_turn(
        self,
        conn: Connection,
        tenant_id: str,
        saved: SavedTurn,
        *,
        new_thread: bool,
        run_id: str,
        user_message: str,
        output: str,
    ) -> None:
        """The events of a run's turn, in its transaction: the thread's creation (a run without
        `thread_id`) or binding (a thread no agent had), then its two messages."""
        row = saved.thread
        if new_thread:
            self.record(
                conn, tenant_id, thread_event("create", row.id, row.agent_id, thread_data(row))
            )
        elif saved.bound:
            self.record(
                conn, tenant_id, thread_event("update", row.id, row.agent_id, thread_data(row))
            )
        user_id, answer_id = saved.message_ids
        items = [
            (user_id, "user", "message", user_message),
            (answer_id, "assistant", "message", output),
        ]
        self.record(
            conn,
            tenant_id,
            thread_event("append", row.id, row.agent_id, messages_data(items, run_id)),
        )

    # ---- threads ----------------------------------------------------------------------------

    async def create(self, tenant_id: str, request: ThreadCreateRequest) -> Thread:
        thread_id = new_id(THREAD)

        def write(conn: Connection) -> Optional[ThreadRow]:
            if request.agent_id is not None:
                if conversations_sql.get_agent(conn, tenant_id, request.agent_id) is None:
                    return None
            row = threads_sql.insert_thread(
                conn,
                tenant_id,
                thread_id,
                agent_id=request.agent_id or threads_sql.NO_AGENT,
                title=request.title,
                metadata=request.metadata,
                now_us=now_micros(),
            )
            self.record(
                conn, tenant_id, thread_event("create", row.id, row.agent_id, thread_data(row))
            )
            return row

        row = await self._sql.run_in_transaction(write)
        if row is None:
            raise NotFound(f"no agent {request.agent_id!r}", field="agent_id")
        self.committed(tenant_id)
        return thread_model(row)

    async def list(
        self, tenant_id: str, *, agent_id: Optional[str], limit: int, cursor: Optional[str]
    ) -> ThreadPage:
        after = decode_cursor(cursor) if cursor is not None else None
        rows = await self._sql.run_autocommit(
            threads_sql.page_threads, tenant_id, agent_id=agent_id, limit=limit + 1, after=after
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return ThreadPage(
            data=[thread_model(r) for r in rows],
            next_cursor=encode_cursor(rows[-1]) if more else None,
        )

    async def get(self, tenant_id: str, thread_id: str) -> Thread:
        return thread_model(await self.row(tenant_id, thread_id))

    async def row(self, tenant_id: str, thread_id: str) -> ThreadRow:
        row = await self._sql.run_autocommit(threads_sql.get_thread, tenant_id, thread_id)
        if row is None:
            raise no_thread(thread_id)
        return row

    async def update(self, tenant_id: str, thread_id: str, request: ThreadUpdateRequest) -> Thread:
        """Changes the fields the request set (`title: null` removes the title)."""
        values: dict[str, Any] = {}
        if "title" in request.model_fields_set:
            values["title"] = request.title
        if "metadata" in request.model_fields_set:
            if request.metadata is None:
                raise InvalidInput("metadata must be a JSON object", field="metadata")
            values["metadata"] = request.metadata

        def write(conn: Connection) -> Optional[ThreadRow]:
            row = threads_sql.update_thread(conn, tenant_id, thread_id, values, now_micros())
            if row is not None:
                event = thread_event("update", row.id, row.agent_id, thread_data(row))
                self.record(conn, tenant_id, event)
            return row

        row = await self._sql.run_in_transaction(write)
        if row is None:
            raise no_thread(thread_id)
        self.committed(tenant_id)
        return thread_model(row)

    async def delete(self, tenant_id: str, thread_id: str) -> None:
        """Deletes the thread with its messages and run records."""

        def write(conn: Connection) -> bool:
            row = threads_sql.lock_thread(conn, tenant_id, thread_id)
            if row is None or not threads_sql.delete_thread(conn, tenant_id, thread_id):
                return False
            self.record(conn, tenant_id, thread_event("delete", thread_id, row.agent_id))
            return True

        if not await self._sql.run_in_transaction(write):
            raise no_thread(thread_id)
        self.committed(tenant_id)

    # ---- messages ---------------------------------------------------------------------------

    async def history(
        self, tenant_id: str, thread_id: str
    ) -> tuple[ThreadRow, builtins.list[Message]]:
        """The thread and all its visible messages in order (a run's history); NotFound when the
        tenant has no such thread."""

        def read(conn: Connection) -> Optional[tuple[ThreadRow, builtins.list[Message]]]:
            thread = conversations_sql.get_thread(conn, tenant_id, thread_id)
            if thread is None:
                return None
            return thread, conversations_sql.list_messages(conn, tenant_id, thread_id)

        # Statement by statement: a thread deleted in between reads as empty, which is its state.
        found = await self._sql.run_autocommit(read)
        if found is None:
            raise no_thread(thread_id)
        return found

    async def recent_history(
        self, tenant_id: str, thread_id: str, *, token_budget: int
    ) -> tuple[ThreadRow, builtins.list[Message]]:
        """The thread and its newest messages, in order, up to the first one past `token_budget`
        (tokens as `select_history` counts them): what a run's history is chosen from, read
        without loading a long thread whole. NotFound when the tenant has no such thread."""

        def read(conn: Connection) -> Optional[tuple[ThreadRow, builtins.list[Message]]]:
            thread = conversations_sql.get_thread(conn, tenant_id, thread_id)
            if thread is None:
                return None
            found = threads_sql.read_back(
                conn, tenant_id, thread_id, budget=token_budget, cost=message_tokens
            )
            return thread, found

        # A transaction: the page is read along the thread's index (`read_in_seq_order`).
        result = await self._sql.run_in_transaction(read)
        if result is None:
            raise no_thread(thread_id)
        return result

    async def messages(
        self, tenant_id: str, thread_id: str, *, agent_id: Optional[str] = None
    ) -> builtins.list[Message]:
        """All the thread's visible messages in order; NotFound when the tenant has no such
        thread (or, given `agent_id`, when the thread is another agent's)."""
        thread, found = await self.history(tenant_id, thread_id)
        if agent_id is not None and thread.agent_id != agent_id:
            raise NotFound(f"no thread {thread_id!r} for agent {agent_id!r}", field="thread_id")
        return found

    async def page_messages(
        self,
        tenant_id: str,
        thread_id: str,
        *,
        limit: int,
        before: Optional[str] = None,
        after: Optional[str] = None,
    ) -> builtins.list[Message]:
        """Messages in order: the first `limit` (after the message `after` when given, before
        `before` when given), or with `before` alone the last `limit` before it."""

        def read(conn: Connection) -> builtins.list[Message]:
            if threads_sql.get_thread(conn, tenant_id, thread_id) is None:
                raise no_thread(thread_id)
            seqs: dict[str, Optional[int]] = {}
            for name, message_id in (("before", before), ("after", after)):
                seqs[name] = None
                if message_id is not None:
                    seqs[name] = threads_sql.message_seq(conn, tenant_id, thread_id, message_id)
                    if seqs[name] is None:
                        raise NotFound(
                            f"thread {thread_id!r} has no message {message_id!r}", field=name
                        )
            return threads_sql.page_messages(
                conn,
                tenant_id,
                thread_id,
                limit=limit,
                before_seq=seqs["before"],
                after_seq=seqs["after"],
            )

        # One snapshot: the cursor message and the page agree even while messages are deleted.
        return await self._sql.run_in_transaction(read)

    async def add_messages(
        self, tenant_id: str, thread_id: str, request: MessagesAddRequest
    ) -> builtins.list[Message]:
        """Appends the messages after the thread's last one, all or none."""
        items = [(m.role, m.content) for m in request.messages]

        def write(conn: Connection) -> builtins.list[Message]:
            thread = threads_sql.lock_thread(conn, tenant_id, thread_id)
            if thread is None:
                raise no_thread(thread_id)
            added = threads_sql.append_messages(conn, tenant_id, thread_id, items, now_micros())
            data = messages_data([(m.id, m.role, m.kind, m.content) for m in added])
            self.record(conn, tenant_id, thread_event("append", thread_id, thread.agent_id, data))
            return added

        for attempt in range(WRITE_ATTEMPTS):
            try:
                added = await self._sql.run_in_transaction(write)
                self.committed(tenant_id)
                return added
            except IntegrityError:
                # Another writer took our sequence numbers (or deleted the thread); try again.
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def delete_messages(
        self, tenant_id: str, thread_id: str, *, before: Optional[str] = None
    ) -> int:
        """Deletes the thread's messages, or only those before the message `before`; how many."""

        def write(conn: Connection) -> int:
            thread = threads_sql.lock_thread(conn, tenant_id, thread_id)
            if thread is None:
                raise no_thread(thread_id)
            before_seq = None
            if before is not None:
                before_seq = threads_sql.message_seq(conn, tenant_id, thread_id, before)
                if before_seq is None:
                    raise NotFound(
                        f"thread {thread_id!r} has no message {before!r}", field="before"
                    )
            count = threads_sql.delete_messages(conn, tenant_id, thread_id, before_seq=before_seq)
            if count:
                data = {"count": count, "before": before}
                event = thread_event("delete_messages", thread_id, thread.agent_id, data)
                self.record(conn, tenant_id, event)
            return count

        deleted = await self._sql.run_in_transaction(write)
        if deleted:
            self.committed(tenant_id)
        return deleted

    # ---- compaction -------------------------------------------------------------------------

    async def compact(self, tenant_id: str, thread_id: str, *, keep_last: int) -> CompactResult:
        """Replaces the messages before the last `keep_last` (a run's turn is never split) with
        one summary message, and appends them to the agent's archival memory as dated lines.

        The summary and the archival lines are made first, outside any transaction; then one
        transaction swaps the messages for the summary and commits the lines with it. If the
        thread changed in between (another compaction, deleted messages), nothing is written
        (409). A crash leaves the old thread or the compacted one, never half of each: the SQL
        swap and the lines commit together, and an archival index write without its commit is
        undone by the interrupted-write repair (services/memory.py)."""
        if self._memory is None or self._provider is None:
            raise RuntimeError("ThreadService needs memory and provider to compact")
        thread, history = await self.history(tenant_id, thread_id)
        if not thread.agent_id:
            raise InvalidInput(
                f"thread {thread_id!r} has no agent yet, so no archival memory to move its "
                "messages to: run an agent on it first, or create it with agent_id",
                field="thread_id",
            )
        older = history[: split_point(history, keep_last)]
        if not older or all(m.kind == "summary" for m in older):
            return CompactResult(thread_id=thread_id, compacted=0, archived_lines=0)
        agent = await self._sql.run_autocommit(
            conversations_sql.get_agent, tenant_id, thread.agent_id
        )
        if agent is None:
            raise no_thread(thread_id)  # the agent (and with it the thread) is being deleted
        model = agent.model or self._default_model
        summary_text = await summarise(self._provider, model, older)
        moved = sum(1 for m in older if m.kind != "summary")
        content = SUMMARY_HEADER.format(count=moved) + "\n" + summary_text
        lines = archival_lines(older)
        agent_id = thread.agent_id
        done: builtins.list[Message] = []

        def swap(conn: Connection) -> None:
            summary = threads_sql.replace_with_summary(
                conn,
                tenant_id,
                thread_id,
                first_id=older[0].id,
                last_id=older[-1].id,
                count=len(older),
                summary=content,
                now_us=now_micros(),
            )
            if summary is None:
                raise Conflict(
                    f"thread {thread_id!r} changed during compaction; nothing was compacted, "
                    "compact again",
                    field="thread_id",
                )
            done[:] = [summary]  # the last attempt's (an append that retries runs this again)
            data = {
                "compacted": len(older),
                "archived_lines": len(lines),
                "summary_id": summary.id,
                "content": summary.content,
            }
            self.record(conn, tenant_id, thread_event("compact", thread_id, agent_id, data))

        if lines:
            await self._memory.append_archival_lines(
                tenant_id, lines, thread.agent_id, with_sql=swap
            )
        else:
            await self._sql.run_in_transaction(swap)
        self.committed(tenant_id)
        return CompactResult(
            thread_id=thread_id, compacted=len(older), archived_lines=len(lines), summary=done[0]
        )

    async def compact_if_over_budget(
        self, tenant_id: str, thread_id: str
    ) -> Optional[CompactResult]:
        """The automatic policy (setting `AGENTMEM_THREAD_COMPACT_TOKEN_BUDGET`): compacts the
        thread, keeping `compact_keep_last` messages, once its messages pass the token budget.
        Best effort: a failure is logged, and the thread stays as it was."""
        if self.compact_token_budget <= 0:
            return None
        try:
            budget = self.compact_token_budget
            _, newest = await self.recent_history(tenant_id, thread_id, token_budget=budget)
            if sum(message_tokens(m.content) for m in newest) <= budget:
                return None
            return await self.compact(tenant_id, thread_id, keep_last=self.compact_keep_last)
        except Exception:  # noqa: BLE001 - the run that triggered it has succeeded already
            log.exception("automatic compaction of thread %s failed", thread_id)
            return None
