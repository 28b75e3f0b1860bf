"""SQL for agents, threads, the visible transcript (`messages`) and run records (`runs`).

Functions take a Connection so the caller decides the transaction: a turn (thread, both
messages, run record) is written in one, after the provider has answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from sqlalchemy import Connection, Row, delete, func, insert, literal, select, update

from agentmem.types import Agent, Message

from ...ids import MESSAGE, new_id
from ..base import from_micros
from .schema import agents, messages, runs, threads


@dataclass(frozen=True)
class ThreadRow:
    id: str
    tenant_id: str
    agent_id: str
    """'' while no agent is bound (the first run binds one)."""
    created_at: int
    title: Optional[str] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    updated_at: int = 0

    @classmethod
    def of(cls, r: Any) -> ThreadRow:
        return cls(
            r.id,
            r.tenant_id,
            r.agent_id,
            r.created_at,
            r.title,
            json.loads(r.metadata_json or "{}"),
            r.updated_at or r.created_at,
        )


@dataclass(frozen=True)
class RunRow:
    id: str
    tenant_id: str
    agent_id: str
    thread_id: str
    created_at: int
    replay_of: Optional[str]
    record: dict[str, Any]


def _agent(r: Row[Any]) -> Agent:
    return Agent(
        id=r.id,
        instructions=r.instructions,
        model=r.model,
        metadata=json.loads(r.metadata_json or "{}"),
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.updated_at),
    )


# ---- agents ---------------------------------------------------------------------------------


def insert_agent(
    conn: Connection,
    tenant_id: str,
    agent_id: str,
    *,
    instructions: str,
    model: Optional[str],
    metadata: dict[str, Any],
    now_us: int,
) -> Optional[Agent]:
    """The new agent, or None when the tenant already has one with this id."""
    exists = conn.execute(
        select(agents.c.id).where(agents.c.tenant_id == tenant_id, agents.c.id == agent_id)
    ).first()
    if exists:
        return None
    conn.execute(
        insert(agents).values(
            tenant_id=tenant_id,
            id=agent_id,
            instructions=instructions,
            model=model,
            metadata_json=json.dumps(metadata, ensure_ascii=False),
            created_at=now_us,
            updated_at=now_us,
        )
    )
    return get_agent(conn, tenant_id, agent_id)


def get_agent(conn: Connection, tenant_id: str, agent_id: str) -> Optional[Agent]:
    r = conn.execute(
        select(agents).where(agents.c.tenant_id == tenant_id, agents.c.id == agent_id)
    ).first()
    return _agent(r) if r else None


def list_agents(conn: Connection, tenant_id: str) -> list[Agent]:
    rows = conn.execute(
        select(agents)
        .where(agents.c.tenant_id == tenant_id)
        .order_by(agents.c.created_at, agents.c.id)
    )
    return [_agent(r) for r in rows]


def agent_thread_ids(conn: Connection, tenant_id: str, agent_id: str) -> list[str]:
    """The ids of the agent's threads, in id order."""
    rows = conn.execute(
        select(threads.c.id)
        .where(threads.c.tenant_id == tenant_id, threads.c.agent_id == agent_id)
        .order_by(threads.c.id)
    )
    return list(rows.scalars())


def delete_agent(conn: Connection, tenant_id: str, agent_id: str) -> bool:
    """Removes the agent with its threads, messages and runs; False when there was no agent."""
    thread_ids = select(threads.c.id).where(
        threads.c.tenant_id == tenant_id, threads.c.agent_id == agent_id
    )
    # Explicit rather than relying on ON DELETE CASCADE, which SQLite honours only per connection
    # pragma.
    conn.execute(
        delete(messages).where(
            messages.c.tenant_id == tenant_id, messages.c.thread_id.in_(thread_ids)
        )
    )
    conn.execute(
        delete(threads).where(threads.c.tenant_id == tenant_id, threads.c.agent_id == agent_id)
    )
    conn.execute(delete(runs).where(runs.c.tenant_id == tenant_id, runs.c.agent_id == agent_id))
    gone = conn.execute(
        delete(agents).where(agents.c.tenant_id == tenant_id, agents.c.id == agent_id)
    )
    return gone.rowcount > 0


