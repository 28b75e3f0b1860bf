"""The one home of test helpers and fakes, importable from any test (`tests/` is on pythonpath).

    clock        T0, T0_US, T0_ISO: the one fixed instant tests stamp things with;
                 FakeClock, a settable `now` for services
    settings     make_settings, ADMIN_KEY, auth, new_tenant_key, HTTP_TIMEOUT_S
    processes    free_port, server_env, create_key, ServerProcess (`agentmem serve` in a child)
    races        in_threads, count_retries, clients_on: many writers at once through the client
    interpreter  fresh_python: what code prints in a new, isolated interpreter of this venv
    S3           S3StandIn: an S3-compatible server on loopback (moto) that counts requests
    LLM          ScriptedLLM: the one fake OpenAI-compatible endpoint (respx, or real HTTP)
    memory       FakeMemory, block, match: MemoryService's surface for run tests
    faults       next_commit_fails, dies_before_commit

Server modules are imported inside the helpers that need them, so client tests stay light.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import httpx
import pytest

import agentmem
from agentmem.types import MemoryBlock, MemoryRecallRequest, MemoryRecallResult

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from agentmem_server.settings import Settings

# ---- clock ----------------------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
"""The instant tests stamp blocks, matches and rows with (microseconds set on purpose)."""
T0_US = 1_740_830_400_123_456
"""T0 in UTC microseconds, the form stored rows carry."""
T0_ISO = "2025-03-01T12:00:00.123456Z"
"""T0 as the API writes it."""


class FakeClock:
    """A clock for services that take `now=` (UTC microseconds): it stands still at `now` (T0 by
    default) until a test moves it (`clock.now += 60_000_000`)."""

    def __init__(self, now: int = T0_US) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


# ---- settings -------------------------------------------------------------------------------

ADMIN_KEY = "admin-test-key"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an in-process app: temp data dir, the fast hash embedder, a known admin key."""
    from agentmem_server.settings import Settings

    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data", embedding_model="hash:384", admin_key=ADMIN_KEY
    )
    values.update(overrides)
    return Settings(**values)


def scripted_llm_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """`make_settings` pointed at a scripted OpenAI-compatible provider (`ScriptedLLM`)."""
    values: dict[str, Any] = dict(
        llm_provider="openai",
        llm_base_url=LLM_URL,
        llm_api_key="sk-test",
        llm_model="test-model",
        llm_max_retries=0,
    )
    values.update(overrides)
    return make_settings(tmp_path, **values)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


HTTP_TIMEOUT_S = 60.0
"""For a test's own HTTP calls to a server it started: httpx's 5 s default was too little on a
loaded box (a first request to a new server timed out)."""


