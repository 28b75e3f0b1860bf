"""constraints.txt pins every dependency pyproject.toml names, at a version it allows, so that
`make setup` on a new machine installs what CI tested."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    own = canonicalize_name(project["name"])
    named = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return [req for req in map(Requirement, named) if canonicalize_name(req.name) != own]


def test_every_dependency_is_pinned_at_a_version_pyproject_allows() -> None:
    pins = _pins()
    problems = []
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform (uvloop on Windows)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in constraints.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} is outside {req.specifier}")
    assert problems == [], "run `make constraints`: " + "; ".join(problems)


def test_the_torch_pin_matches_the_build_the_makefile_installs() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert f"TORCH ?= torch=={_pins()['torch']}+cpu" in makefile
