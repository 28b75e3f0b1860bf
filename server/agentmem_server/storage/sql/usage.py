"""What a tenant holds, counted for its quotas (services/limits.py). Each is one indexed query
over block or agent rows (never over archival lines: a block row keeps its `line_count`), or a
read of the tenant's keyed-state counts."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from .schema import agents as agents_table
from .schema import blocks, state_tenants


def archival_lines(conn: Connection, tenant_id: str) -> int:
    stmt = select(func.coalesce(func.sum(blocks.c.line_count), 0)).where(
        blocks.c.tenant_id == tenant_id, blocks.c.block_type == "archival"
    )
    return int(conn.execute(stmt).scalar_one())


def core_blocks(conn: Connection, tenant_id: str) -> int:
    stmt = select(func.count()).where(
        blocks.c.tenant_id == tenant_id, blocks.c.block_type == "core"
    )
    return int(conn.execute(stmt).scalar_one())


def agents(conn: Connection, tenant_id: str) -> int:
    stmt = select(func.count()).where(agents_table.c.tenant_id == tenant_id)
    return int(conn.execute(stmt).scalar_one())


def state_entries(conn: Connection, tenant_id: str) -> int:
    stmt = select(state_tenants.c.entries).where(state_tenants.c.tenant_id == tenant_id)
    return int(conn.execute(stmt).scalar() or 0)


def state_bytes(conn: Connection, tenant_id: str) -> int:
    stmt = select(state_tenants.c.bytes).where(state_tenants.c.tenant_id == tenant_id)
    return int(conn.execute(stmt).scalar() or 0)
