"""Tenants and API keys on the wire (admin endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel
from ._constraints import ID_CHARS, ID_MAX_LENGTH

_AT = "2025-03-01T12:00:00.123456Z"


class Tenant(ResponseModel):
    id: str = Field(examples=["ten_4b9ada31316b7924"])
    """Server-assigned tenant id; every API key belongs to one."""
    name: str = Field(examples=["acme"])
    """The unique name the tenant was created with."""
    created_at: datetime = Field(examples=[_AT])
    """When the tenant was created (UTC)."""


class TenantCreateRequest(RequestModel):
    name: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_CHARS, examples=["acme"])
    """1-128 letters, digits, `_`, `-` or `.`; creating an existing tenant returns it."""


class ApiKey(ResponseModel):
    id: str = Field(examples=["key_1d1f24c245856577"])
    """The key's id, used to revoke it (not a secret)."""
    tenant_id: str = Field(examples=["ten_4b9ada31316b7924"])
    """The tenant the key acts for."""
    prefix: str = Field(examples=["am_Xq3kP9w"])
    """The first characters of the key, enough to recognise it; the key itself is never stored."""
    created_at: datetime = Field(examples=[_AT])
    """When the key was created (UTC)."""
    revoked_at: Optional[datetime] = Field(default=None, examples=[None])
    """When the key was revoked; `None` while it is active."""


class ApiKeyCreated(ApiKey):
    key: str = Field(examples=["am_Xq3kP9w..."])
    """The secret key, shown once."""
