"""`agentmem serve --dev-key` (what `make run` calls) prints a URL and a key that work, stably."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import agentmem

from support import READY_TIMEOUT_S, free_port, server_env

pytestmark = pytest.mark.e2e


def _serve_and_read_banner(
    env: dict[str, str], port: int, log: Path
) -> tuple[subprocess.Popen, str, str]:
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentmem_server.cli",
                "serve",
                "--dev-key",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        url = next((ln.split(": ", 1)[1] for ln in lines if ln.startswith("URL: ")), None)
        key = next((ln.split(": ", 1)[1] for ln in lines if ln.startswith("API key: ")), None)
        if url and key:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return proc, url, key
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(log.read_text())


def test_dev_key_is_printed_usable_and_reused_across_restarts(tmp_path: Path):
    env = server_env(tmp_path / "data", embedding_model="hash:384")
    port = free_port()
    proc, url, key = _serve_and_read_banner(env, port, tmp_path / "first.log")
    try:
        assert url == f"http://127.0.0.1:{port}"
        with agentmem.Client(api_key=key, base_url=url) as client:
            client.memory.update("core", "remember me", expected_updated_at=None)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    proc, _, key_again = _serve_and_read_banner(env, port, tmp_path / "second.log")
    try:
        assert key_again == key
        with agentmem.Client(api_key=key_again, base_url=url) as client:
            assert client.memory.get("core").content == "remember me"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path):
    env = server_env(tmp_path / "data")
    out = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "keys", "create", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    last = out.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("am_") and " " not in last and len(last) > 30
    listed = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "keys", "list", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert last[:10] in listed and last not in listed
