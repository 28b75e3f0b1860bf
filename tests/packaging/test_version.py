"""One version string: agentmem/_version.py. The package metadata, the server and the client's
User-Agent read it, and no other file in the repository spells it out."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import httpx

import agentmem
from agentmem._version import __version__
from agentmem_server import create_app

from support import make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_reads_the_version_from_the_client_package() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "agentmem._version.__version__"
    assert agentmem.__version__ == __version__


def test_server_and_user_agent_report_the_same_version(tmp_path: Path) -> None:
    assert create_app(make_settings(tmp_path)).version == __version__
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["user-agent"])
        return httpx.Response(200, json=[])

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        agentmem.Client(api_key="k", http_client=http).agents.list()
    assert seen == [f"agentmem-python/{__version__}"]


def test_no_other_tracked_file_spells_out_the_version() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    literal = re.compile(r"""["']v?""" + re.escape(__version__) + r"""["']""")
    allowed = {"agentmem/_version.py"}
    copies = []
    for name in tracked:
        path = REPO_ROOT / name
        if (
            name in allowed
            or not path.is_file()
            or path.suffix not in {".py", ".toml", ".cfg", ".md"}
        ):
            continue
        if literal.search(path.read_text(errors="replace")):
            copies.append(name)
    assert copies == [], f"the version is written out again in {copies}; import it instead"
