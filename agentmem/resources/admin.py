"""Tenants and API keys. These calls need a client built with the server's admin key."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional, Union

from .._base_client import APIRequest, Timeout, path_segment
from ..types import ApiKey, ApiKeyCreated, Tenant, TenantCreateRequest
from ..types.state import StateTenantSettings, StateTenantSettingsUpdate
from . import _validation as check
from ._resource import AsyncAPIResource, SyncAPIResource, request_body

__all__ = ["Admin", "AsyncAdmin"]


class Admin(SyncAPIResource):
    """Usage: `Client(api_key=ADMIN_KEY).admin.create_key("acme").key`."""

    def create_tenant(
        self, name: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> Tenant:
        return self._client._request(_create_tenant(name, idempotency_key), timeout=timeout)

    def list_tenants(self, *, timeout: Timeout = None) -> list[Tenant]:
        return self._client._request(_LIST_TENANTS, timeout=timeout)

    def create_key(
        self, tenant_name: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> ApiKeyCreated:
        """A new key for the tenant (created if new); its secret `key` is shown only now."""
        return self._client._request(_create_key(tenant_name, idempotency_key), timeout=timeout)

    def list_keys(self, tenant_name: str, *, timeout: Timeout = None) -> list[ApiKey]:
        return self._client._request(_list_keys(tenant_name), timeout=timeout)

    def revoke_key(
        self, key_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        self._client._request(_revoke_key(key_id, idempotency_key), timeout=timeout)

    def get_state_settings(
        self, tenant_name: str, *, timeout: Timeout = None
    ) -> StateTenantSettings:
        """The tenant's keyed-state default TTL, and how many entries and bytes it holds."""
        return self._client._request(_get_state_settings(tenant_name), timeout=timeout)

    def update_state_settings(
        self,
        tenant_name: str,
        *,
        default_ttl: Union[float, timedelta, None],
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateTenantSettings:
        """Entries the tenant sets from now on without a `ttl` expire after `default_ttl`
        (seconds or timedelta; `None`: never). Usage: `admin.update_state_settings("acme",
        default_ttl=timedelta(hours=24))`."""
        request = _update_state_settings(tenant_name, default_ttl, idempotency_key)
        return self._client._request(request, timeout=timeout)


class AsyncAdmin(AsyncAPIResource):
    """Usage: `(await AsyncClient(api_key=ADMIN_KEY).admin.create_key("acme")).key`."""

    async def create_tenant(
        self, name: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> Tenant:
        return await self._client._request(_create_tenant(name, idempotency_key), timeout=timeout)

    async def list_tenants(self, *, timeout: Timeout = None) -> list[Tenant]:
        return await self._client._request(_LIST_TENANTS, timeout=timeout)

    async def create_key(
        self, tenant_name: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> ApiKeyCreated:
        """A new key for the tenant (created if new); its secret `key` is shown only now."""
        return await self._client._request(
            _create_key(tenant_name, idempotency_key), timeout=timeout
        )

    async def list_keys(self, tenant_name: str, *, timeout: Timeout = None) -> list[ApiKey]:
        return await self._client._request(_list_keys(tenant_name), timeout=timeout)

    async def revoke_key(
        self, key_id: str, *, idempotency_key: Optional[str] = None, timeout: Timeout = None
    ) -> None:
        await self._client._request(_revoke_key(key_id, idempotency_key), timeout=timeout)

    async def get_state_settings(
        self, tenant_name: str, *, timeout: Timeout = None
    ) -> StateTenantSettings:
        """The tenant's keyed-state default TTL, and how many entries and bytes it holds."""
        return await self._client._request(_get_state_settings(tenant_name), timeout=timeout)

    async def update_state_settings(
        self,
        tenant_name: str,
        *,
        default_ttl: Union[float, timedelta, None],
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> StateTenantSettings:
        """Entries the tenant sets from now on without a `ttl` expire after `default_ttl`."""
        request = _update_state_settings(tenant_name, default_ttl, idempotency_key)
        return await self._client._request(request, timeout=timeout)


_LIST_TENANTS: APIRequest[list[Tenant]] = APIRequest("GET", "/v1/admin/tenants", list[Tenant])


def _create_tenant(name: str, idempotency_key: Optional[str]) -> APIRequest[Tenant]:
    check.tenant_name(name)
    check.idempotency_key(idempotency_key)
    body = request_body(TenantCreateRequest(name=name))
    return APIRequest(
        "POST", "/v1/admin/tenants", Tenant, json=body, idempotency_key=idempotency_key
    )


def _keys_path(tenant_name: str) -> str:
    check.tenant_name(tenant_name)
    return f"/v1/admin/tenants/{path_segment(tenant_name)}/keys"


def _create_key(tenant_name: str, idempotency_key: Optional[str]) -> APIRequest[ApiKeyCreated]:
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "POST", _keys_path(tenant_name), ApiKeyCreated, idempotency_key=idempotency_key
    )


def _list_keys(tenant_name: str) -> APIRequest[list[ApiKey]]:
    return APIRequest("GET", _keys_path(tenant_name), list[ApiKey])


def _revoke_key(key_id: str, idempotency_key: Optional[str]) -> APIRequest[None]:
    check.nonempty("key_id", key_id)
    check.idempotency_key(idempotency_key)
    return APIRequest(
        "DELETE", f"/v1/admin/keys/{path_segment(key_id)}", idempotency_key=idempotency_key
    )


def _state_settings_path(tenant_name: str) -> str:
    check.tenant_name(tenant_name)
    return f"/v1/admin/tenants/{path_segment(tenant_name)}/state"


def _get_state_settings(tenant_name: str) -> APIRequest[StateTenantSettings]:
    return APIRequest("GET", _state_settings_path(tenant_name), StateTenantSettings)


def _update_state_settings(
    tenant_name: str,
    default_ttl: Union[float, timedelta, None],
    idempotency_key: Optional[str],
) -> APIRequest[StateTenantSettings]:
    path = _state_settings_path(tenant_name)
    check.idempotency_key(idempotency_key)
    body = check.model(StateTenantSettingsUpdate, default_ttl=check.ttl("default_ttl", default_ttl))
    return APIRequest(
        "PUT",
        path,
        StateTenantSettings,
        json=request_body(body),
        idempotency_key=idempotency_key,
    )
