"""SQL for threads as their own resource: create, page, update, delete; page, append and delete
their messages; the compaction swap. Agents, turns and run records are in conversations.py.

Every function takes the connection first and the tenant id next: a thread of another tenant is
never read or written, whatever id is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Optional

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, text, update

from agentmem.types import Message

from ...ids import MESSAGE, new_id
from ..base import from_micros
from . import conversations as conversations_sql
from .conversations import ThreadRow, message_of
from .schema import messages, runs, threads

NO_AGENT = ""
"""`threads.agent_id` of a thread no run has bound yet."""


def _dump(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))


# ---- threads --------------------------------------------------------------------------------


def insert_thread(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    *,
    agent_id: str,
    title: Optional[str],
    metadata: dict[str, Any],
    now_us: int,
) -> ThreadRow:
    conn.execute(
        insert(threads).values(
            id=thread_id,
            tenant_id=tenant_id,
            agent_id=agent_id,
            title=title,
            metadata_json=_dump(metadata),
            created_at=now_us,
            updated_at=now_us,
        )
    )
    return ThreadRow(thread_id, tenant_id, agent_id, now_us, title, metadata, now_us)


def get_thread(conn: Connection, tenant_id: str, thread_id: str) -> Optional[ThreadRow]:
    return conversations_sql.get_thread(conn, tenant_id, thread_id)


def lock_thread(conn: Connection, tenant_id: str, thread_id: str) -> Optional[ThreadRow]:
    """The thread, its row locked until the transaction ends (see `get_thread(for_update=)`)."""
    return conversations_sql.get_thread(conn, tenant_id, thread_id, for_update=True)


def page_threads(
    conn: Connection,
    tenant_id: str,
    *,
    agent_id: Optional[str],
    limit: int,
    after: Optional[tuple[int, str]],
) -> list[ThreadRow]:
    """Newest first (created_at, then id, both descending); `after` is the (created_at, id) of
    the last thread of the previous page. At most `limit` rows."""
    query = select(threads).where(threads.c.tenant_id == tenant_id)
    if agent_id is not None:
        query = query.where(threads.c.agent_id == agent_id)
    if after is not None:
        created, last_id = after
        query = query.where(
            or_(
                threads.c.created_at < created,
                and_(threads.c.created_at == created, threads.c.id < last_id),
            )
        )
    query = query.order_by(threads.c.created_at.desc(), threads.c.id.desc()).limit(limit)
    return [ThreadRow.of(r) for r in conn.execute(query)]


def update_thread(
    conn: Connection, tenant_id: str, thread_id: str, values: dict[str, Any], now_us: int
) -> Optional[ThreadRow]:
    """Sets `title` and/or `metadata`; None when the tenant has no such thread."""
    row: dict[str, Any] = {"updated_at": now_us}
    if "title" in values:
        row["title"] = values["title"]
    if "metadata" in values:
        row["metadata_json"] = _dump(values["metadata"])
    done = conn.execute(
        update(threads)
        .where(threads.c.tenant_id == tenant_id, threads.c.id == thread_id)
        .values(**row)
    )
    return get_thread(conn, tenant_id, thread_id) if done.rowcount else None


def delete_thread(conn: Connection, tenant_id: str, thread_id: str) -> bool:
    """Removes the thread with its messages and run records; False when there was none."""
    if get_thread(conn, tenant_id, thread_id) is None:
        return False
    conn.execute(
        delete(messages).where(messages.c.tenant_id == tenant_id, messages.c.thread_id == thread_id)
    )
    conn.execute(delete(runs).where(runs.c.tenant_id == tenant_id, runs.c.thread_id == thread_id))
    conn.execute(delete(threads).where(threads.c.tenant_id == tenant_id, threads.c.id == thread_id))
    return True


# ---- messages -------------------------------------------------------------------------------


def message_seq(conn: Connection, tenant_id: str, thread_id: str, message_id: str) -> Optional[int]:
    """The position of a message in its thread; None when the thread holds no such message."""
    return conn.execute(
        select(messages.c.seq).where(
            messages.c.id == message_id,
            messages.c.tenant_id == tenant_id,
            messages.c.thread_id == thread_id,
        )
    ).scalar_one_or_none()


def read_in_seq_order(conn: Connection) -> None:
    """Make the rest of this transaction read a thread's messages along (thread_id, seq).

    PostgreSQL plans a page of one thread from the column statistics. Until ANALYZE has seen a
    thread grow (a thread imported or filled in bulk, or one long thread among many), it takes
    the thread for a few hundred rows and plans a bitmap scan of all of them plus a sort: 27-35
    ms for a page of 50 from a 100k-message thread, against 1 ms along the index. Without bitmap
    scans the ordered index scan wins at any estimate. `SET LOCAL` ends with the transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))


