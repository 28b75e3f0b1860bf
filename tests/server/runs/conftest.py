"""Run tests talk to a scripted provider through respx; service tests use real SQL and a fake memory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import respx

from agentmem_server.providers import OpenAICompatibleProvider
from agentmem_server.services.agents import AgentService
from agentmem_server.services.runs import RunService
from agentmem_server.settings import Settings
from agentmem_server.storage.sql.store import SqlStore

from support import make_settings

from .helpers import LLM_URL, FakeMemory, ScriptedLLM


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    """The in-process app (tests/server/conftest.py) pointed at the scripted provider."""
    return make_settings(
        tmp_path,
        database_url=database_url,
        llm_provider="openai",
        llm_base_url=LLM_URL,
        llm_api_key="sk-test",
        llm_model="test-model",
        llm_max_retries=0,
    )


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
async def services(tmp_path: Path, store: SqlStore, memory: FakeMemory, llm: ScriptedLLM):
    """(AgentService, RunService) over real SQL, the fake memory and the scripted provider."""
    settings = make_settings(tmp_path, llm_model="test-model")
    provider = OpenAICompatibleProvider(base_url=LLM_URL, api_key="sk-test", max_retries=0)
    agents = AgentService(store, memory)  # type: ignore[arg-type]
    runs = RunService(settings=settings, sql=store, memory=memory, agents=agents, provider=provider)  # type: ignore[arg-type]
    yield agents, runs
    await provider.aclose()
