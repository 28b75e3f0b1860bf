"""Core blocks through the public client against real `agentmem serve` processes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import agentmem
from agentmem import ConflictError, NotFoundError

from support import create_key

pytestmark = pytest.mark.e2e

WRITERS = 16
INCREMENTS = 25


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


def _hammer(clients: list[agentmem.Client], agent_id: str) -> int:
    """16 threads × 25 guarded read-modify-write increments, spread round-robin over `clients`."""
    conflicts = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(client: agentmem.Client) -> None:
        nonlocal conflicts
        try:
            for _ in range(INCREMENTS):
                attempts = 0

                def bump(text: str) -> str:
                    nonlocal attempts
                    attempts += 1
                    return str(int(text or "0") + 1)

                client.memory.modify("core", bump, agent_id=agent_id, max_attempts=10_000)
                with lock:
                    conflicts += attempts - 1
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(clients[i % len(clients)],)) for i in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return conflicts


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_guarded_increments_lose_no_update(
    start_server, request, tmp_path: Path, backend: str
):
    settings = (
        {} if backend == "sqlite" else {"database_url": request.getfixturevalue("postgres_url")}
    )
    server = start_server(**settings)
    key = create_key(server.env, "counter")
    clients = [agentmem.Client(api_key=key, base_url=server.url) for _ in range(WRITERS)]
    try:
        conflicts = _hammer(clients, "counter-agent")
        assert clients[0].memory.get("core", agent_id="counter-agent").content == str(
            WRITERS * INCREMENTS
        )
        # Proves the test really raced: with no contention the guard would never have been
        # exercised.
        assert conflicts > 0
    finally:
        for c in clients:
            c.close()


@pytest.mark.postgres
def test_two_server_processes_on_one_postgres_lose_no_update(
    start_server, postgres_url: str, tmp_path: Path
):
    first = start_server(data_dir=tmp_path / "replica-1", database_url=postgres_url)
    second = start_server(data_dir=tmp_path / "replica-2", database_url=postgres_url)
    key = create_key(first.env, "shared")
    clients = [
        agentmem.Client(api_key=key, base_url=s.url)
        for s in (first, second)
        for _ in range(WRITERS // 2)
    ]
    try:
        conflicts = _hammer(clients, "counter-agent")
        assert clients[-1].memory.get("core", agent_id="counter-agent").content == str(
            WRITERS * INCREMENTS
        )
        assert conflicts > 0
    finally:
        for c in clients:
            c.close()
