"""The `agentmem` command as a newcomer meets it: keys land in the server's database or the command
says why not, the `Try:` line of `make run` works from anywhere, `eval` runs from the checkout."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from agentmem_server import create_app

from support import READY_TIMEOUT_S, auth, free_port, make_settings, server_env

CLI = [sys.executable, "-m", "agentmem_server.cli"]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=READY_TIMEOUT_S
    )


def _env_without_data_dir() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENTMEM_")}


def test_keys_in_a_folder_without_a_database_refuse_and_say_where_they_looked(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env_without_data_dir()
    for args in (["keys", "create", "--tenant", "acme"], ["keys", "list", "--tenant", "acme"]):
        result = _cli(args, env, elsewhere)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"No agentmem database at {elsewhere / '.agentmem' / 'agentmem.db'}" in result.stderr
        assert "AGENTMEM_DATA_DIR" in result.stderr
        assert "am_" not in result.stdout  # no key was made
    assert not (elsewhere / ".agentmem").exists()


def test_keys_name_the_database_they_use_and_the_server_knows_the_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = server_env(data_dir)
    created = _cli(["keys", "create", "--tenant", "acme"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    database = data_dir.resolve() / "agentmem.db"
    assert f"Database: sqlite:///{database} (new: created now)" in created.stderr
    key = created.stdout.strip().splitlines()[-1]

    listed = _cli(["keys", "list", "--tenant", "acme"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"Database: sqlite:///{database}\n" in listed.stderr and key[:10] in listed.stdout

    with TestClient(create_app(make_settings(tmp_path))) as http:  # the same data dir
        assert http.get("/v1/memory", headers=auth(key)).status_code == 200


def test_an_unknown_key_gets_a_401_that_says_what_to_check(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as http:
        response = http.get("/v1/memory", headers=auth("am_made_for_another_database"))
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert (
        "AGENTMEM_API_KEY" in message and "keys list" in message and "AGENTMEM_DATA_DIR" in message
    )


@pytest.mark.e2e
def test_the_try_line_of_make_run_works_outside_the_venv(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", embedding_model="hash:384")
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            CLI + ["serve", "--dev-key", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        try_line = None
        while time.monotonic() < deadline and proc.poll() is None:
            try_line = next(
                (ln for ln in log.read_text().splitlines() if ln.startswith("Try:")), None
            )
            if try_line:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert try_line, log.read_text()
        command = try_line.removeprefix("Try:").strip()
        # A newcomer's other shell: no venv on PATH, no AGENTMEM_* set, another folder.
        shell_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
        result = subprocess.run(
            ["sh", "-c", command],
            env=shell_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT_S,
        )
        assert result.returncode == 0, f"{shlex.quote(command)}\n{result.stdout}{result.stderr}"
        assert result.stdout.strip() == "[]"  # the new tenant has no memory yet
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_eval_runs_from_the_checkout_whatever_the_current_folder(tmp_path: Path) -> None:
    result = _cli(["eval", "--help"], _env_without_data_dir(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: agentmem eval" in result.stdout
