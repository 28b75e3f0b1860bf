"""A server refuses vectors from another model; `agentmem reindex` re-embeds and recall works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import agentmem

from support import ServerProcess, create_key, server_env

pytestmark = pytest.mark.e2e


def test_model_switch_needs_reindex(start_server, tmp_path: Path):
    data = tmp_path / "data"
    first = start_server(data_dir=data, embedding_model="hash:384")
    key = create_key(first.env, "acme")
    with agentmem.Client(api_key=key, base_url=first.url) as client:
        client.memory.append(
            "archival",
            "the spare key is under the blue flowerpot\nthe wifi password is on the fridge",
            agent_id="home",
        )
    first.stop()

    env = server_env(data, embedding_model="hash:256")
    refused = ServerProcess(env, tmp_path / "refused.log")
    with pytest.raises(RuntimeError) as info:
        refused.wait_ready()
    assert "agentmem reindex" in str(info.value)

    done = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "reindex"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Re-embedded 2 index rows" in done.stdout  # one line unit per line

    second = start_server(data_dir=data, embedding_model="hash:256")
    with agentmem.Client(api_key=key, base_url=second.url) as client:
        hits = client.memory.recall("spare key flowerpot", agent_id="home", mode="vector")
    assert hits and "flowerpot" in hits[0].content
