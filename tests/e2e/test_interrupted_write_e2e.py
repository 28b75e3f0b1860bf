"""A real server started on a data dir left by a process killed mid-append repairs the index."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import text

import agentmem
from agentmem_server import create_app
from agentmem_server.embedding import BUNDLED_MINILM

from support import ADMIN_KEY, dies_before_commit, make_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_server_start_drops_the_chunks_of_an_append_that_never_committed(
    start_server, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, embedding_model=BUNDLED_MINILM)
    with TestClient(create_app(settings)) as http:
        key = http.post(
            "/v1/admin/tenants/acme/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).json()["key"]
        h = {"Authorization": f"Bearer {key}"}
        http.post("/v1/memory/archival/append?agent_id=a1", json={"text": "one\ntwo"}, headers=h)
        engine = http.app.state.services.sql.engine
        with dies_before_commit(engine):
            http.post(
                "/v1/memory/archival/append?agent_id=a1",
                json={"text": "the secret word is pineapple"},
                headers=h,
            )
        body = {"query": "secret word pineapple", "agent_id": "a1", "mode": "keyword"}
        # Never recalled, even before any repair: the write never committed.
        assert http.post("/v1/memory/recall", json=body, headers=h).json() == []

    # The crash was a moment ago: no grace period, the server repairs it before it serves.
    server = start_server(data_dir=settings.data_dir, embedding_model=BUNDLED_MINILM)
    engine = sqlalchemy.create_engine(settings.resolved_database_url())
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM archival_writes_in_flight")).scalar_one() == 0
        )
    engine.dispose()
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        assert client.memory.recall("secret word pineapple", agent_id="a1", mode="keyword") == []
        assert client.memory.get("archival", agent_id="a1").content == "one\ntwo"
        assert [
            hit.line_number
            for hit in client.memory.recall("one two", agent_id="a1", mode="keyword")
        ] == [1]
    engine = sqlalchemy.create_engine(settings.resolved_database_url())
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM archival_writes_in_flight")).scalar_one() == 0
        )
    engine.dispose()
