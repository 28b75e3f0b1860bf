"""A write whose answer comes late (after it committed) is retried by the client, and the retry
never acts twice: real uvicorn, real SQL (SQLite and PostgreSQL), the public client.

`LateFirstAnswer` holds the first answer to a route back after the app produced it, longer than
the client waits, so the client times out and retries exactly as it would on a slow network.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import agentmem
from agentmem_server import create_app
from agentmem_server.services.memory import MemoryService

from support import (
    HTTP_TIMEOUT_S,
    ScriptedLLM,
    auth,
    make_settings,
    new_tenant_key,
    scripted_llm_settings,
    serve_in_thread,
    tool_call,
)

pytestmark = pytest.mark.e2e

LATE_S = 2.0
CLIENT_TIMEOUT_S = 1.0


class LateFirstAnswer:
    """ASGI wrapper: the first answer to `method path` is sent `LATE_S` after the app gave it."""

    def __init__(self, app, method: str, path: str):
        self.app = app
        self.target = (method, path)
        self.held = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (scope["method"], scope["path"]) != self.target or self.held:
            return await self.app(scope, receive, send)
        self.held += 1

        async def late_send(message):
            if message["type"] == "http.response.start":
                await asyncio.sleep(LATE_S)
            try:
                await send(message)
            except Exception:  # noqa: BLE001 - the client gave up on this answer long ago
                pass

        await self.app(scope, receive, late_send)


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    """A model that calls `append_archival_memory` once, then answers; served on a loopback port."""
    scripted = ScriptedLLM(default="noted")
    scripted.reply(None, [tool_call("append_archival_memory", {"text": "likes green tea"})])
    with scripted.serving() as url:
        yield scripted, url


def _settings(tmp_path: Path, database_url: str, **overrides: Any):
    return make_settings(tmp_path, database_url=database_url, **overrides)


def _tenant_key(url: str, tenant: str = "acme") -> str:
    return new_tenant_key(url, tenant)


def test_a_late_append_is_stored_once(tmp_path: Path, database_url: str) -> None:
    app = LateFirstAnswer(
        create_app(_settings(tmp_path, database_url)), "POST", "/v1/memory/archival/append"
    )
    lines = "\n".join(f"fact number {i}" for i in range(300))
    with serve_in_thread(app) as url:
        key = _tenant_key(url)
        with agentmem.Client(
            api_key=key, base_url=url, timeout=CLIENT_TIMEOUT_S, max_retries=2
        ) as client:
            block = client.memory.append("archival", lines, agent_id="a1")
            assert (block.start_line, block.end_line) == (1, 300)
            time.sleep(LATE_S)  # let the first answer finish before looking
            stored = client.memory.get("archival", agent_id="a1")
    assert app.held == 1, "the test did not make the first answer late"
    assert stored.line_count == 300
    assert stored.content == lines


def test_a_late_run_calls_the_model_once_and_stores_one_append_and_one_run(
    tmp_path: Path, database_url: str, llm: tuple[ScriptedLLM, str]
) -> None:
    model, llm_url = llm
    settings = scripted_llm_settings(tmp_path, database_url=database_url, llm_base_url=llm_url)
    app = LateFirstAnswer(create_app(settings), "POST", "/v1/agents/helper/runs")
    with serve_in_thread(app) as url:
        key = _tenant_key(url)
        with agentmem.Client(api_key=key, base_url=url, max_retries=2) as client:
            client.agents.create("helper")
            result = client.agents.run("helper", "I like green tea", timeout=CLIENT_TIMEOUT_S)
            time.sleep(LATE_S)
            archival = client.memory.get("archival", agent_id="helper")
            transcript = client.threads.messages(result.thread_id)
            first_run = client.runs.get(result.id)
            exported = httpx.get(
                f"{url}/v1/export", headers=auth(key), timeout=HTTP_TIMEOUT_S
            ).text.splitlines()
    assert app.held == 1
    assert len(model.requests) == 2, "the model ran again for a retried run"
    assert archival.line_count == 1 and archival.content == "likes green tea"
    assert [m.role for m in transcript] == ["user", "assistant"]
    assert first_run.output == "noted"
    assert sum(json.loads(line)["type"] == "run" for line in exported) == 1


def test_modify_after_a_late_put_applies_fn_once(tmp_path: Path, database_url: str) -> None:
    app = LateFirstAnswer(create_app(_settings(tmp_path, database_url)), "PUT", "/v1/memory/core")
    with serve_in_thread(app) as url:
        key = _tenant_key(url)
        with agentmem.Client(api_key=key, base_url=url, max_retries=2) as client:
            client.memory.append("core", "0")  # not the route held back
            calls: list[str] = []

            def plus_one(text: str) -> str:
                calls.append(text)
                return str(int(text) + 1)

            block = client.memory.modify("core", plus_one, timeout=CLIENT_TIMEOUT_S)
            time.sleep(LATE_S)
            final = client.memory.get("core").content
    assert app.held == 1
    assert calls == ["0"] and block.content == "1"
    assert final == "1"


@pytest.fixture
def slow_appends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Archival appends take 1.5 s before they write (the server runs in this process)."""
    append = MemoryService.append

    async def slow(self, *args, **kwargs):
        await asyncio.sleep(1.5)
        return await append(self, *args, **kwargs)

    monkeypatch.setattr(MemoryService, "append", slow)


