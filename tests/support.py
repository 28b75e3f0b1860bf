"""Small helpers importable from any test (`tests/` is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

from agentmem_server.settings import Settings

ADMIN_KEY = "admin-test-key"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings for an in-process app: temp data dir, the fast hash embedder, a known admin key."""
    values = dict(data_dir=tmp_path / "data", embedding_model="hash:384", admin_key=ADMIN_KEY)
    values.update(overrides)
    return Settings(**values)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
