"""Abuse limits: per-tenant request rate, failed-authentication throttling per client address,
per-tenant storage quotas (in-process app, SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem_server import Settings, create_app
from agentmem_server.services.limits import AuthThrottle, RateLimiter

from support import ADMIN_KEY, auth, make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.wait_s("t") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_s("t") == pytest.approx(0.5)
    assert limiter.wait_s("other") == 0.0, "each tenant has its own bucket"
    clock.now += 0.5
    assert limiter.wait_s("t") == 0.0
    assert RateLimiter(rate=0, burst=1, clock=clock).wait_s("t") == 0.0, "0 turns it off"


def test_failed_authentications_close_the_address_for_the_window() -> None:
    clock = Clock()
    throttle = AuthThrottle(max_failures=2, window_s=60, clock=clock)
    throttle.failed("10.0.0.1")
    assert throttle.wait_s("10.0.0.1") == 0.0
    clock.now += 10
    throttle.failed("10.0.0.1")
    assert throttle.wait_s("10.0.0.1") == pytest.approx(50)
    assert throttle.wait_s("10.0.0.2") == 0.0
    clock.now += 50
    assert throttle.wait_s("10.0.0.1") == 0.0


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        rate_limit_per_s=0.5,
        rate_limit_burst=4,
        auth_failures_per_min=3,
    )
    with TestClient(create_app(settings)) as http:
        yield http


@pytest.fixture
def quota_app(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        quota_archival_lines=5,
        quota_core_blocks=1,
        quota_agents=1,
    )
    with TestClient(create_app(settings)) as http:
        yield http


def _key(http: TestClient, tenant: str) -> dict[str, str]:
    r = http.post(f"/v1/admin/tenants/{tenant}/keys", headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    return auth(r.json()["key"])


def test_a_tenant_past_its_rate_gets_429_with_retry_after(limited: TestClient) -> None:
    a, b = _key(limited, "a"), _key(limited, "b")
    assert [limited.get("/v1/agents", headers=a).status_code for _ in range(4)] == [200] * 4
    r = limited.get("/v1/agents", headers=a)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"
    assert r.json()["error"]["limit"] == 0.5 and int(r.headers["retry-after"]) >= 1
    assert limited.get("/v1/agents", headers=b).status_code == 200, "another tenant is not slowed"


def test_an_address_guessing_keys_is_throttled_even_with_a_good_key(limited: TestClient) -> None:
    good = _key(limited, "a")
    for guess in ("am_wrong1", "am_wrong2", "am_wrong3"):
        assert limited.get("/v1/agents", headers=auth(guess)).status_code == 401
    r = limited.get("/v1/agents", headers=good)
    assert r.status_code == 429 and r.json()["error"]["field"] == "Authorization"
    assert r.json()["error"]["limit"] == 3 and int(r.headers["retry-after"]) >= 1


def test_wrong_admin_keys_count_as_failures(limited: TestClient) -> None:
    for _ in range(3):
        assert (
            limited.get("/v1/admin/tenants", headers=auth("not-the-admin-key")).status_code == 401
        )
    assert limited.get("/v1/admin/tenants", headers=auth(ADMIN_KEY)).status_code == 429


def test_archival_lines_quota(quota_app: TestClient) -> None:
    limited = quota_app
    h = _key(limited, "a")
    assert (
        limited.post("/v1/memory/archival/append", json={"text": "1\n2\n3"}, headers=h).status_code
        == 200
    )
    full = limited.post(
        "/v1/memory/archival/append?agent_id=x", json={"text": "4\n5\n6"}, headers=h
    )
    assert full.status_code == 429 and full.headers["x-should-retry"] == "false"
    assert full.json()["error"]["type"] == "quota_exceeded" and full.json()["error"]["limit"] == 5
    huge = limited.post("/v1/memory/archival/append", json={"text": "\n".join("abcdef")}, headers=h)
    assert huge.status_code == 413 and huge.json()["error"]["limit"] == 5
    assert limited.get("/v1/memory/archival?agent_id=x", headers=h).status_code == 404
    assert limited.get("/v1/memory/archival", headers=h).json()["line_count"] == 3


def test_core_blocks_and_agents_quotas(quota_app: TestClient) -> None:
    limited = quota_app
    h = _key(limited, "a")
    assert (
        limited.put(
            "/v1/memory/core", json={"content": "x", "expected_updated_at": None}, headers=h
        ).status_code
        == 200
    )
    by_put = limited.put(
        "/v1/memory/core?agent_id=a1", json={"content": "x", "expected_updated_at": None}, headers=h
    )
    by_append = limited.post("/v1/memory/core/append?agent_id=a1", json={"text": "x"}, headers=h)
    assert by_put.status_code == by_append.status_code == 429
    assert by_append.json()["error"]["type"] == "quota_exceeded"
    assert (
        limited.post("/v1/memory/core/append", json={"text": "more"}, headers=h).status_code == 200
    )
    assert limited.post("/v1/agents", json={"agent_id": "one"}, headers=h).status_code == 201
    second = limited.post("/v1/agents", json={"agent_id": "two"}, headers=h)
    assert second.status_code == 429 and second.json()["error"]["field"] == "agent_id"
    other = _key(limited, "b")
    assert limited.post("/v1/agents", json={"agent_id": "two"}, headers=other).status_code == 201


def test_an_openai_provider_without_a_key_is_warned_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings: Settings = make_settings(tmp_path, llm_provider="openai", llm_api_key=None)
    with caplog.at_level(logging.WARNING, logger="agentmem"):
        with TestClient(create_app(settings)):
            pass
    assert any("AGENTMEM_LLM_API_KEY" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agentmem"):
        with TestClient(
            create_app(make_settings(tmp_path, llm_provider="openai", llm_api_key="sk-x"))
        ):
            pass
    assert not any("AGENTMEM_LLM_API_KEY" in r.getMessage() for r in caplog.records)
