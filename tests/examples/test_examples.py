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


def test_state_handoff(start_server) -> None:
    server = start_server()
    out = run_example("state_handoff.py", server, create_key(server.env, "acme"))
    assert "status: written" in out
    assert "draft: Go to Porto in May, 900 EUR." in out
    writers = out.split("writers: ", 1)[1]
    # Exactly one writer takes the work; the other sees it taken (or loses the guarded claim).
    assert writers.count("wrote the draft") == 1
    assert "found it taken" in writers or "lost the claim" in writers


@pytest.mark.slow
def test_langgraph_agent(start_server) -> None:
    from agentmem_server.settings import DEFAULT_EMBEDDING_MODEL

    server = start_server(embedding_model=DEFAULT_EMBEDDING_MODEL)
    out = run_example("langgraph_agent.py", server, create_key(server.env, "acme"))
    assert "agent: Noted: a window seat, and no mushrooms." in out
    assert "model was told: - I prefer a window seat" in out
    assert "agent: You like a window seat, so I picked 14A." in out
    assert "memories stored: ['I avoid mushrooms', 'I prefer a window seat']" in out
