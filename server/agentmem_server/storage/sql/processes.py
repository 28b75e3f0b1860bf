"""SQL for `server_processes`: which server processes run, so a write's owner can be judged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Connection, delete, insert, select, update

from .schema import server_processes


@dataclass(frozen=True)
class ProcessRow:
    id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int


def register(conn: Connection, process: ProcessRow) -> None:
    conn.execute(
        insert(server_processes).values(
            id=process.id,
            host=process.host,
            pid=process.pid,
            started_at=process.started_at,
            heartbeat_at=process.heartbeat_at,
        )
    )


def heartbeat(conn: Connection, process_id: str, now_us: int) -> None:
    conn.execute(
        update(server_processes)
        .where(server_processes.c.id == process_id)
        .values(heartbeat_at=now_us)
    )


def unregister(conn: Connection, process_id: str) -> None:
    conn.execute(delete(server_processes).where(server_processes.c.id == process_id))


def get_processes(conn: Connection, ids: list[str]) -> dict[str, ProcessRow]:
    if not ids:
        return {}
    rows = conn.execute(select(server_processes).where(server_processes.c.id.in_(ids)))
    return {r.id: ProcessRow(r.id, r.host, r.pid, r.started_at, r.heartbeat_at) for r in rows}


def forget_stale(conn: Connection, heartbeat_before_us: int) -> Optional[int]:
    """Remove processes silent since before the given time (they died without unregistering)."""
    return conn.execute(
        delete(server_processes).where(server_processes.c.heartbeat_at < heartbeat_before_us)
    ).rowcount
