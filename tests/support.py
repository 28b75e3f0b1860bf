"""Small helpers importable from any test (`tests/` is on pytest's pythonpath)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from sqlalchemy import Engine, event

from agentmem_server.services.memory import MemoryService
from agentmem_server.settings import Settings

ADMIN_KEY = "admin-test-key"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings for an in-process app: temp data dir, the fast hash embedder, a known admin key."""
    values = dict(data_dir=tmp_path / "data", embedding_model="hash:384", admin_key=ADMIN_KEY)
    values.update(overrides)
    return Settings(**values)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server process: no AGENTMEM_* setting of ours leaks in, except the
    session's ONNX export folder (conftest), so servers do not export the model again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMEM_") or k == "AGENTMEM_ONNX_CACHE_DIR"}
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
        with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agentmem_server.cli", "serve", "--port", str(self.port), "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
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


@contextmanager
def next_commit_fails(engine: Engine) -> Iterator[list[str]]:
    """The engine's next transaction commit raises (later ones, an undo's, succeed), and the
    block must raise it: TestClient re-raises what a real client sees as a 500."""
    fired: list[str] = []

    def fail(conn) -> None:
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

    async def no_undo(self, tx) -> None:
        tx.undone = False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MemoryService, "_undo", no_undo)
        with next_commit_fails(engine):
            yield