def new_tenant_key(url: str, tenant: str) -> str:
    """A new API key of `tenant`, from the admin route of the server at `url` (`make_settings`'s
    admin key)."""
    r = httpx.post(
        f"{url}/v1/admin/tenants/{tenant}/keys", headers=auth(ADMIN_KEY), timeout=HTTP_TIMEOUT_S
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


# ---- server processes -----------------------------------------------------------------------

READY_TIMEOUT_S = 300.0
"""How long a server (process or thread) or the CLI may take to come up. Generous on purpose:
on a loaded 2-core box 60-120 s was too little; a server that exits instead fails at once."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server process: no AGENTMEM_* setting of ours leaks in, except the
    session's ONNX export folder (conftest), so servers do not export the model again."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTMEM_") or k == "AGENTMEM_ONNX_CACHE_DIR"
    }
    env["AGENTMEM_DATA_DIR"] = str(data_dir)
    for name, value in settings.items():
        env[f"AGENTMEM_{name.upper()}"] = value
    return env


def create_key(env: dict[str, str], tenant: str) -> str:
    """Through the real CLI, which prints the key alone on its last line."""
    out = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "keys", "create", "--tenant", tenant],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=READY_TIMEOUT_S,
    )
    return out.stdout.strip().splitlines()[-1]


class ServerProcess:
    """`agentmem serve` in a child process on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agentmem_server.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._log_path = log_path

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self._log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self._log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---- races ----------------------------------------------------------------------------------


def in_threads(n: int, work: Callable[[int], None]) -> None:
    """`work(0)` ... `work(n - 1)`, each in a thread of its own, all at once; an error any of them
    hit fails the test here."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # surfaced in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def count_retries(
    clients: Sequence[agentmem.Client], write_once: Callable[[agentmem.Client], int], rounds: int
) -> int:
    """One thread per client, each calling `write_once(client)` `rounds` times; `write_once`
    returns how many tries its guarded write took. Returns the tries beyond the first, summed:
    above 0 proves the writers really raced."""
    retries = 0
    lock = threading.Lock()

    def writer(i: int) -> None:
        nonlocal retries
        for _ in range(rounds):
            tries = write_once(clients[i])
            with lock:
                retries += tries - 1

    in_threads(len(clients), writer)
    return retries


@contextmanager
def clients_on(
    servers: Sequence[ServerProcess], api_key: str, n: int
) -> Iterator[list[agentmem.Client]]:
    """`n` clients with one key, spread round-robin over `servers`; closed afterwards."""
    clients = [
        agentmem.Client(api_key=api_key, base_url=servers[i % len(servers)].url) for i in range(n)
    ]
    try:
        yield clients
    finally:
        for c in clients:
            c.close()


# ---- a fresh interpreter ----------------------------------------------------------------------


def fresh_python(code: str) -> str:
    """What `code` prints, run by a new interpreter of this environment: isolated (`-I`: no
    PYTHON* variable, no current folder on the path) and with a bare environment, so nothing of
    this test process or of the shell it came from (a PYTHONPATH, a sitecustomize, a
    PYTHONSTARTUP) is imported alongside. The timeout only stops a hung child."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr}"
    return result.stdout


# ---- an S3-compatible server ----------------------------------------------------------------


class S3StandIn:
    """moto's S3 in server mode on a loopback port, in a thread of this process, counting the
    requests it answers by kind (`manifest_gets`, `lists`, ...), so tests and benchmarks can
    check what a recall costs in object-store requests.

        with S3StandIn() as s3:
            settings = s3.settings("bucket-1")   # archival_uri + s3_* settings for a server
    """

    ACCESS_KEY = "testing"
    SECRET_KEY = "testing"
    REGION = "us-east-1"

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log(self, type: str, message: str, *args: Any) -> None:
                pass

        self.requests: list[tuple[str, str, str]] = []
        """(method, path, query string) of every request, in order."""
        self._lock = threading.Lock()
        inner = create_backend_app("s3")

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            with self._lock:
                self.requests.append(
                    (
                        environ["REQUEST_METHOD"],
                        environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""),
                    )
                )
            return inner(environ, start_response)

        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> S3StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.REGION,
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
        )
        client.create_bucket(Bucket=name)
        client.close()

    def settings(self, bucket: str, prefix: str = "lance") -> dict[str, str]:
        """Server settings (names of `Settings` fields) for an archival store in the bucket."""
        return {
            "archival_uri": f"s3://{bucket}/{prefix}",
            "s3_endpoint": self.endpoint,
            "s3_region": self.REGION,
            "s3_access_key_id": self.ACCESS_KEY,
            "s3_secret_access_key": self.SECRET_KEY,
            "s3_allow_http": "true",
        }

    def wait_quiet(self, seconds: float = 3.0, limit: float = 120.0) -> None:
        """Wait until no request has come for `seconds` (servers' background maintenance done),
        so what is counted next is what the test's own requests cause."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            mark = self.mark()
            time.sleep(seconds)
            if not self.since(mark):
                return
        raise AssertionError(f"the object store was still busy after {limit}s")

    def mark(self) -> int:
        """A position in the request log, for `since`."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str, str]]:
        with self._lock:
            return self.requests[mark:]

    @staticmethod
    def manifest_gets(requests: list[tuple[str, str, str]]) -> int:
        """GETs of a LanceDB version manifest (what reading every kept version costs)."""
        return sum(1 for m, p, _ in requests if m == "GET" and p.endswith(".manifest"))

    @staticmethod
    def version_requests(requests: list[tuple[str, str, str]]) -> int:
        """Requests that learn a table's versions: manifest reads and listings of `_versions`
        (what a staleness check costs; data reads are not counted)."""
        return sum(1 for _, p, q in requests if "_versions" in p or "_versions" in q)


# ---- the fake LLM ---------------------------------------------------------------------------

LLM_URL = "http://llm.test/v1"
"""Where in-process tests point the OpenAI-compatible provider (respx mocks this host)."""


def tool_call(
    name: str, arguments: dict[str, Any] | str, call_id: str = "call_1"
) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


