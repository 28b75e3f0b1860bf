"""One run through a real `agentmem serve` process, its provider a fake OpenAI endpoint over HTTP."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

import agentmem
from agentmem import MemoryPolicy, RunOptions

from support import create_key

from .helpers import tool_call

pytestmark = pytest.mark.e2e


class FakeOpenAI:
    """`POST /v1/chat/completions` on a loopback port: records raw bodies, answers from a script."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.script: deque[dict[str, Any]] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers["content-length"]))
                fake.bodies.append(raw)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                message = fake.script.popleft() if fake.script else {"role": "assistant", "content": "fake answer"}
                status = 200 if self.path == "/v1/chat/completions" else 404
                out = json.dumps({
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                }).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def messages(self, i: int) -> list[dict[str, Any]]:
        return json.loads(self.bodies[i])["messages"]

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_run_recall_replay_and_transcript_through_a_real_server(start_server, fake_openai: FakeOpenAI):
    server = start_server(
        llm_provider="openai", llm_base_url=fake_openai.url, llm_api_key="sk-e2e", llm_model="fake-model",
        llm_max_retries="0",
    )
    key = create_key(server.env, "acme")
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        client.agents.create("helper", instructions="Be brief.")
        client.memory.update("core", "Ana prefers tea", expected_updated_at=None)
        client.memory.append("archival", "Acme renewal is due in May\nthe printer is broken", agent_id="helper")

        auto = RunOptions(memory_policy=MemoryPolicy(archival_mode="auto", archival_min_score=0.0, archival_limit=1))
        first = client.agents.run("helper", "When is the Acme renewal?", options=auto)

        assert first.output == "fake answer" and len(first.recalled) == 1
        assert fake_openai.headers[0]["authorization"] == "Bearer sk-e2e"
        sent = fake_openai.messages(0)
        assert [m["role"] for m in sent] == ["system", "system", "user"]
        assert sent[0]["content"].startswith("Be brief.") and "Ana prefers tea" in sent[0]["content"]
        assert f'line="{first.recalled[0].line_number}"' in sent[1]["content"]
        assert sent[2] == {"role": "user", "content": "When is the Acme renewal?"}

        fake_openai.script.append({"role": "assistant", "content": None, "tool_calls": [tool_call("recall_archival_memory", {"query": "printer"})]})
        # tool_only (the default mode); min_score 0 so the test does not depend on the embedder's scores.
        tools = RunOptions(memory_policy=MemoryPolicy(archival_min_score=0.0))
        second = client.agents.run("helper", "And the printer?", thread_id=first.thread_id, options=tools)
        assert second.output == "fake answer" and second.usage.total_tokens == 10
        tool_result = json.loads(fake_openai.messages(2)[-1]["content"])
        assert any("printer" in m["content"] for m in tool_result["matches"])
        assert fake_openai.messages(1)[1:3] == [
            {"role": "user", "content": "When is the Acme renewal?"},
            {"role": "assistant", "content": "fake answer"},
        ]

        replayed = client.runs.replay(first.id)
        assert fake_openai.bodies[3] == fake_openai.bodies[0]
        assert replayed.replay_of == first.id

        run = client.runs.get(first.id)
        assert [m.model_dump(exclude_none=True) for m in run.model_input] == sent
        transcript = client.threads.messages(first.thread_id)
        assert [(m.role, m.content) for m in transcript] == [
            ("user", "When is the Acme renewal?"), ("assistant", "fake answer"),
            ("user", "And the printer?"), ("assistant", "fake answer"),
        ]
