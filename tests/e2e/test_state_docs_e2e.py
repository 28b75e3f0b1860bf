"""Every `python` block of docs/state.md, run in order against a real server: the seed recipes
(000-003) side by side with agentmem are executable, not prose."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from pathlib import Path

import pytest

from support import ADMIN_KEY, create_key

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "state.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_page_has_a_recipe_for_every_seed():
    text = DOC.read_text()
    for seed in ("000", "001", "002", "003"):
        section = text.split(f"### {seed}:", 1)
        assert len(section) == 2, seed
        assert "```python" in section[1].split("\n### ", 1)[0], f"seed {seed} has no recipe"


def test_every_recipe_runs(start_server, monkeypatch: pytest.MonkeyPatch):
    server = start_server(admin_key=ADMIN_KEY)
    monkeypatch.setenv("AGENTMEM_API_KEY", create_key(server.env, "docs"))
    monkeypatch.setenv("AGENTMEM_BASE_URL", server.url)
    monkeypatch.setenv("ADMIN_KEY", ADMIN_KEY)
    found = blocks()
    assert len(found) >= 8
    for n, source in enumerate(found, 1):
        code = compile(
            source, f"docs/state.md block {n}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, {"__name__": f"docs_block_{n}"})  # noqa: S307 - our own docs
        if inspect.iscoroutine(result):  # a block with top-level `await` (the async seed)
            asyncio.run(result)