# ---- threads and the visible transcript -------------------------------------------------------


def get_thread(
    conn: Connection, tenant_id: str, thread_id: str, *, for_update: bool = False
) -> Optional[ThreadRow]:
    """The thread; `for_update` locks its row until the transaction ends (PostgreSQL; SQLite has
    one writer at a time anyway), so writers of one thread's messages take turns."""
    query = select(threads).where(threads.c.tenant_id == tenant_id, threads.c.id == thread_id)
    r = conn.execute(query.with_for_update() if for_update else query).first()
    return ThreadRow.of(r) if r else None


def list_messages(conn: Connection, tenant_id: str, thread_id: str) -> list[Message]:
    rows = conn.execute(
        select(messages)
        .where(messages.c.tenant_id == tenant_id, messages.c.thread_id == thread_id)
        .order_by(messages.c.seq)
    )
    return [message_of(r) for r in rows]


def message_of(r: Any) -> Message:
    return Message(
        id=r.id,
        thread_id=r.thread_id,
        role=r.role,
        content=r.content,
        run_id=r.run_id,
        created_at=from_micros(r.created_at),
        kind=r.kind,
    )


def _append_message(
    conn: Connection,
    tenant_id: str,
    thread_id: str,
    role: str,
    content: str,
    run_id: str,
    now_us: int,
) -> str:
    # seq is computed inside the INSERT so two turns racing on one thread collide on the unique
    # (thread_id, seq) key instead of silently interleaving; the caller retries the transaction.
    next_seq = (
        select(func.coalesce(func.max(messages.c.seq), 0) + 1)
        .where(messages.c.thread_id == thread_id)
        .scalar_subquery()
    )
    message_id = new_id(MESSAGE)
    conn.execute(
        insert(messages).from_select(
            ["id", "tenant_id", "thread_id", "seq", "role", "content", "run_id", "created_at"],
            select(
                literal(message_id),
                literal(tenant_id),
                literal(thread_id),
                next_seq,
                literal(role),
                literal(content),
                literal(run_id),
                literal(now_us),
            ),
        )
    )
    return message_id


def insert_run(
    conn: Connection,
    *,
    tenant_id: str,
    agent_id: str,
    thread_id: str,
    run_id: str,
    created_us: int,
    replay_of: Optional[str],
    record: dict[str, Any],
) -> None:
    conn.execute(
        insert(runs).values(
            id=run_id,
            tenant_id=tenant_id,
            agent_id=agent_id,
            thread_id=thread_id,
            created_at=created_us,
            replay_of=replay_of,
            record_json=json.dumps(record, ensure_ascii=False, separators=(",", ":")),
        )
    )


@dataclass(frozen=True)
class SavedTurn:
    thread: ThreadRow
    """The thread after the turn (bound to the run's agent)."""
    bound: bool
    """The turn bound a thread that had no agent."""
    message_ids: tuple[str, str]
    """The user message's and the answer's."""


def save_turn(
    conn: Connection,
    *,
    tenant_id: str,
    agent_id: str,
    thread_id: str,
    new_thread: bool,
    run_id: str,
    user_message: str,
    output: str,
    started_us: int,
    finished_us: int,
    record: dict[str, Any],
) -> Optional[SavedTurn]:
    """Writes one finished turn; None (nothing written) when the agent or thread is gone
    meanwhile, or the thread was bound to another agent meanwhile. A thread no agent had yet is
    bound to this one."""
    if get_agent(conn, tenant_id, agent_id) is None:
        return None
    bound = False
    if new_thread:
        conn.execute(
            insert(threads).values(
                id=thread_id,
                tenant_id=tenant_id,
                agent_id=agent_id,
                created_at=started_us,
                updated_at=started_us,
            )
        )
        thread = ThreadRow(thread_id, tenant_id, agent_id, started_us, None, {}, started_us)
    else:
        found = get_thread(conn, tenant_id, thread_id, for_update=True)
        if found is None or found.agent_id not in ("", agent_id):
            return None
        thread = found
        if found.agent_id == "":
            conn.execute(
                update(threads)
                .where(threads.c.tenant_id == tenant_id, threads.c.id == thread_id)
                .values(agent_id=agent_id, updated_at=finished_us)
            )
            bound = True
            thread = replace(found, agent_id=agent_id, updated_at=finished_us)
    user_id = _append_message(conn, tenant_id, thread_id, "user", user_message, run_id, started_us)
    answer_id = _append_message(
        conn, tenant_id, thread_id, "assistant", output, run_id, finished_us
    )
    insert_run(
        conn,
        tenant_id=tenant_id,
        agent_id=agent_id,
        thread_id=thread_id,
        run_id=run_id,
        created_us=started_us,
        replay_of=None,
        record=record,
    )
    return SavedTurn(thread, bound, (user_id, answer_id))


