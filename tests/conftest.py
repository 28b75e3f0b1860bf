"""Fixtures shared by the whole suite: PostgreSQL access, settings, in-process and real servers."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from support import ServerProcess, server_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# One ONNX export of the bundled model for the whole run (~30 s), shared by in-process embedders
# and server processes (support.server_env passes it on), and not left in the user's ~/.cache.
_SESSION_ONNX_CACHE = None
if "AGENTMEM_ONNX_CACHE_DIR" not in os.environ:
    _SESSION_ONNX_CACHE = tempfile.mkdtemp(prefix="agentmem-test-onnx-")
    os.environ["AGENTMEM_ONNX_CACHE_DIR"] = _SESSION_ONNX_CACHE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SESSION_ONNX_CACHE:
        shutil.rmtree(_SESSION_ONNX_CACHE, ignore_errors=True)


POSTGRES_URL = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_available() -> str:
    """The base PostgreSQL URL. Skips with the reason locally; in CI a missing server is a
    failure."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no PostgreSQL here"
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(
            f"PostgreSQL unreachable at {POSTGRES_URL} ({type(exc).__name__}); "
            "set AGENTMEM_TEST_POSTGRES_URL"
        )
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_available: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped afterwards, so parallel runs never
    collide."""
    import sqlalchemy

    schema = "t_" + secrets.token_hex(6)
    admin = sqlalchemy.create_engine(postgres_available)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_available else "?"
    yield f"{postgres_available}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agentmem.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for `start_server`, once for a server on its own SQLite file (the default) and
    once on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("postgres_url")}


@pytest.fixture
def start_server(tmp_path: Path):
    """Factory: start_server(**settings) -> ready ServerProcess; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **settings: str) -> ServerProcess:
        settings.setdefault("embedding_model", "hash:384")
        env = server_env(data_dir or tmp_path / "data", **settings)
        server = ServerProcess(env, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()
