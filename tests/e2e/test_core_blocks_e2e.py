"""Core blocks through the public client against real `agentmem serve` processes."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentmem
from agentmem import ConflictError, NotFoundError

from support import clients_on, count_retries, create_key

pytestmark = pytest.mark.e2e

WRITERS = 16
INCREMENTS = 25
AGENT = "counter-agent"


def test_create_read_conflict_update(start_server):
    server = start_server()
    key = create_key(server.env, "acme")
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        with pytest.raises(NotFoundError):
            client.memory.get("core")
        created = client.memory.update("core", "- prefers tea", expected_updated_at=None)
        assert client.memory.get("core").content == "- prefers tea"

        updated = client.memory.update(
            "core", "- prefers coffee", expected_updated_at=created.updated_at
        )
        with pytest.raises(ConflictError) as info:
            client.memory.update(
                "core", "- lost update", expected_updated_at=created.updated_at.isoformat()
            )
        assert info.value.current_updated_at == updated.updated_at
        assert client.memory.get("core").content == "- prefers coffee"

        added = client.memory.modify("core", lambda text: text + "\n- works in Oslo")
        assert (
            added.content == "- prefers coffee\n- works in Oslo"
            and added.updated_at > updated.updated_at
        )


def _increment(client: agentmem.Client) -> int:
    """One guarded read-modify-write increment of the agent's core block; how many tries it
    took."""
    tries = 0

    def bump(text: str) -> str:
        nonlocal tries
        tries += 1
        return str(int(text or "0") + 1)

    client.memory.modify("core", bump, agent_id=AGENT, max_attempts=10_000)
    return tries


def test_concurrent_guarded_increments_lose_no_update(start_server, server_database):
    server = start_server(**server_database)
    with clients_on([server], create_key(server.env, "counter"), WRITERS) as clients:
        conflicts = count_retries(clients, _increment, INCREMENTS)
        assert clients[0].memory.get("core", agent_id=AGENT).content == str(WRITERS * INCREMENTS)
        # Proves the test really raced: with no contention the guard would never have been
        # exercised.
        assert conflicts > 0


@pytest.mark.postgres
def test_two_server_processes_on_one_postgres_lose_no_update(
    start_server, postgres_url: str, tmp_path: Path
):
    first = start_server(data_dir=tmp_path / "replica-1", database_url=postgres_url)
    second = start_server(data_dir=tmp_path / "replica-2", database_url=postgres_url)
    with clients_on([first, second], create_key(first.env, "shared"), WRITERS) as clients:
        conflicts = count_retries(clients, _increment, INCREMENTS)
        assert clients[-1].memory.get("core", agent_id=AGENT).content == str(WRITERS * INCREMENTS)
        assert conflicts > 0
