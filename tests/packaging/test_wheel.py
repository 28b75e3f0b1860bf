"""The wheel as a user gets it: built from the committed tree, installed into a clean venv."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from agentmem._version import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ["fastapi", "typer", "uvicorn", "torch", "lancedb", "sqlalchemy", "numpy"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the tracked files only, so nothing untracked can sneak in."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    (built,) = (tmp / "dist").glob("*.whl")
    return built


def test_wheel_holds_the_client_and_server_but_no_evals(wheel: Path) -> None:
    assert wheel.name.startswith(f"agentmem_kit-{__version__}-py3-none-any")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
        metadata = email.message_from_bytes(
            archive.read(f"agentmem_kit-{__version__}.dist-info/METADATA")
        )
        entry_points = archive.read(f"agentmem_kit-{__version__}.dist-info/entry_points.txt")
    assert top_level == {"agentmem", "agentmem_server", f"agentmem_kit-{__version__}.dist-info"}
    assert metadata["Name"] == "agentmem-kit" and metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    base = sorted(
        r.split(">")[0].split("<")[0]
        for r in metadata.get_all("Requires-Dist") or []
        if "extra ==" not in r
    )
    assert base == ["httpx", "pydantic"]
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"server", "test", "lint", "bench", "dev"} <= extras
    assert b"agentmem = agentmem._cli:main" in entry_points


def test_clean_venv_gets_a_working_client_and_a_command_that_names_the_server_extra(
    wheel: Path, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, pip = env_dir / "bin" / "python", env_dir / "bin" / "pip"
    # pip's own configuration (here: the local package index) resolves httpx and pydantic.
    subprocess.run(
        [
            pip,
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            REPO_ROOT / "constraints.txt",
            wheel,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    probe = (
        "import importlib.util, sys, agentmem\n"
        "client = agentmem.Client(api_key='k')\n"
        "client.memory, client.agents, client.runs\n"
        f"absent = {SERVER_ONLY + ['evals']!r}\n"
        "print(agentmem.__version__, [m for m in absent if importlib.util.find_spec(m)])\n"
    )
    imported = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split(" ", 1) == [__version__, "[]\n"]

    command = subprocess.run(
        [env_dir / "bin" / "agentmem", "serve"], capture_output=True, text=True
    )
    assert command.returncode == 1
    assert "pip install 'agentmem-kit[server]'" in command.stderr
    assert "Traceback" not in command.stderr