class ScriptedLLM:
    """An OpenAI-compatible `/chat/completions` answering from a queue of replies (then with
    `default`), recording every request it got.

    In process, as a respx side effect: `router.post("/chat/completions").mock(side_effect=llm)`;
    for a server in another process, over real HTTP: `with llm.serving() as base_url: ...`.
    """

    def __init__(self, default: str = "ok") -> None:
        self.default = default
        self.requests: list[httpx.Request] = []
        self._replies: deque[httpx.Response] = deque()

    def reply(
        self,
        content: Optional[str] = "ok",
        tool_calls: Optional[list[dict[str, Any]]] = None,
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
    ) -> ScriptedLLM:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        self._replies.append(httpx.Response(200, json=body))
        return self

    def fail(self, status: int, message: str) -> ScriptedLLM:
        body = {"error": {"message": message, "type": "server_error"}}
        self._replies.append(httpx.Response(status, json=body))
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._replies:
            self.reply(self.default)
        return self._replies.popleft()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def messages(self, call: int = 0) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.bodies[call]["messages"]
        return messages

    @contextmanager
    def serving(self) -> Iterator[str]:
        """This endpoint on a loopback port; yields its base URL (`http://127.0.0.1:PORT/v1`)."""
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers["content-length"]))
                if self.path != "/v1/chat/completions":
                    response = httpx.Response(404, json={"error": {"message": "not found"}})
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    request = httpx.Request(
                        "POST", f"http://127.0.0.1{self.path}", headers=headers, content=raw
                    )
                    response = llm(request)
                out = response.read()
                self.send_response(response.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


# ---- a fake memory service ------------------------------------------------------------------


def block(
    content: str, *, scope: str = "user", agent_id: Optional[str] = None, updated_at: datetime = T0
) -> MemoryBlock:
    return MemoryBlock(
        id=f"blk_{scope}_{agent_id or ''}",
        block_type="core",
        content=content,
        scope=scope,  # type: ignore[arg-type]
        agent_id=agent_id,
        created_at=T0,
        updated_at=updated_at,
        line_count=content.count("\n") + 1,
    )


def match(
    content: str,
    score: float,
    *,
    scope: str = "agent",
    agent_id: Optional[str] = "helper",
    line: int = 1,
) -> MemoryRecallResult:
    return MemoryRecallResult(
        content=content,
        score=score,
        scope=scope,  # type: ignore[arg-type]
        agent_id=agent_id if scope == "agent" else None,
        line_number=line,
        end_line=line + content.count("\n"),
        updated_at=T0,
        block_id=f"blk_arch_{scope}",
    )


@dataclass
class FakeMemory:
    """The MemoryService surface RunService and AgentService use, with controllable recall."""

    core: dict[tuple[str, str], MemoryBlock] = field(default_factory=dict)
    archival: list[MemoryRecallResult] = field(default_factory=list)
    recall_requests: list[MemoryRecallRequest] = field(default_factory=list)
    appended: list[tuple[str, Optional[str], str]] = field(default_factory=list)
    deleted_agents: list[tuple[str, str]] = field(default_factory=list)

    async def get_block(
        self,
        tenant_id: str,
        block_type: str,
        agent_id: Optional[str],
        start_line: Optional[int] = None,
        end_line: Optional[int] = None,
    ) -> MemoryBlock:
        from agentmem_server.errors import NotFound

        found = self.core.get((tenant_id, agent_id or "")) if block_type == "core" else None
        if found is None:
            raise NotFound("no block")
        return found

    async def recall(
        self, tenant_id: str, request: MemoryRecallRequest
    ) -> list[MemoryRecallResult]:
        # Like the real index: best first, pre-filtered by min_score, at most `limit`.
        self.recall_requests.append(request)
        hits = sorted(
            (m for m in self.archival if m.score >= request.min_score), key=lambda m: -m.score
        )
        return hits[: request.limit]

    async def append(
        self, tenant_id: str, block_type: str, text: str, agent_id: Optional[str]
    ) -> MemoryBlock:
        self.appended.append((tenant_id, agent_id, text))
        b = block(text, scope="agent" if agent_id else "user", agent_id=agent_id)
        return b.model_copy(update={"block_type": block_type, "start_line": 1, "end_line": 1})

    async def update_block(
        self,
        tenant_id: str,
        block_type: str,
        content: str,
        expected_updated_at: Optional[datetime],
        agent_id: Optional[str],
    ) -> MemoryBlock:
        from agentmem_server.errors import Conflict

        key = (tenant_id, agent_id or "")
        current = self.core.get(key)
        if (current is None) != (expected_updated_at is None) or (
            current is not None and current.updated_at != expected_updated_at
        ):
            at = current.updated_at.isoformat() if current else None
            raise Conflict("block changed", field="expected_updated_at", current_updated_at=at)
        stamp = (current.updated_at if current else T0) + timedelta(seconds=1)
        scope = "agent" if agent_id else "user"
        new = block(content, scope=scope, agent_id=agent_id, updated_at=stamp)
        self.core[key] = new
        return new

    async def delete_agent_memory(self, tenant_id: str, agent_id: str) -> None:
        self.deleted_agents.append((tenant_id, agent_id))
        self.core.pop((tenant_id, agent_id), None)


# ---- faults ---------------------------------------------------------------------------------


@contextmanager
def next_commit_fails(engine: Engine) -> Iterator[list[str]]:
    """The engine's next transaction commit raises (later ones, an undo's, succeed), and the
    block must raise it: TestClient re-raises what a real client sees as a 500."""
    from sqlalchemy import event

    fired: list[str] = []

    def fail(conn: object) -> None:
        if not fired:
            fired.append("commit")
            raise RuntimeError("injected: the commit failed")

    event.listen(engine, "commit", fail)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            yield fired
    finally:
        event.remove(engine, "commit", fail)


@contextmanager
def dies_before_commit(engine: Engine) -> Iterator[None]:
    """The next commit fails and no undo runs: what a process killed at that moment leaves
    (LanceDB has committed the write's rows, SQL has not)."""
    from agentmem_server.storage.sql.uow import Transaction

    async def no_undo(self: Transaction) -> None:
        self.undone = False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Transaction, "_run_undo", no_undo)
        with next_commit_fails(engine):
            yield


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Any ASGI app (e.g. `create_app(settings)` inside a test's wrapper) under a real uvicorn on
    a loopback port in this process; yields its URL. Patches made by the test apply to it."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "uvicorn failed to start"
            assert time.monotonic() < deadline, f"uvicorn did not start within {READY_TIMEOUT_S} s"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
