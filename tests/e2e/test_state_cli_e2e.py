"""`agentmem state get|set|list|delete|sweep` against a real server and its database."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import agentmem

from support import READY_TIMEOUT_S, create_key

pytestmark = pytest.mark.e2e


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "state", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )


def test_state_commands_inspect_a_tenant(start_server):
    server = start_server(state_sweep_interval_s="0")
    key = create_key(server.env, "acme")
    env = {**server.env, "AGENTMEM_API_KEY": key, "AGENTMEM_BASE_URL": server.url}

    made = cli(env, "set", "cart", '{"items": 2}', "-n", "session/u1", "--ttl", "3600")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["value"] == {"items": 2}
    assert cli(env, "set", "note", "plain words", "--raw").returncode == 0
    not_json = cli(env, "set", "note", "plain words")
    assert not_json.returncode == 2 and "--raw" in not_json.stderr

    got = cli(env, "get", "cart", "--namespace", "session/u1")
    assert got.returncode == 0 and json.loads(got.stdout)["namespace"] == ["session", "u1"]
    assert json.loads(cli(env, "get", "note").stdout)["value"] == "plain words"
    missing = cli(env, "get", "cart")
    assert missing.returncode == 1 and "404" in missing.stderr

    listed = cli(env, "list", "-n", "session/u1")
    (line,) = listed.stdout.splitlines()
    assert line.split("\t")[0] == "cart" and line.split("\t")[2] != "-"

    assert cli(env, "delete", "cart", "-n", "session/u1").stdout.strip() == "Deleted."
    assert (
        cli(env, "delete", "cart", "-n", "session/u1").stdout.strip() == "There was no such entry."
    )
    bad = cli(env, "get", "k", "-n", "has space")
    assert bad.returncode == 1 and "namespace" in bad.stderr


def test_sweep_removes_expired_entries_from_the_database(start_server):
    server = start_server(state_sweep_interval_s="0")
    key = create_key(server.env, "acme")
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        client.state.set("gone", 1, ttl=0.001)
        client.state.set("kept", 1)
        deadline = time.monotonic() + 10
        while client.state.exists("gone") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not client.state.exists("gone")
    swept = cli(server.env, "sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.strip() == "Removed 1 expired state entries."
    assert cli(server.env, "sweep").stdout.strip() == "Removed 0 expired state entries."
