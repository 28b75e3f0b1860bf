"""Fixtures shared by the whole suite: PostgreSQL access, settings, in-process and real servers."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POSTGRES_URL = os.environ.get("AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_available() -> str:
    """The base PostgreSQL URL. Skips with the reason locally; in CI a missing server is a failure."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no PostgreSQL here"
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL} ({type(exc).__name__}); set AGENTMEM_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_available: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped afterwards, so parallel runs never collide."""
    import sqlalchemy

    schema = "t_" + secrets.token_hex(6)
    admin = sqlalchemy.create_engine(postgres_available)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_available else "?"
    yield f"{postgres_available}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agentmem.db'}"
    return request.getfixturevalue("postgres_url")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMEM_")}
    env["AGENTMEM_DATA_DIR"] = str(data_dir)
    for name, value in settings.items():
        env[f"AGENTMEM_{name.upper()}"] = value
    return env


def create_key(env: dict[str, str], tenant: str) -> str:
    """Through the real CLI, which prints the key alone on its last line."""
    out = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "keys", "create", "--tenant", tenant],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


class ServerProcess:
    """`agentmem serve` in a child process on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentmem_server.cli", "serve", "--port", str(self.port), "--log-level", "warning"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._log_path = log_path

    def wait_ready(self, timeout: float = 120.0) -> "ServerProcess":
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
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path):
    """Factory: start_server(**settings) -> ready ServerProcess; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **settings: str) -> ServerProcess:
        settings.setdefault("embedding_model", "hash:384")
        env = server_env(data_dir or tmp_path / "data", **settings)
        server = ServerProcess(env, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()
