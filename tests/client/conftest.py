from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from agentmem import AsyncClient, Client
from agentmem import _client as client_module

BASE_URL = "http://agentmem.test"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own AGENTMEM_* settings must not leak into what the tests see.
    monkeypatch.delenv("AGENTMEM_API_KEY", raising=False)
    monkeypatch.delenv("AGENTMEM_BASE_URL", raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the clients ask for, in order; nothing actually sleeps."""
    waits: list[float] = []

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", waits.append)
    monkeypatch.setattr(client_module, "_async_sleep", async_sleep)
    return waits


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A mocked server: any request not matched by a route fails the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def client(sleeps: list[float], router: respx.MockRouter) -> Iterator[Client]:
    with Client(api_key="am_test", base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def async_client(sleeps: list[float], router: respx.MockRouter) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api_key="am_test", base_url=BASE_URL) as c:
        yield c
