"""SQL for tenants and API keys. Keys are stored as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...ids import API_KEY, TENANT, new_id
from .schema import api_keys, tenants

KEY_PREFIX = "am_"


@dataclass(frozen=True)
class TenantRow:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class KeyRow:
    id: str
    tenant_id: str
    prefix: str
    created_at: int
    revoked_at: Optional[int]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def get_or_create_tenant(conn: Connection, name: str, now_us: int) -> tuple[TenantRow, bool]:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {"id": new_id(TENANT), "name": name, "created_at": now_us}
    stmt = (
        dialect.insert(tenants)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(tenants.c.id)
    )
    created = conn.execute(stmt).first() is not None
    return get_tenant_by_name(conn, name), created  # type: ignore[return-value]


def get_tenant_by_name(conn: Connection, name: str) -> Optional[TenantRow]:
    r = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    return TenantRow(r.id, r.name, r.created_at) if r else None


def list_tenants(conn: Connection) -> list[TenantRow]:
    return [
        TenantRow(r.id, r.name, r.created_at)
        for r in conn.execute(select(tenants).order_by(tenants.c.name))
    ]


def create_key(conn: Connection, tenant_id: str, now_us: int) -> tuple[KeyRow, str]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = KeyRow(
        id=new_id(API_KEY),
        tenant_id=tenant_id,
        prefix=secret[:10],
        created_at=now_us,
        revoked_at=None,
    )
    conn.execute(
        api_keys.insert().values(
            id=row.id,
            tenant_id=tenant_id,
            key_hash=hash_key(secret),
            prefix=row.prefix,
            created_at=now_us,
        )
    )
    return row, secret


def list_keys(conn: Connection, tenant_id: str) -> list[KeyRow]:
    rows = conn.execute(
        select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.created_at)
    )
    return [KeyRow(r.id, r.tenant_id, r.prefix, r.created_at, r.revoked_at) for r in rows]


def revoke_key(conn: Connection, key_id: str, now_us: int) -> bool:
    stmt = (
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now_us)
        .returning(api_keys.c.id)
    )
    if conn.execute(stmt).first() is not None:
        return True
    return conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first() is not None


def tenant_for_key(conn: Connection, secret: str) -> Optional[str]:
    r = conn.execute(
        select(api_keys.c.tenant_id).where(
            api_keys.c.key_hash == hash_key(secret), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return r.tenant_id if r else None
