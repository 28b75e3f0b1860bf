"""Schemathesis over every operation of the OpenAPI document, against a real uvicorn server on
SQLite and on PostgreSQL: no answer is a 5xx, and every answer is one the document declares
(status, content type, body schema).

Bounded: `FUZZ_EXAMPLES` examples per operation and generation mode (positive and negative),
derandomized so `make test` is repeatable. `AGENTMEM_FUZZ_EXAMPLES=N` and
`AGENTMEM_FUZZ_SEED=random` explore further; `AGENTMEM_FUZZ_STATS=path.json` writes the counts
(requests, 5xx, per operation) and `AGENTMEM_FUZZ_COUNT_ONLY=1` only counts (to measure code
that fails the checks).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentmem_server import create_app

from support import ADMIN_KEY, auth, make_settings, new_tenant_key, serve_in_thread

pytestmark = pytest.mark.e2e

FUZZ_EXAMPLES = int(os.environ.get("AGENTMEM_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("AGENTMEM_FUZZ_SEED", "fixed") != "random"
COUNT_ONLY = os.environ.get("AGENTMEM_FUZZ_COUNT_ONLY") == "1"
STATS_PATH = os.environ.get("AGENTMEM_FUZZ_STATS")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _spec() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return create_app(make_settings(Path(tmp))).openapi()  # the document needs no lifespan


# Import bodies are JSON Lines: sent as the text schemathesis makes for them.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
# A live event stream never ends, so a fuzzed request to it would read forever; its bad input
# (422, 410) is tested in test_events_stream.py and test_events_log.py.
schema = schemathesis.openapi.from_dict(_spec()).exclude(path="/v1/events/stream")
STATS: dict[str, Counter] = {}


class Live:
    def __init__(self, url: str, key: str, backend: str):
        self.url, self.key, self.backend = url, key, backend
        self.session = requests.Session()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp / 'agentmem.db'}"
        yield from _serve(tmp, database_url, request.param)
    else:
        yield from _serve_postgres(request, tmp)


def _serve_postgres(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Live]:
    import secrets
    from urllib.parse import quote

    import sqlalchemy

    base = request.getfixturevalue("postgres_available")
    name = "t_" + secrets.token_hex(6)
    admin = sqlalchemy.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in base else "?"
    try:
        yield from _serve(tmp, f"{base}{sep}options={quote(f'-csearch_path={name}')}", "postgres")
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def _serve(tmp: Path, database_url: str, backend: str) -> Iterator[Live]:
    app = create_app(make_settings(tmp, database_url=database_url))
    with serve_in_thread(app) as url:
        live = Live(url, new_tenant_key(url, "fuzz"), backend)
        yield live
        live.session.close()


def _record(backend: str, operation: str, status: int) -> None:
    counts = STATS.setdefault(f"{backend} {operation}", Counter())
    counts["requests"] += 1
    counts["5xx"] += status >= 500


def teardown_module() -> None:
    if STATS_PATH:
        Path(STATS_PATH).write_text(
            json.dumps({k: dict(v) for k, v in sorted(STATS.items())}, indent=1)
        )


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_answer_is_declared(case: schemathesis.Case, live: Live) -> None:
    key = ADMIN_KEY if case.path.startswith("/v1/admin") else live.key
    response = case.call(base_url=live.url, session=live.session, headers=auth(key))
    _record(live.backend, f"{case.method} {case.path}", response.status_code)
    if not COUNT_ONLY:
        case.validate_response(response, checks=CHECKS)
