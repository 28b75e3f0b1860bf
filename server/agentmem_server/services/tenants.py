"""Tenants and API keys: creation, listing, revocation, and authenticating a request's key.

Each operation is one SQL function of a connection below, run in one transaction: through the
store's unit of work for the routes (async), or on the caller's thread for the CLI (`*_sync`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from sqlalchemy import Connection

from agentmem.types import ApiKey, ApiKeyCreated, Tenant

from ..errors import NotFound, Unauthorized
from ..storage.base import from_micros, now_micros
from ..storage.sql import tenants as tenants_sql
from ..storage.sql.store import SqlStore

DEFAULT_TENANT = "default"
DEFAULT_KEY_FILE = "default_api_key"


def unknown_key() -> Unauthorized:
    """The 401 for a key no tenant owns: says what to check, since the usual cause is a key made
    for another database."""
    return Unauthorized(
        "invalid or revoked API key: check that AGENTMEM_API_KEY holds a key made for the "
        "database this server uses (`agentmem keys list --tenant NAME`, run with the "
        "server's AGENTMEM_DATA_DIR or AGENTMEM_DATABASE_URL, lists them) and not revoked"
    )


def _tenant(row: tenants_sql.TenantRow) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=from_micros(row.created_at))


def _key(row: tenants_sql.KeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        prefix=row.prefix,
        created_at=from_micros(row.created_at),
        revoked_at=from_micros(row.revoked_at) if row.revoked_at else None,
    )


def _create_tenant(conn: Connection, name: str) -> Tenant:
    row, _ = tenants_sql.get_or_create_tenant(conn, name, now_micros())
    return _tenant(row)


def _create_key(conn: Connection, tenant_name: str) -> ApiKeyCreated:
    tenant, _ = tenants_sql.get_or_create_tenant(conn, tenant_name, now_micros())
    row, secret = tenants_sql.create_key(conn, tenant.id, now_micros())
    return ApiKeyCreated(**_key(row).model_dump(), key=secret)


def _list_tenants(conn: Connection) -> list[Tenant]:
    return [_tenant(r) for r in tenants_sql.list_tenants(conn)]


def _list_keys(conn: Connection, tenant_name: str) -> list[ApiKey]:
    tenant = tenants_sql.get_tenant_by_name(conn, tenant_name)
    if tenant is None:
        raise NotFound(f"tenant {tenant_name!r} not found")
    return [_key(r) for r in tenants_sql.list_keys(conn, tenant.id)]


def _revoke_key(conn: Connection, key_id: str) -> None:
    if not tenants_sql.revoke_key(conn, key_id, now_micros()):
        raise NotFound(f"API key {key_id!r} not found")


KEY_CACHE_ENTRIES = 10_000
"""Keys whose tenant is remembered at once (the oldest checked is forgotten first)."""


class TenantService:
    """`key_cache_s`: how long a key found active is trusted without asking SQL again. A key
    revoked through this service stops working at once; one revoked by another process (a
    replica, `agentmem keys revoke`) within `key_cache_s`. 0 asks SQL on every request."""

    def __init__(
        self,
        sql: SqlStore,
        *,
        key_cache_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._sql = sql
        self._key_cache_s = key_cache_s
        self._clock = clock
        self._keys: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """sha256 of a key -> (its tenant id, when SQL said so). Digests, not keys: a memory dump
        shows no usable key."""
        self._revocations = 0
        """Counts revocations here: a lookup that a revocation overtook is not remembered."""

    async def authenticate(self, secret: str) -> str:
        """The tenant id owning an active key; a revocation through this service takes effect
        on the next request (through another process: within `key_cache_s`)."""
        tenant_id = await self.tenant_for_key(secret)
        if tenant_id is None:
            raise unknown_key()
        return tenant_id

    async def tenant_for_key(self, secret: str) -> Optional[str]:
        """The tenant id owning an active key, or `None`."""
        if self._key_cache_s <= 0:
            return await self._sql.run_autocommit(tenants_sql.tenant_for_key, secret)
        digest = tenants_sql.hash_key(secret)
        known = self._keys.get(digest)
        if known is not None and self._clock() - known[1] < self._key_cache_s:
            return known[0]
        revocations, asked_at = self._revocations, self._clock()
        tenant_id = await self._sql.run_autocommit(tenants_sql.tenant_for_key, secret)
        self._keys.pop(digest, None)
        # Unknown keys are never remembered (a guess must not fill the cache), nor an answer
        # read before a revocation here committed: it may be the revoked key's.
        if tenant_id is not None and revocations == self._revocations:
            self._keys[digest] = (tenant_id, asked_at)
            while len(self._keys) > KEY_CACHE_ENTRIES:
                self._keys.popitem(last=False)
        return tenant_id

    async def create_tenant(self, name: str) -> Tenant:
        return await self._sql.run_in_transaction(_create_tenant, name)

    async def create_key(self, tenant_name: str) -> ApiKeyCreated:
        """Create a key for the tenant, creating the tenant if it is new."""
        return await self._sql.run_in_transaction(_create_key, tenant_name)

    async def list_tenants(self) -> list[Tenant]:
        return await self._sql.run_in_transaction(_list_tenants)

    async def list_keys(self, tenant_name: str) -> list[ApiKey]:
        return await self._sql.run_in_transaction(_list_keys, tenant_name)

    async def revoke_key(self, key_id: str) -> None:
        # Forget every key before and after: a lookup running meanwhile may read the key as
        # active, and the counter keeps it from being remembered.
        self._forget_keys()
        try:
            await self._sql.run_in_transaction(_revoke_key, key_id)
        finally:
            self._forget_keys()

    def _forget_keys(self) -> None:
        self._revocations += 1
        self._keys.clear()

    async def tenant_id(self, tenant_name: str) -> str:
        """The id of the tenant named so; 404 if there is none."""
        tenant = await self._sql.run_autocommit(tenants_sql.get_tenant_by_name, tenant_name)
        if tenant is None:
            raise NotFound(f"tenant {tenant_name!r} not found")
        return tenant.id

    # ---- the same for the CLI, on the calling thread -----------------------------------------

    def create_key_sync(self, tenant_name: str) -> ApiKeyCreated:
        with self._sql.begin() as conn:
            return _create_key(conn, tenant_name)

    def list_keys_sync(self, tenant_name: str) -> list[ApiKey]:
        with self._sql.begin() as conn:
            return _list_keys(conn, tenant_name)

    def revoke_key_sync(self, key_id: str) -> None:
        with self._sql.begin() as conn:
            _revoke_key(conn, key_id)

    def ensure_default_key(self, data_dir: Path) -> str:
        """The `default` tenant's key for `make run`, kept in DATA_DIR so restarts print the same
        one.

        Only the hash is in the database, so the plain key has to live in a file (mode 600) to be
        shown again; a key that was revoked or belongs to another database is replaced.
        """
        path = data_dir / DEFAULT_KEY_FILE
        if path.exists():
            secret = path.read_text().strip()
            with self._sql.begin() as conn:
                if tenants_sql.tenant_for_key(conn, secret) is not None:
                    return secret
        created = self.create_key_sync(DEFAULT_TENANT)
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(created.key + "\n")
        path.chmod(0o600)
        return created.key
