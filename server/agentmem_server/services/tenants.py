"""Tenants and API keys: creation, listing, revocation, and authenticating a request's key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentmem.types import ApiKey, ApiKeyCreated, Tenant

from ..errors import NotFound, Unauthorized
from ..storage.base import from_micros, now_micros
from ..storage.sql import tenants as sql
from ..storage.sql.store import SqlStore

DEFAULT_TENANT = "default"
DEFAULT_KEY_FILE = "default_api_key"


def _tenant(row: sql.TenantRow) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=from_micros(row.created_at))


def _key(row: sql.KeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        prefix=row.prefix,
        created_at=from_micros(row.created_at),
        revoked_at=from_micros(row.revoked_at) if row.revoked_at else None,
    )


class TenantService:
    def __init__(self, store: SqlStore):
        self._store = store

    async def authenticate(self, secret: str) -> str:
        """The tenant id owning an active key; revocation takes effect on the next request."""
        tenant_id = await asyncio.to_thread(self._tenant_for_key, secret)
        if tenant_id is None:
            raise Unauthorized("invalid or revoked API key")
        return tenant_id

    def _tenant_for_key(self, secret: str):
        with self._store.single_statements() as conn:
            return sql.tenant_for_key(conn, secret)

    def create_tenant_sync(self, name: str) -> Tenant:
        with self._store.begin() as conn:
            row, _ = sql.get_or_create_tenant(conn, name, now_micros())
        return _tenant(row)

    def create_key_sync(self, tenant_name: str) -> ApiKeyCreated:
        """Create a key for the tenant, creating the tenant if it is new."""
        with self._store.begin() as conn:
            tenant, _ = sql.get_or_create_tenant(conn, tenant_name, now_micros())
            row, secret = sql.create_key(conn, tenant.id, now_micros())
        return ApiKeyCreated(**_key(row).model_dump(), key=secret)

    def list_tenants_sync(self) -> list[Tenant]:
        with self._store.begin() as conn:
            return [_tenant(r) for r in sql.list_tenants(conn)]

    def list_keys_sync(self, tenant_name: str) -> list[ApiKey]:
        with self._store.begin() as conn:
            tenant = sql.get_tenant_by_name(conn, tenant_name)
            if tenant is None:
                raise NotFound(f"tenant {tenant_name!r} not found")
            return [_key(r) for r in sql.list_keys(conn, tenant.id)]

    def revoke_key_sync(self, key_id: str) -> None:
        with self._store.begin() as conn:
            if not sql.revoke_key(conn, key_id, now_micros()):
                raise NotFound(f"API key {key_id!r} not found")

    def ensure_default_key(self, data_dir: Path) -> str:
        """The `default` tenant's key for `make run`, kept in DATA_DIR so restarts print the same one.

        Only the hash is in the database, so the plain key has to live in a file (mode 600) to be
        shown again; a key that was revoked or belongs to another database is replaced.
        """
        path = data_dir / DEFAULT_KEY_FILE
        if path.exists():
            secret = path.read_text().strip()
            with self._store.begin() as conn:
                if sql.tenant_for_key(conn, secret) is not None:
                    return secret
        created = self.create_key_sync(DEFAULT_TENANT)
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(created.key + "\n")
        path.chmod(0o600)
        return created.key

    # Async wrappers for the routes.
    async def create_tenant(self, name: str) -> Tenant:
        return await asyncio.to_thread(self.create_tenant_sync, name)

    async def create_key(self, tenant_name: str) -> ApiKeyCreated:
        return await asyncio.to_thread(self.create_key_sync, tenant_name)

    async def list_tenants(self) -> list[Tenant]:
        return await asyncio.to_thread(self.list_tenants_sync)

    async def list_keys(self, tenant_name: str) -> list[ApiKey]:
        return await asyncio.to_thread(self.list_keys_sync, tenant_name)

    async def revoke_key(self, key_id: str) -> None:
        await asyncio.to_thread(self.revoke_key_sync, key_id)