def test_a_retry_while_the_first_runs_waits_then_answers_409_in_progress(
    tmp_path: Path, database_url: str, slow_appends: None
) -> None:
    app = create_app(_settings(tmp_path, database_url, idempotency_wait_s=0.3))
    with serve_in_thread(app) as url:
        h = auth(_tenant_key(url)) | {"Idempotency-Key": "append-1"}
        path = f"{url}/v1/memory/archival/append"
        first: dict[str, httpx.Response] = {}
        runner = threading.Thread(
            target=lambda: first.update(
                r=httpx.post(path, json={"text": "once"}, headers=h, timeout=30)
            )
        )
        runner.start()
        time.sleep(0.5)  # the first is claimed and sleeping
        started = time.monotonic()
        busy = httpx.post(path, json={"text": "once"}, headers=h, timeout=30)
        waited = time.monotonic() - started
        runner.join()
        again = httpx.post(path, json={"text": "once"}, headers=h, timeout=30)
        stored = httpx.get(f"{url}/v1/memory/archival", headers=h, timeout=HTTP_TIMEOUT_S).json()
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["type"] == "in_progress"
    assert busy.headers["x-should-retry"] == "true" and int(busy.headers["retry-after"]) >= 1
    assert 0.3 <= waited < 1.5, "the retry should wait about idempotency_wait_s, not for the first"
    assert first["r"].status_code == 200 and "idempotent-replayed" not in first["r"].headers
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first["r"].json()
    assert stored["line_count"] == 1


def test_a_retry_that_waits_long_enough_gets_the_first_answer(
    tmp_path: Path, database_url: str, slow_appends: None
) -> None:
    app = create_app(_settings(tmp_path, database_url, idempotency_wait_s=10))
    with serve_in_thread(app) as url:
        key = _tenant_key(url)
        path = f"{url}/v1/memory/archival/append"
        h = auth(key) | {"Idempotency-Key": "append-2"}
        with httpx.Client(timeout=30) as http:
            answers: list[httpx.Response] = []
            threads = [
                threading.Thread(
                    target=lambda: answers.append(http.post(path, json={"text": "once"}, headers=h))
                )
                for _ in range(3)
            ]
            for t in threads:
                t.start()
                time.sleep(0.2)
            for t in threads:
                t.join()
            stored = http.get(f"{url}/v1/memory/archival", headers=auth(key)).json()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.headers.get("idempotent-replayed", "-") for a in answers) == [
        "-",
        "true",
        "true",
    ]
    assert len({a.text for a in answers}) == 1
    assert stored["line_count"] == 1
