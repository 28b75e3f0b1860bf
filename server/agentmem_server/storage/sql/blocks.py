"""SQL for memory blocks and archival lines. Every guarded write is one conditional statement.

Functions take a Connection so the caller decides the transaction (an archival append spans the
line reservation here and the vector write in LanceDB).

The statements of the hot paths (a core get and guarded update, an archival append, what a
recall reads) are built once, at import, with named parameters: SQLAlchemy then finds their
compiled form in its cache without building and hashing a new statement tree per call, which
cost about 170 us of CPU per statement (a core get went from 210 to 40 us on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Optional

from sqlalchemy import (
    BigInteger,
    Case,
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ...ids import BLOCK, new_id
from .schema import archival_lines, archival_writes, blocks
from .schema import archival_writes_quarantined as quarantined


@dataclass(frozen=True)
class BlockRow:
    id: str
    tenant_id: str
    block_type: str
    agent_key: str
    """The agent id, or '' for the user scope (column `agent_id`)."""
    content: str
    line_count: int
    created_at: int
    updated_at: int


def _next_updated_at(now_us: int) -> Case[int]:
    # Strictly increasing even when two writes land in the same microsecond (or the clock steps
    # back).
    return case(
        (literal(now_us) > blocks.c.updated_at, literal(now_us)), else_=blocks.c.updated_at + 1
    )


def _key(tenant_id: str, block_type: str, agent_key: str) -> ColumnElement[bool]:
    return and_(
        blocks.c.tenant_id == tenant_id,
        blocks.c.block_type == block_type,
        blocks.c.agent_id == agent_key,
    )


# ---- statements built once (see the module doc); parameters are named `p_*` ------------------
# (a bind parameter may not share a column's name in an UPDATE: SQLAlchemy keeps those names for
# the SET clause)

_P_NOW = bindparam("p_now", type_=BigInteger)
_KEY_PARAMS = and_(
    blocks.c.tenant_id == bindparam("p_tenant"),
    blocks.c.block_type == bindparam("p_type"),
    blocks.c.agent_id == bindparam("p_agent"),
)
_NEXT_UPDATED_AT = case((_P_NOW > blocks.c.updated_at, _P_NOW), else_=blocks.c.updated_at + 1)
"""`_next_updated_at` with its time as the parameter `p_now`."""

_GET_BLOCK = select(blocks).where(_KEY_PARAMS)
_GUARDED_UPDATE = (
    update(blocks)
    .where(_KEY_PARAMS, blocks.c.updated_at == bindparam("p_expected", type_=BigInteger))
    .values(
        content=bindparam("p_content"),
        line_count=bindparam("p_line_count"),
        updated_at=_NEXT_UPDATED_AT,
    )
    .returning(*blocks.c)
)
_INSERT_IF_MISSING = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(blocks)
    .on_conflict_do_nothing(index_elements=["tenant_id", "block_type", "agent_id"])
    .returning(blocks.c.id)
    for dialect in (postgresql, sqlite)
}
"""By dialect name; the row's values come as the execution's parameters."""
_COMMIT_APPEND = (
    update(blocks)
    .where(
        blocks.c.id == bindparam("p_block"),
        blocks.c.updated_at == bindparam("p_seen_at", type_=BigInteger),
        blocks.c.line_count == bindparam("p_count"),
    )
    .values(line_count=bindparam("p_line_count"), updated_at=_P_NOW)
    .returning(*blocks.c)
)
_INSERT_LINES = insert(archival_lines)
_BEGIN_WRITE = insert(archival_writes)
_END_WRITE = delete(archival_writes).where(archival_writes.c.write_id == bindparam("p_write"))
_ARCHIVAL_BLOCKS = select(blocks.c.id, blocks.c.agent_id, blocks.c.updated_at).where(
    blocks.c.tenant_id == bindparam("p_tenant"),
    blocks.c.block_type == "archival",
    blocks.c.agent_id.in_(bindparam("p_agents", expanding=True)),
)
_UNCOMMITTED_WRITES = union_all(
    select(archival_writes.c.write_id).where(archival_writes.c.tenant_id == bindparam("p_tenant")),
    select(quarantined.c.write_id).where(quarantined.c.tenant_id == bindparam("p_tenant")),
)


def _key_params(tenant_id: str, block_type: str, agent_key: str) -> dict[str, Any]:
    return {"p_tenant": tenant_id, "p_type": block_type, "p_agent": agent_key}


def _row(r: Row[Any]) -> BlockRow:
    return BlockRow(
        id=r.id,
        tenant_id=r.tenant_id,
        block_type=r.block_type,
        agent_key=r.agent_id,
        content=r.content,
        line_count=r.line_count,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def get_block(
    conn: Connection, tenant_id: str, block_type: str, agent_key: str
) -> Optional[BlockRow]:
    r = conn.execute(_GET_BLOCK, _key_params(tenant_id, block_type, agent_key)).first()
    return _row(r) if r else None


def list_blocks(conn: Connection, tenant_id: str, agent_keys: Sequence[str]) -> list[BlockRow]:
    rows = conn.execute(
        select(blocks)
        .where(blocks.c.tenant_id == tenant_id, blocks.c.agent_id.in_(list(agent_keys)))
        .order_by(blocks.c.agent_id, blocks.c.block_type)
    ).all()
    return [_row(r) for r in rows]


def archival_blocks(
    conn: Connection, tenant_id: str, agent_keys: Sequence[str]
) -> list[tuple[str, str, int]]:
    """`(block_id, agent_key, updated_at)` of the tenant's archival blocks in these scopes: what a
    recall searches (no content read)."""
    params = {"p_tenant": tenant_id, "p_agents": list(agent_keys)}
    rows = conn.execute(_ARCHIVAL_BLOCKS, params).all()
    return [(r.id, r.agent_id, int(r.updated_at)) for r in rows]


def list_tenant_blocks(conn: Connection, tenant_id: str) -> list[BlockRow]:
    """Every block of the tenant, in every scope (export)."""
    rows = conn.execute(
        select(blocks)
        .where(blocks.c.tenant_id == tenant_id)
        .order_by(blocks.c.agent_id, blocks.c.block_type)
    ).all()
    return [_row(r) for r in rows]


def insert_block_if_missing(
    conn: Connection,
    tenant_id: str,
    block_type: str,
    agent_key: str,
    content: str,
    line_count: int,
    now_us: int,
    *,
    block_id: Optional[str] = None,
) -> Optional[BlockRow]:
    """Create the block (with `block_id`, or a new id); None when it already exists (the caller
    then decides: conflict or retry)."""
    row = BlockRow(
        id=block_id or new_id(BLOCK),
        tenant_id=tenant_id,
        block_type=block_type,
        agent_key=agent_key,
        content=content,
        line_count=line_count,
        created_at=now_us,
        updated_at=now_us,
    )
    values = {**asdict(row), "agent_id": row.agent_key}
    del values["agent_key"]
    stmt = _INSERT_IF_MISSING["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    # RETURNING rather than rowcount: psycopg reports rowcount -1 for this statement.
    if conn.execute(stmt, values).first() is None:
        return None
    return row


def guarded_update(
    conn: Connection,
    tenant_id: str,
    block_type: str,
    agent_key: str,
    *,
    expected_updated_at: int,
    content: str,
    line_count: int,
    now_us: int,
) -> Optional[BlockRow]:
    """Compare-and-set on `updated_at`; None when the stored value differs (or the block is
    gone)."""
    params = {
        **_key_params(tenant_id, block_type, agent_key),
        "p_expected": expected_updated_at,
        "p_content": content,
        "p_line_count": line_count,
        "p_now": now_us,
    }
    r = conn.execute(_GUARDED_UPDATE, params).first()
    return _row(r) if r else None


def append_core_text(
    conn: Connection,
    tenant_id: str,
    block_type: str,
    agent_key: str,
    *,
    text: str,
    added_lines: int,
    limit_chars: int,
    now_us: int,
) -> Optional[BlockRow]:
    """Append as new line(s) in one statement; None when the block is missing or would pass the
    limit."""
    joined = case(
        (blocks.c.content == "", literal(text)), else_=blocks.c.content + "\n" + literal(text)
    )
    new_len = case(
        (blocks.c.content == "", len(text)), else_=func.length(blocks.c.content) + 1 + len(text)
    )
    stmt = (
        update(blocks)
        .where(_key(tenant_id, block_type, agent_key), new_len <= limit_chars)
        .values(
            content=joined,
            line_count=case(
                (blocks.c.content == "", added_lines), else_=blocks.c.line_count + added_lines
            ),
            updated_at=_next_updated_at(now_us),
        )
        .returning(*blocks.c)
    )
    r = conn.execute(stmt).first()
    return _row(r) if r else None


def reserve_archival_lines(conn: Connection, block_id: str, count: int, now_us: int) -> BlockRow:
    """Bump line_count by `count`; the row lock makes concurrent appends take disjoint ranges."""
    stmt = (
        update(blocks)
        .where(blocks.c.id == block_id)
        .values(line_count=blocks.c.line_count + count, updated_at=_next_updated_at(now_us))
        .returning(*blocks.c)
    )
    return _row(conn.execute(stmt).one())


def commit_append(
    conn: Connection,
    tenant_id: str,
    agent_key: str,
    block_id: str,
    *,
    seen_at: Optional[int],
    count: int,
    lines: Sequence[str],
    now_us: int,
    write_id: str,
) -> Optional[BlockRow]:
    """An archival append's SQL side, in the caller's transaction: if the block is as it was read
    (`seen_at` its updated_at, None: it did not exist; `count` lines), store `lines` after them
    with `updated_at = now_us`, and end the in-flight write. None (nothing done) otherwise."""
    if seen_at is None:
        row = insert_block_if_missing(
            conn, tenant_id, "archival", agent_key, "", len(lines), now_us, block_id=block_id
        )
    else:
        params = {
            "p_block": block_id,
            "p_seen_at": seen_at,
            "p_count": count,
            "p_line_count": count + len(lines),
            "p_now": now_us,
        }
        r = conn.execute(_COMMIT_APPEND, params).first()
        row = _row(r) if r else None
    if row is None:
        return None
    insert_lines(conn, block_id, count + 1, lines, now_us)
    end_archival_write(conn, write_id)
    return row


def insert_lines(
    conn: Connection, block_id: str, first_line: int, lines: Sequence[str], written_at: int
) -> None:
    if not lines:
        return
    conn.execute(
        _INSERT_LINES,
        [
            {
                "block_id": block_id,
                "line_no": first_line + i,
                "text": line,
                "written_at": written_at,
            }
            for i, line in enumerate(lines)
        ],
    )


def replace_lines(conn: Connection, block_id: str, lines: Sequence[str], written_at: int) -> None:
    conn.execute(delete(archival_lines).where(archival_lines.c.block_id == block_id))
    insert_lines(conn, block_id, 1, lines, written_at)


def read_lines(conn: Connection, block_id: str, start: int, end: Optional[int]) -> list[str]:
    stmt = select(archival_lines.c.text).where(
        archival_lines.c.block_id == block_id, archival_lines.c.line_no >= start
    )
    if end is not None:
        stmt = stmt.where(archival_lines.c.line_no <= end)
    return list(conn.execute(stmt.order_by(archival_lines.c.line_no)).scalars())


def delete_block(
    conn: Connection, tenant_id: str, block_type: str, agent_key: str
) -> Optional[str]:
    """Delete the block and its lines; returns the deleted id (None if there was none)."""
    r = conn.execute(
        delete(blocks).where(_key(tenant_id, block_type, agent_key)).returning(blocks.c.id)
    ).first()
    if r is None:
        return None
    # Explicit rather than relying on ON DELETE CASCADE, which SQLite only honours per connection.
    deleted: str = r.id
    conn.execute(delete(archival_lines).where(archival_lines.c.block_id == deleted))
    return deleted


def iter_append_batches(
    conn: Connection, block_id: str, page: int = 5000
) -> Iterator[tuple[int, list[str]]]:
    """Yield the block's lines as the append batches that wrote them (lines sharing `written_at`).

    Export keeps these batches so an import re-chunks the text exactly as the original was chunked.
    """
    batch: list[str] = []
    batch_at = 0
    after = 0
    while True:
        rows = conn.execute(
            select(archival_lines.c.line_no, archival_lines.c.text, archival_lines.c.written_at)
            .where(archival_lines.c.block_id == block_id, archival_lines.c.line_no > after)
            .order_by(archival_lines.c.line_no)
            .limit(page)
        ).all()
        if not rows:
            break
        for r in rows:
            if batch and r.written_at != batch_at:
                yield batch_at, batch
                batch = []
            batch_at = r.written_at
            batch.append(r.text)
        after = rows[-1].line_no
    if batch:
        yield batch_at, batch


# ---- archival writes in flight (see schema.archival_writes) ---------------------------------


def begin_archival_write(
    conn: Connection,
    write_id: str,
    tenant_id: str,
    agent_key: str,
    kind: str,
    now_us: int,
    owner: Optional[str] = None,
) -> None:
    values = {
        "write_id": write_id,
        "tenant_id": tenant_id,
        "agent_id": agent_key,
        "kind": kind,
        "started_at": now_us,
        "owner": owner,
    }
    conn.execute(_BEGIN_WRITE, values)


def end_archival_write(conn: Connection, write_id: str) -> None:
    conn.execute(_END_WRITE, {"p_write": write_id})


def scopes_with_writes_in_flight(conn: Connection) -> set[tuple[str, str]]:
    """`(tenant_id, agent_key)` of every scope an archival write is in flight in."""
    stmt = select(archival_writes.c.tenant_id, archival_writes.c.agent_id).distinct()
    return {(r.tenant_id, r.agent_id) for r in conn.execute(stmt)}


def existing_blocks(conn: Connection, block_ids: Sequence[str]) -> set[str]:
    """Which of these block ids SQL holds."""
    found: set[str] = set()
    for start in range(0, len(block_ids), 500):
        batch = list(block_ids[start : start + 500])
        found.update(conn.execute(select(blocks.c.id).where(blocks.c.id.in_(batch))).scalars())
    return found


def archival_write_in_flight(conn: Connection, write_id: str) -> bool:
    stmt = select(archival_writes.c.write_id).where(archival_writes.c.write_id == write_id)
    return conn.execute(stmt).first() is not None


def end_archival_writes(conn: Connection, write_ids: Sequence[str]) -> None:
    for start in range(0, len(write_ids), 500):
        batch = list(write_ids[start : start + 500])
        conn.execute(delete(archival_writes).where(archival_writes.c.write_id.in_(batch)))


def set_archival_size(conn: Connection, block_id: str, line_count: int, updated_at: int) -> None:
    """Import: the block holds `line_count` lines, last written at `updated_at`."""
    conn.execute(
        update(blocks)
        .where(blocks.c.id == block_id)
        .values(line_count=line_count, updated_at=updated_at)
    )


@dataclass(frozen=True)
class ArchivalWriteRow:
    write_id: str
    tenant_id: str
    agent_key: str
    kind: str
    """How to repair it: "append" or "resync" (see `MemoryService._archival_transaction`)."""
    started_at: int
    owner: Optional[str] = None


def _write_row(r: Row[Any]) -> ArchivalWriteRow:
    return ArchivalWriteRow(r.write_id, r.tenant_id, r.agent_id, r.kind, r.started_at, r.owner)


def interrupted_archival_writes(conn: Connection, started_before_us: int) -> list[ArchivalWriteRow]:
    """Writes recorded before the given time that never ended, oldest first."""
    stmt = select(archival_writes).where(archival_writes.c.started_at < started_before_us)
    return [_write_row(r) for r in conn.execute(stmt.order_by(archival_writes.c.started_at))]


def archival_writes_in_flight(conn: Connection) -> list[ArchivalWriteRow]:
    """Every write that has not ended (running, or left by a process that died), oldest first."""
    stmt = select(archival_writes).order_by(archival_writes.c.started_at)
    return [_write_row(r) for r in conn.execute(stmt)]


def uncommitted_writes(conn: Connection, tenant_id: str) -> set[str]:
    """Ids of the tenant's archival writes that have not committed: in flight or quarantined.
    Recall hides their rows (they may still be in the index)."""
    return set(conn.execute(_UNCOMMITTED_WRITES, {"p_tenant": tenant_id}).scalars())


def recall_targets(
    conn: Connection, tenant_id: str, agent_keys: Sequence[str]
) -> tuple[list[tuple[str, str, int]], set[str]]:
    """What a recall needs of SQL, in one call: `archival_blocks` and `uncommitted_writes`."""
    return archival_blocks(conn, tenant_id, agent_keys), uncommitted_writes(conn, tenant_id)


def quarantine_archival_write(
    conn: Connection, write: ArchivalWriteRow, error: str, now_us: int
) -> None:
    """Move a write whose repair failed out of the repair pass (it stays hidden from recall)."""
    conn.execute(delete(archival_writes).where(archival_writes.c.write_id == write.write_id))
    conn.execute(
        insert(quarantined).values(
            write_id=write.write_id,
            tenant_id=write.tenant_id,
            agent_id=write.agent_key,
            kind=write.kind,
            started_at=write.started_at,
            quarantined_at=now_us,
            error=error[:4000],
        )
    )


def quarantined_writes(conn: Connection) -> list[ArchivalWriteRow]:
    stmt = select(quarantined).order_by(quarantined.c.quarantined_at)
    return [
        ArchivalWriteRow(r.write_id, r.tenant_id, r.agent_id, r.kind, r.started_at)
        for r in conn.execute(stmt)
    ]
