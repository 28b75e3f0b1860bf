"""Export a tenant's memory as JSON Lines, and import such a file into another server.

One record per line, each with a `type`: `header`, `agent`, `block` (core text, or the start of
an archival block), `archival_lines` (one original append batch), `thread` (agent or none, title,
metadata, times), `message` (every role and kind, compaction summaries included), `run`,
`state` (a keyed-state entry with its times and expiry; expired entries are not exported).
Archival text travels as lines; the importing server re-embeds it with its own model. Batches are
kept as they were appended so the import chunks, and therefore recalls, exactly like the source.
The import (strict, tenant-safe, all-or-nothing) is services/importer.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sqlalchemy import Connection

from ..storage.base import from_micros, now_micros
from ..storage.sql import blocks as blocks_sql
from ..storage.sql import conversations as conversations_sql
from ..storage.sql import state as state_sql
from ..storage.sql.store import SqlStore
from .importer import FORMAT, VERSION, import_records

__all__ = ["export_records", "import_records"]
EXPORT_BATCH_LINES = 512
"""Lines read per step of an export: one thread hop per batch, not per record."""


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


async def export_records(sql: SqlStore, tenant_id: str) -> AsyncIterator[bytes]:
    """NDJSON for everything the tenant owns, read in one transaction (one consistent snapshot)."""
    async with sql.transaction() as tx:
        lines = _export_lines(tx.conn, tenant_id)
        while batch := await tx.run(_take, lines, EXPORT_BATCH_LINES):
            yield b"".join(batch)


def _take(conn: Connection, lines: Iterator[bytes], n: int) -> list[bytes]:
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) == n:
            break
    return batch


def _export_lines(conn: Connection, tenant_id: str) -> Iterator[bytes]:
    yield _line(
        {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "exported_at": from_micros(now_micros()).isoformat(),
        }
    )
    for agent in conversations_sql.list_agents(conn, tenant_id):
        yield _line(
            {"type": "agent", **agent.model_dump(mode="json", exclude={"created_at", "updated_at"})}
        )
    yield from _export_blocks(conn, tenant_id)
    for t in conversations_sql.list_threads(conn, tenant_id):
        yield _line(
            {
                "type": "thread",
                "id": t.id,
                "agent_id": t.agent_id or None,  # None: no run has bound it yet
                "title": t.title,
                "metadata": t.metadata,
                "created_at": t.created_at,
                "updated_at": t.updated_at,
            }
        )
        for m in conversations_sql.iter_message_rows(conn, t.id):
            yield _line(
                {
                    "type": "message",
                    "id": m.id,
                    "thread_id": m.thread_id,
                    "seq": m.seq,
                    "role": m.role,
                    "kind": m.kind,
                    "content": m.content,
                    "run_id": m.run_id,
                    "created_at": m.created_at,
                }
            )
    for e in state_sql.iter_tenant_entries(conn, tenant_id, now_micros()):
        yield _line(
            {
                "type": "state",
                "namespace": e.namespace.split("/") if e.namespace else [],
                "key": e.key,
                "value": e.value,
                "created_at": e.created_at,
                "updated_at": e.updated_at,
                "expires_at": e.expires_at,
            }
        )
    for r in conversations_sql.iter_runs(conn, tenant_id):
        yield _line(
            {
                "type": "run",
                "id": r.id,
                "agent_id": r.agent_id,
                "thread_id": r.thread_id,
                "created_at": r.created_at,
                "replay_of": r.replay_of,
                "record": r.record,
            }
        )


def _export_blocks(conn: Connection, tenant_id: str) -> Iterator[bytes]:
    for b in blocks_sql.list_tenant_blocks(conn, tenant_id):
        agent_id = b.agent_key or None
        record = {"type": "block", "block_type": b.block_type, "agent_id": agent_id}
        if b.block_type == "core":
            yield _line(record | {"content": b.content})
            continue
        yield _line(record | {"line_count": b.line_count})
        for _, batch in blocks_sql.iter_append_batches(conn, b.id):
            yield _line({"type": "archival_lines", "agent_id": agent_id, "lines": batch})
