"""Tenants and API keys on the wire (admin endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import Field

from ._base import RequestModel, ResponseModel


class Tenant(ResponseModel):
    id: str
    name: str
    created_at: datetime


class TenantCreateRequest(RequestModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")


class ApiKey(ResponseModel):
    id: str
    tenant_id: str
    prefix: str
    """The first characters of the key, enough to recognise it; the key itself is never stored."""
    created_at: datetime
    revoked_at: Optional[datetime] = None


class ApiKeyCreated(ApiKey):
    key: str
    """The secret key, shown once."""
