"""Export a tenant's memory as JSON Lines, and import such a file into another server.

One record per line, each with a `type`: `header`, `agent`, `block` (core text, or the start of
an archival block), `archival_lines` (one original append batch), `thread`, `message`, `run`.
Archival text travels as lines; the importing server re-embeds it with its own model. Batches are
kept as they were appended so the import chunks, and therefore recalls, exactly like the source.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput
from ..storage.base import agent_key_of, from_micros, now_micros
from ..storage.sql import blocks as blocks_sql
from ..storage.sql import conversations as conversations_sql
from ..storage.sql.store import SqlStore
from .memory import MemoryService, count_lines

FORMAT = "agentmem-export"
VERSION = 1
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
            {"type": "thread", "id": t.id, "agent_id": t.agent_id, "created_at": t.created_at}
        )
        for m in conversations_sql.iter_message_rows(conn, t.id):
            yield _line(
                {
                    "type": "message",
                    "id": m.id,
                    "thread_id": m.thread_id,
                    "seq": m.seq,
                    "role": m.role,
                    "content": m.content,
                    "run_id": m.run_id,
                    "created_at": m.created_at,
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


class Importer:
    """Applies export records in order. Meant for a tenant that does not have these items yet:
    an existing agent, block, thread or run stops the import with 409 (what came before stays)."""

    def __init__(self, sql: SqlStore, memory: MemoryService, tenant_id: str):
        self._sql = sql
        self._memory = memory
        self._tenant_id = tenant_id
        self.counts: dict[str, int] = {}
        self._seen_header = False

    async def apply(self, lines: AsyncIterator[bytes]) -> dict[str, int]:
        number = 0
        async for raw in lines:
            number += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                raise InvalidInput(
                    f"line {number} is not JSON: {reason}", field=f"line {number}"
                ) from exc
            if not isinstance(record, dict):
                raise InvalidInput(
                    f"line {number} is not a JSON object (a record)", field=f"line {number}"
                )
            await self._apply_one(record, number)
        if not self._seen_header:
            raise InvalidInput(
                "empty import: expected an agentmem export (first line a header record)",
                field="line 1",
            )
        return self.counts

    async def _apply_one(self, record: dict[str, Any], number: int) -> None:
        kind = record.get("type")
        if not self._seen_header:
            if kind != "header" or record.get("format") != FORMAT:
                raise InvalidInput(
                    "the first line must be an agentmem export header", field="line 1"
                )
            if record.get("version") != VERSION:
                raise InvalidInput(
                    f"export version {record.get('version')} is not supported (expected {VERSION})",
                    field="line 1",
                )
            self._seen_header = True
            return
        handler = getattr(self, f"_import_{kind}", None)
        if handler is None:
            raise InvalidInput(
                f"line {number}: unknown record type {kind!r}", field=f"line {number}"
            )
        try:
            await handler(record)
        except KeyError as exc:
            raise InvalidInput(
                f"line {number}: {kind} record lacks {exc.args[0]!r}", field=f"line {number}"
            ) from exc
        self.counts[str(kind)] = self.counts.get(str(kind), 0) + 1

    async def _import_agent(self, r: dict[str, Any]) -> None:
        agent = await self._sql.run_in_transaction(
            conversations_sql.insert_agent,
            self._tenant_id,
            r["id"],
            instructions=r.get("instructions", ""),
            model=r.get("model"),
            metadata=r.get("metadata") or {},
            now_us=now_micros(),
        )
        if agent is None:
            raise Conflict(f"agent {r['id']!r} already exists here", field="agent")

    async def _import_block(self, r: dict[str, Any]) -> None:
        block_type, agent_id = r["block_type"], r.get("agent_id")
        content = r["content"] if block_type == "core" else ""
        row = await self._sql.run_in_transaction(
            blocks_sql.insert_block_if_missing,
            self._tenant_id,
            block_type,
            agent_key_of(agent_id),
            content,
            count_lines(content),
            now_micros(),
        )
        if row is None:
            where = f"agent {agent_id!r}" if agent_id else "user scope"
            raise Conflict(f"a {block_type} block already exists here for {where}", field="block")

    async def _import_archival_lines(self, r: dict[str, Any]) -> None:
        lines = r["lines"]
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise InvalidInput("archival_lines.lines must be a list of strings", field="lines")
        if lines:
            await self._memory.append_archival_lines(self._tenant_id, lines, r.get("agent_id"))

    async def _import_thread(self, r: dict[str, Any]) -> None:
        created = await self._sql.run_in_transaction(
            conversations_sql.insert_thread_if_missing,
            thread_id=r["id"],
            tenant_id=self._tenant_id,
            agent_id=r["agent_id"],
            created_at=r["created_at"],
        )
        if not created:
            raise Conflict(f"thread {r['id']!r} already exists here", field="thread")

    async def _import_message(self, r: dict[str, Any]) -> None:
        message = conversations_sql.MessageRow(
            id=r["id"],
            thread_id=r["thread_id"],
            seq=r["seq"],
            role=r["role"],
            content=r["content"],
            run_id=r.get("run_id"),
            created_at=r["created_at"],
        )
        await self._sql.run_in_transaction(
            conversations_sql.insert_message, self._tenant_id, message
        )

    async def _import_run(self, r: dict[str, Any]) -> None:
        def write(conn: Connection) -> bool:
            if conversations_sql.run_exists(conn, r["id"]):
                return False
            conversations_sql.insert_run(
                conn,
                tenant_id=self._tenant_id,
                agent_id=r["agent_id"],
                thread_id=r["thread_id"],
                run_id=r["id"],
                created_us=r["created_at"],
                replay_of=r.get("replay_of"),
                record=r["record"],
            )
            return True

        if not await self._sql.run_in_transaction(write):
            raise Conflict(f"run {r['id']!r} already exists here", field="run")


async def import_records(
    sql: SqlStore, memory: MemoryService, tenant_id: str, lines: AsyncIterator[bytes]
) -> dict[str, int]:
    return await Importer(sql, memory, tenant_id).apply(lines)
