"""Fixtures of the server tests, all lazy (nothing heavy happens unless a test asks for it).

app        app_settings, http (the real app in process), new_key
sql        sql_store (SQLite and PostgreSQL, by `database_url`), clock (a FakeClock at T0)
archival   archival_settings, hash_embedder, open_index, index, minilm (the real model)
runs       llm (the scripted provider, via respx), memory (FakeMemory), store, threads, services
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import respx
from fastapi.testclient import TestClient

from agentmem_server import Settings, create_app
from agentmem_server.embedding import Embedder, HashEmbedder
from agentmem_server.providers import OpenAICompatibleProvider
from agentmem_server.services.agents import AgentService
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.services.runs import RunService
from agentmem_server.services.threads import ThreadService
from agentmem_server.storage.sql.store import SqlStore

from support import ADMIN_KEY, LLM_URL, FakeClock, FakeMemory, ScriptedLLM, make_settings

# ---- the app in process ---------------------------------------------------------------------


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
        r = http.post(
            f"/v1/admin/tenants/{tenant}/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert r.status_code == 201, r.text
        return r.json()["key"]

    return create


# ---- SQL --------------------------------------------------------------------------------------


@pytest.fixture
def sql_store(database_url: str) -> Iterator[SqlStore]:
    """A SqlStore, once on SQLite and once on PostgreSQL; closed after the test."""
    s = SqlStore.open(database_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---- archival -------------------------------------------------------------------------------

OpenIndex = Callable[..., Awaitable[ArchivalIndex]]


@pytest.fixture
def archival_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        embedding_model="hash:64",
        chunk_tokens=64,
        chunk_overlap_lines=1,
    )


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
async def open_index(
    archival_settings: Settings, hash_embedder: HashEmbedder
) -> AsyncIterator[OpenIndex]:
    """Factory: `await open_index(embedder=None, **settings)`; background maintenance off, so
    tests decide when indexes update (`maintain()`, `cleanup()`). All are closed at teardown."""
    opened: list[ArchivalIndex] = []

    async def open_(embedder: Embedder | None = None, **overrides) -> ArchivalIndex:
        allow_model_mismatch = overrides.pop("allow_model_mismatch", False)
        settings = archival_settings.model_copy(update=overrides)
        index = await ArchivalIndex.open(
            settings,
            embedder or hash_embedder,
            background_maintenance=False,
            allow_model_mismatch=allow_model_mismatch,
        )
        opened.append(index)
        return index

    yield open_
    for index in opened:
        await index.close()


@pytest.fixture
async def index(open_index: OpenIndex) -> ArchivalIndex:
    return await open_index()


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The bundled all-MiniLM-L6-v2 run by torch (the reference backend), loaded once (seconds, ~90
    MB)."""
    from agentmem_server.embedding import load_embedder

    return load_embedder(Settings(embedding_device="cpu", embedding_backend="torch"))


# ---- runs -----------------------------------------------------------------------------------


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    scripted = ScriptedLLM()
    # Only the provider's host is mocked; the TestClient's in-process transport is untouched.
    with respx.mock(base_url=LLM_URL, assert_all_called=False) as router:
        router.post("/chat/completions").mock(side_effect=scripted)
        yield scripted


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.open(f"sqlite:///{tmp_path / 'runs.db'}")
    yield s
    s.close()


@pytest.fixture
def threads(store: SqlStore) -> ThreadService:
    return ThreadService(store)


@pytest.fixture
async def services(
    tmp_path: Path, store: SqlStore, threads: ThreadService, memory: FakeMemory, llm: ScriptedLLM
):
    """(AgentService, RunService) over real SQL, the fake memory and the scripted provider."""
    settings = make_settings(tmp_path, llm_model="test-model")
    provider = OpenAICompatibleProvider(base_url=LLM_URL, api_key="sk-test", max_retries=0)
    agents = AgentService(store, memory)  # type: ignore[arg-type]
    runs = RunService(
        settings=settings,
        sql=store,
        memory=memory,
        agents=agents,
        threads=threads,
        provider=provider,  # type: ignore[arg-type]
    )
    yield agents, runs
    await provider.aclose()
