"""History from the change feed through the public client: every core version, archival appends,
and the documented guarded revert; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import Client, ConflictError
from agentmem_server import create_app

from support import make_settings, new_tenant_key, serve_in_thread


@pytest.fixture
def served_url(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    with serve_in_thread(create_app(make_settings(tmp_path, database_url=database_url))) as url:
        yield url, new_tenant_key(url, "acme")


def test_core_history_keeps_every_version_and_the_documented_revert_works(
    served_url: tuple[str, str],
):
    url, key = served_url
    with Client(api_key=key, base_url=url) as client:
        first = client.memory.update("core", "v1", expected_updated_at=None, agent_id="bot")
        client.memory.update("core", "v2", expected_updated_at=first.updated_at, agent_id="bot")
        client.memory.append("core", "oops", agent_id="bot")
        client.memory.update("core", "user scope", expected_updated_at=None)  # another block

        versions = client.memory.history("core", agent_id="bot")
        assert [(v.action, v.content) for v in versions] == [
            ("append", "v2\noops"),
            ("update", "v2"),
            ("update", "v1"),
        ]
        assert versions[0].updated_at == client.memory.get("core", agent_id="bot").updated_at
        assert versions[-1].updated_at == first.updated_at
        assert [v.seq for v in versions] == sorted((v.seq for v in versions), reverse=True)
        assert len(client.memory.history("core", agent_id="bot", limit=1)) == 1

        # docs/events.md: revert the last write, guarded (a write in between makes it a 409).
        v = client.memory.history("core", limit=2, agent_id="bot")
        client.memory.update(
            "core", v[1].content, expected_updated_at=v[0].updated_at, agent_id="bot"
        )
        assert client.memory.get("core", agent_id="bot").content == "v2"
        with pytest.raises(ConflictError):
            client.memory.update(
                "core", v[1].content, expected_updated_at=v[0].updated_at, agent_id="bot"
            )

        archival = client.memory.history("archival", agent_id="bot")
        assert archival == []
        client.memory.append("archival", "a\nb", agent_id="bot")
        (appended,) = client.memory.history("archival", agent_id="bot")
        assert (appended.action, appended.content, appended.start_line, appended.end_line) == (
            "append",
            None,
            1,
            2,
        )
