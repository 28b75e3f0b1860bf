"""Every script in examples/ runs to completion against a real `agentmem serve`, configured the
way its docstring says (AGENTMEM_BASE_URL / AGENTMEM_API_KEY), and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import create_key

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, server, key: str) -> str:
    env = {**server.env, "AGENTMEM_BASE_URL": server.url, "AGENTMEM_API_KEY": key}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_mcp_client_session(start_server) -> None:
    server = start_server()
    out = run_example("mcp_client_session.py", server, create_key(server.env, "acme"))
    assert "tools: recall_archival_memory, append_archival_memory" in out
    assert "recalled: Ana prefers a window seat" in out
    assert 'stale write refused: True "conflict"' in out
