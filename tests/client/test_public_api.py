"""The public surface: strict sorted `__all__`s and a light import (the version:
tests/packaging)."""

from __future__ import annotations

import importlib
import json
import types

import pytest

import agentmem

from support import fresh_python

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
    out = fresh_python("import agentmem, json; print(json.dumps(list(vars(agentmem))))")
    public = [name for name in json.loads(out) if not name.startswith("_") or name == "__version__"]
    assert agentmem.__all__ == sorted(public)


@pytest.mark.parametrize("package", ["agentmem.types", "agentmem.resources"])
def test_subpackage_all_is_exactly_its_public_names_sorted(package: str) -> None:
    """The same rule for the public subpackages; their modules (`agentmem.types.memory`) are
    reachable as attributes but are not names to import from the package."""
    code = (
        f"import json, types, {package} as p\n"
        "print(json.dumps([n for n, v in vars(p).items() if not isinstance(v, types.ModuleType)]))"
    )
    public = sorted(name for name in json.loads(fresh_python(code)) if not name.startswith("_"))
    assert importlib.import_module(package).__all__ == public


def test_every_exported_name_resolves() -> None:
    for name in agentmem.__all__:
        assert getattr(agentmem, name) is not None, name
    assert isinstance(agentmem.types, types.ModuleType)


def test_policy_and_options_are_importable_from_the_top_level() -> None:
    from agentmem import MemoryPolicy, RunOptions

    assert RunOptions().memory_policy == MemoryPolicy()


def test_import_loads_no_server_or_ml_dependencies() -> None:
    """Each heavy module the client's import pulls in is named with the import chain that
    brought it, and one already there when the interpreter started (a .pth file) too."""
    code = f"""
import json, sys, traceback
heavy = {HEAVY_MODULES!r}
found = {{m: "loaded at interpreter start" for m in heavy if m in sys.modules}}

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in heavy and name.split(".")[0] not in found:
            stack = [f for f in traceback.extract_stack()[:-1] if "<frozen" not in f.filename]
            found[name.split(".")[0]] = "".join(traceback.format_list(stack[-12:]))
        return None

sys.meta_path.insert(0, Spy())
import agentmem
client = agentmem.Client(api_key="k")
client.memory, client.agents, client.runs, client.threads, client.admin, client.state
client.close()
print(json.dumps(found))
"""
    found = json.loads(fresh_python(code))
    assert found == {}, "\n".join(f"{m}:\n{how}" for m, how in found.items())