# ---- runs -----------------------------------------------------------------------------------


def _run(r: Any) -> RunRow:
    return RunRow(
        r.id,
        r.tenant_id,
        r.agent_id,
        r.thread_id,
        r.created_at,
        r.replay_of,
        json.loads(r.record_json),
    )


def get_run(conn: Connection, tenant_id: str, run_id: str) -> Optional[RunRow]:
    r = conn.execute(select(runs).where(runs.c.tenant_id == tenant_id, runs.c.id == run_id)).first()
    return _run(r) if r is not None else None


# ---- export and import (services/transfer.py) -------------------------------------------------


@dataclass(frozen=True)
class MessageRow:
    id: str
    thread_id: str
    seq: int
    role: str
    content: str
    run_id: Optional[str]
    created_at: int
    kind: str = "message"


def list_threads(conn: Connection, tenant_id: str) -> list[ThreadRow]:
    rows = conn.execute(
        select(threads).where(threads.c.tenant_id == tenant_id).order_by(threads.c.created_at)
    )
    return [ThreadRow.of(r) for r in rows]


def iter_message_rows(conn: Connection, thread_id: str) -> Iterator[MessageRow]:
    rows = conn.execute(
        select(messages).where(messages.c.thread_id == thread_id).order_by(messages.c.seq)
    )
    for r in rows:
        yield MessageRow(
            r.id, r.thread_id, r.seq, r.role, r.content, r.run_id, r.created_at, r.kind
        )


def iter_runs(conn: Connection, tenant_id: str) -> Iterator[RunRow]:
    rows = conn.execute(
        select(runs).where(runs.c.tenant_id == tenant_id).order_by(runs.c.created_at)
    )
    for r in rows:
        yield _run(r)


def insert_thread_if_missing(
    conn: Connection,
    *,
    thread_id: str,
    tenant_id: str,
    agent_id: str,
    created_at: int,
    title: Optional[str] = None,
    metadata: Optional[dict[str, Any]] = None,
    updated_at: Optional[int] = None,
) -> bool:
    """False when a thread with this id exists (in any tenant: ids are global)."""
    if conn.execute(select(threads.c.id).where(threads.c.id == thread_id)).first():
        return False
    conn.execute(
        insert(threads).values(
            id=thread_id,
            tenant_id=tenant_id,
            agent_id=agent_id,
            created_at=created_at,
            title=title,
            metadata_json=json.dumps(metadata or {}, ensure_ascii=False, separators=(",", ":")),
            updated_at=created_at if updated_at is None else updated_at,
        )
    )
    return True


def insert_message(conn: Connection, tenant_id: str, message: MessageRow) -> None:
    conn.execute(
        insert(messages).values(
            id=message.id,
            tenant_id=tenant_id,
            thread_id=message.thread_id,
            seq=message.seq,
            role=message.role,
            content=message.content,
            run_id=message.run_id,
            created_at=message.created_at,
            kind=message.kind,
        )
    )


def taken_ids(conn: Connection, kind: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` a `thread`, `message` or `run` already has, in any tenant (these ids are
    global keys). Import gives records whose id is taken an id of their own."""
    table = {"thread": threads, "message": messages, "run": runs}[kind]
    taken: set[str] = set()
    for start in range(0, len(ids), 500):
        batch = list(ids[start : start + 500])
        taken.update(conn.execute(select(table.c.id).where(table.c.id.in_(batch))).scalars())
    return taken


def run_exists(conn: Connection, run_id: str) -> bool:
    """Whether a run with this id exists (in any tenant: ids are global)."""
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None
