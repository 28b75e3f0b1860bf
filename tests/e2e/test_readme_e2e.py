"""Every Python block of README.md runs, in order, against a real server with the real model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import create_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks(README.read_text())) >= 3


def test_readme_python_blocks_run_against_a_real_server(start_server, tmp_path: Path):
    server = start_server(embedding_model="bundled:all-MiniLM-L6-v2")
    env = dict(
        server.env, AGENTMEM_API_KEY=create_key(server.env, "readme"), AGENTMEM_BASE_URL=server.url
    )
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n\n".join(python_blocks(README.read_text())))
    for attempt in range(2):  # the second pass proves the tour can be re-run on the same server
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"pass {attempt + 1}:\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "someone wrote first" in out
    assert "- Prefers aisle seats\n- Vegetarian meals" in out
    # The paraphrased question (no shared keyword) must find the seasickness line first.
    first_hit = next(line for line in out.splitlines() if re.match(r"^\d\.\d\d  line \d+", line))
    assert "seasick" in first_hit and "line 2" in first_hit
