"""Client configuration: env defaults, headers, timeouts, lifecycle, lazy resources."""

from __future__ import annotations

import httpx
import pytest
import respx

from agentmem import AgentMemError, AsyncClient, Client
from agentmem._constants import RUN_TIMEOUT
from agentmem.resources import AsyncMemory, Memory

BASE_URL = "http://agentmem.test"
RUN_RESULT = {"id": "run_1", "agent_id": "a1", "thread_id": "th_1", "output": "ok"}


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
def test_missing_api_key_fails_at_construction(client_type: type) -> None:
    with pytest.raises(AgentMemError, match="AGENTMEM_API_KEY"):
        client_type()
    with pytest.raises(AgentMemError, match="AGENTMEM_API_KEY"):
        client_type(api_key="")


def test_env_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMEM_API_KEY", "am_env")
    monkeypatch.setenv("AGENTMEM_BASE_URL", "http://env.test:9000/")
    with respx.mock(base_url="http://env.test:9000") as env_server:
        route = env_server.get("/v1/agents").respond(200, json=[])
        with Client() as client:
            client.agents.list()
    assert route.calls.last.request.headers["authorization"] == "Bearer am_env"


def test_arguments_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMEM_API_KEY", "am_env")
    monkeypatch.setenv("AGENTMEM_BASE_URL", "http://env.test")
    with Client(api_key="am_arg", base_url="http://arg.test") as client:
        assert (client.api_key, client.base_url) == ("am_arg", "http://arg.test")


def test_default_base_url_is_local_server() -> None:
    with Client(api_key="k") as client:
        assert client.base_url == "http://127.0.0.1:8765"


def test_base_url_without_http_scheme_is_rejected() -> None:
    with pytest.raises(AgentMemError, match="127.0.0.1:8765"):
        Client(api_key="k", base_url="127.0.0.1:8765")


def test_base_url_path_prefix_is_kept() -> None:
    with respx.mock(base_url="http://proxy.test") as server:
        route = server.get("/agentmem/v1/agents").respond(200, json=[])
        with Client(api_key="k", base_url="http://proxy.test/agentmem/") as client:
            client.agents.list()
    assert route.called


def test_requests_carry_auth_and_user_agent(client: Client, router: respx.MockRouter) -> None:
    route = router.get("/v1/agents").respond(200, json=[])
    client.agents.list()
    headers = route.calls.last.request.headers
    assert headers["authorization"] == "Bearer am_test"
    assert headers["user-agent"].startswith("agentmem-python/")
    assert headers["accept"] == "application/json"


def test_repr_never_shows_the_key(client: Client) -> None:
    assert "am_test" not in repr(client)


def test_resources_are_created_once(client: Client, async_client: AsyncClient) -> None:
    assert client.memory is client.memory
    assert type(client.memory) is Memory
    assert async_client.memory is async_client.memory
    assert type(async_client.memory) is AsyncMemory


def test_context_manager_closes_its_own_http_client() -> None:
    with Client(api_key="k") as client:
        pass
    assert client._http.is_closed


async def test_async_context_manager_closes_its_own_http_client() -> None:
    async with AsyncClient(api_key="k") as client:
        pass
    assert client._http.is_closed


def test_given_http_client_is_used_and_left_open(router: respx.MockRouter) -> None:
    route = router.get("/v1/agents").respond(200, json=[])
    with httpx.Client(headers={"x-tenant-proxy": "eu"}) as http:
        with Client(api_key="k", base_url=BASE_URL, http_client=http) as client:
            client.agents.list()
        assert not http.is_closed
    assert route.calls.last.request.headers["x-tenant-proxy"] == "eu"


def test_http_client_of_the_wrong_kind_is_rejected() -> None:
    with pytest.raises(TypeError, match="httpx.Client"):
        Client(api_key="k", http_client=httpx.AsyncClient())  # type: ignore[arg-type]


def request_timeout(route: respx.Route) -> dict[str, float | None]:
    return route.calls.last.request.extensions["timeout"]


def test_client_timeout_applies_unless_the_call_overrides_it(router: respx.MockRouter) -> None:
    route = router.get("/v1/agents").respond(200, json=[])
    with Client(api_key="k", base_url=BASE_URL, timeout=12.0) as client:
        client.agents.list()
        assert request_timeout(route) == httpx.Timeout(12.0).as_dict()
        client.agents.list(timeout=3.0)
        assert request_timeout(route) == httpx.Timeout(3.0).as_dict()


def test_runs_wait_at_least_run_timeout(router: respx.MockRouter) -> None:
    run = router.post("/v1/agents/a1/runs").respond(200, json=RUN_RESULT)
    replay = router.post("/v1/runs/run_1/replay").respond(200, json=RUN_RESULT)
    with Client(api_key="k", base_url=BASE_URL, timeout=10.0) as client:
        client.agents.run("a1", "hi")
        assert request_timeout(run)["read"] == RUN_TIMEOUT
        client.runs.replay("run_1")
        assert request_timeout(replay)["read"] == RUN_TIMEOUT
        client.agents.run("a1", "hi", timeout=5.0)
        assert request_timeout(run)["read"] == 5.0
    with Client(api_key="k", base_url=BASE_URL, timeout=RUN_TIMEOUT * 2) as client:
        client.agents.run("a1", "hi")
        assert request_timeout(run)["read"] == RUN_TIMEOUT * 2


async def test_async_per_call_timeout(async_client: AsyncClient, router: respx.MockRouter) -> None:
    route = router.get("/v1/agents").respond(200, json=[])
    await async_client.agents.list(timeout=4.0)
    assert request_timeout(route) == httpx.Timeout(4.0).as_dict()
