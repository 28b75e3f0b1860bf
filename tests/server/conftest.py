"""In-process app fixtures: the real FastAPI app on a temp data dir with the fast hash embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from agentmem_server import Settings, create_app

from support import ADMIN_KEY, make_settings


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for an in-process app, on SQLite and on PostgreSQL."""
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
def http(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as client:
        yield client


@pytest.fixture
def new_key(http: TestClient) -> Callable[[str], str]:
    def create(tenant: str) -> str:
        r = http.post(f"/v1/admin/tenants/{tenant}/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    return create
