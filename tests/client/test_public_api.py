"""The public surface: strict sorted `__all__`s and a light import (the version:
tests/packaging)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import agentmem

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = [
    "fastapi",
    "torch",
    "lancedb",
    "sentence_transformers",
    "tiktoken",
    "numpy",
    "sqlalchemy",
    "agentmem_server",
]


def test_all_is_exactly_the_public_names_sorted() -> None:
    """As strict as httpx's test: every public name `import agentmem` defines is exported, in
    sorted order, and nothing private is (but `__version__`). A fresh interpreter, so names
    other tests' imports add to the package (submodules) do not count."""
    code = "import agentmem, json; print(json.dumps(list(vars(agentmem))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    public = [
        name for name in json.loads(out.stdout) if not name.startswith("_") or name == "__version__"
    ]
    assert agentmem.__all__ == sorted(public)


@pytest.mark.parametrize("package", ["agentmem.types", "agentmem.resources"])
def test_subpackage_all_is_exactly_its_public_names_sorted(package: str) -> None:
    """The same rule for the public subpackages; their modules (`agentmem.types.memory`) are
    reachable as attributes but are not names to import from the package."""
    code = (
        f"import json, types, {package} as p\n"
        "print(json.dumps([n for n, v in vars(p).items() if not isinstance(v, types.ModuleType)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    public = sorted(name for name in json.loads(out.stdout) if not name.startswith("_"))
    assert importlib.import_module(package).__all__ == public


def test_every_exported_name_resolves() -> None:
    for name in agentmem.__all__:
        assert getattr(agentmem, name) is not None, name
    assert isinstance(agentmem.types, types.ModuleType)


def test_policy_and_options_are_importable_from_the_top_level() -> None:
    from agentmem import MemoryPolicy, RunOptions

    assert RunOptions().memory_policy == MemoryPolicy()


def test_import_loads_no_server_or_ml_dependencies() -> None:
    code = (
        "import sys, agentmem\n"
        "client = agentmem.Client(api_key='k')\n"
        "client.memory, client.agents, client.runs, client.threads, client.admin\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