def page_messages(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    *,
    limit: int,
    before_seq: Optional[int] = None,
    after_seq: Optional[int] = None,
) -> list[Message]:
    """Messages in order. With `before_seq` only: the last `limit` before it; otherwise the first
    `limit` after `after_seq` (from the start without it), stopping short of `before_seq`. Call
    it in a transaction (`read_in_seq_order`)."""
    read_in_seq_order(conn)
    query = select(messages).where(
        messages.c.tenant_id == tenant_id, messages.c.thread_id == thread_id
    )
    if after_seq is not None:
        query = query.where(messages.c.seq > after_seq)
    if before_seq is not None:
        query = query.where(messages.c.seq < before_seq)
    if before_seq is not None and after_seq is None:
        newest = conn.execute(query.order_by(messages.c.seq.desc()).limit(limit))
        return [message_of(r) for r in reversed(list(newest))]
    return [message_of(r) for r in conn.execute(query.order_by(messages.c.seq).limit(limit))]


def read_back(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    *,
    budget: int,
    cost: Callable[[str], int],
    page: int = 200,
) -> list[Message]:
    """The newest messages, in order, read back from the end until their `cost` passes `budget`
    (the first one past it included): all a run's history selection can use, without reading
    a long thread whole. Call it in a transaction (`read_in_seq_order`)."""
    read_in_seq_order(conn)
    newest_first: list[Message] = []
    used = 0
    before: Optional[int] = None
    while True:
        query = select(messages).where(
            messages.c.tenant_id == tenant_id, messages.c.thread_id == thread_id
        )
        if before is not None:
            query = query.where(messages.c.seq < before)
        rows = list(conn.execute(query.order_by(messages.c.seq.desc()).limit(page)))
        for r in rows:
            newest_first.append(message_of(r))
            used += cost(r.content)
            if used > budget:
                return newest_first[::-1]
        if len(rows) < page:
            return newest_first[::-1]
        before = rows[-1].seq


def append_messages(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    items: Sequence[tuple[str, str]],
    now_us: int,
    *,
    kind: str = "message",
) -> list[Message]:
    """Appends (role, content) pairs after the thread's last message. Two writers racing on a
    thread collide on the unique (thread_id, seq) key; the caller retries the transaction."""
    last = conn.execute(
        select(func.coalesce(func.max(messages.c.seq), 0)).where(messages.c.thread_id == thread_id)
    ).scalar_one()
    rows = [
        {
            "id": new_id(MESSAGE),
            "tenant_id": tenant_id,
            "thread_id": thread_id,
            "seq": last + i,
            "role": role,
            "content": content,
            "run_id": None,
            "created_at": now_us,
            "kind": kind,
        }
        for i, (role, content) in enumerate(items, start=1)
    ]
    if rows:
        conn.execute(insert(messages), rows)
    return [
        Message(
            id=r["id"],
            thread_id=thread_id,
            role=r["role"],
            content=r["content"],
            run_id=None,
            created_at=from_micros(now_us),
            kind=r["kind"],
        )
        for r in rows
    ]


def delete_messages(
    conn: Connection, tenant_id: str, thread_id: str, *, before_seq: Optional[int]
) -> int:
    """Deletes the thread's messages (only those before `before_seq` when given); how many."""
    query = delete(messages).where(
        messages.c.tenant_id == tenant_id, messages.c.thread_id == thread_id
    )
    if before_seq is not None:
        query = query.where(messages.c.seq < before_seq)
    return conn.execute(query).rowcount


def replace_with_summary(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    *,
    first_id: str,
    last_id: str,
    count: int,
    summary: str,
    now_us: int,
) -> Optional[Message]:
    """Compaction's swap: deletes the messages from `first_id` to `last_id` (which must still be
    exactly `count` messages) and puts one summary message in their place. None, with nothing
    changed, when the thread or those messages changed meanwhile."""
    if conversations_sql.get_thread(conn, tenant_id, thread_id, for_update=True) is None:
        return None
    first = message_seq(conn, tenant_id, thread_id, first_id)
    last = message_seq(conn, tenant_id, thread_id, last_id)
    if first is None or last is None:
        return None
    span = and_(
        messages.c.tenant_id == tenant_id,
        messages.c.thread_id == thread_id,
        messages.c.seq >= first,
        messages.c.seq <= last,
    )
    if conn.execute(select(func.count()).select_from(messages).where(span)).scalar_one() != count:
        return None
    conn.execute(delete(messages).where(span))
    message_id = new_id(MESSAGE)
    conn.execute(
        insert(messages).values(
            id=message_id,
            tenant_id=tenant_id,
            thread_id=thread_id,
            seq=first,
            role="system",
            content=summary,
            run_id=None,
            created_at=now_us,
            kind="summary",
        )
    )
    return Message(
        id=message_id,
        thread_id=thread_id,
        role="system",
        content=summary,
        run_id=None,
        created_at=from_micros(now_us),
        kind="summary",
    )
