"""Several `agentmem serve` replicas on one PostgreSQL and one archival store (a shared folder, or
an S3-compatible server on loopback): any request may go to any replica, and nothing is lost,
stale or fought over (DESIGN §14, docs/deploy.md)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agentmem

from support import S3StandIn, ServerProcess, create_key

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

Replicas = Callable[..., list[ServerProcess]]


@pytest.fixture(scope="session")
def s3() -> Iterator[S3StandIn]:
    with S3StandIn() as server:
        yield server


def archival_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if kind == "folder":
        return {"archival_uri": str(tmp_path / "shared-lance")}
    s3: S3StandIn = request.getfixturevalue("s3")
    bucket = f"agentmem-{secrets.token_hex(6)}"
    s3.create_bucket(bucket)
    return s3.settings(bucket)


@pytest.fixture(params=["folder", "s3"])
def archival(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Archival settings shared by every replica of a test: a folder, or a fresh S3 bucket."""
    return archival_store(request.param, request, tmp_path)


@pytest.fixture
def archival_s3(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A fresh bucket on the S3 stand-in (tests whose point is object storage)."""
    return archival_store("s3", request, tmp_path)


@pytest.fixture
def replicas(
    postgres_url: str, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> Replicas:
    # postgres_url first: set up first, torn down last, after the servers stopped.
    """replicas(n, **settings) -> n ready servers on one PostgreSQL schema and archival store."""

    def start(n: int, **settings: str) -> list[ServerProcess]:
        settings = {"database_url": postgres_url, **settings}
        return [start_server(data_dir=tmp_path / f"replica-{i}", **settings) for i in range(n)]

    return start


def client(server: ServerProcess, key: str) -> agentmem.Client:
    return agentmem.Client(api_key=key, base_url=server.url, timeout=60, max_retries=0)


def recalled(c: agentmem.Client, query: str, **kwargs: Any) -> list[str]:
    return [r.content for r in c.memory.recall(query, mode="keyword", limit=50, **kwargs)]


def test_a_scope_deleted_and_recreated_on_one_replica_is_right_on_the_others(
    replicas: Replicas, archival: dict[str, str]
) -> None:
    """Failed before block-named tables: B served the deleted text from its cache, then 500
    (`Not found: .../_versions`) on every recall of the scope; and B's append after A re-created
    the scope dropped A's table, losing A's acknowledged lines from recall for good."""
    a, b = replicas(2, **archival)
    key = create_key(a.env, "acme")
    with client(a, key) as ca, client(b, key) as cb:
        ca.memory.append("archival", "the vault code is pelican\nlunch is at noon", agent_id="bot")
        for _ in range(3):  # B opens the table and copies it into memory
            assert any("pelican" in t for t in recalled(cb, "vault pelican", agent_id="bot"))
            recalled(cb, "vault pelican", agent_id="bot")
        ca.memory.delete("archival", agent_id="bot")
        for scope in ("agent", "all"):
            assert recalled(cb, "vault pelican", agent_id="bot", scope=scope) == []
        ca.memory.append("archival", "the new code is heron", agent_id="bot")
        cb.memory.append("archival", "dinner is at seven", agent_id="bot")
        for c in (ca, cb):
            text = c.memory.get("archival", agent_id="bot").content
            assert text == "the new code is heron\ndinner is at seven"
            assert any("heron" in t for t in recalled(c, "code heron", agent_id="bot"))
            assert any("seven" in t for t in recalled(c, "dinner seven", agent_id="bot"))
            assert not any(
                "pelican" in t for t in recalled(c, "vault pelican code", agent_id="bot")
            )


def test_a_write_on_one_replica_is_recalled_on_another_at_once(
    replicas: Replicas, archival_s3: dict[str, str]
) -> None:
    """Read-your-writes across replicas: failed before (B missed A's append for 0.4-1 s)."""
    a, b = replicas(2, **archival_s3)
    key = create_key(a.env, "acme")
    with client(a, key) as ca, client(b, key) as cb:
        ca.memory.append("archival", "warm up line", agent_id="bot")
        recalled(cb, "warm", agent_id="bot")
        for i in range(8):
            ca.memory.append("archival", f"fact number{i} is stored", agent_id="bot")
            assert any(f"number{i}" in t for t in recalled(cb, f"number{i}", agent_id="bot")), i
            cb.memory.append("archival", f"other fact other{i}", agent_id="bot")
            assert any(f"other{i}" in t for t in recalled(ca, f"other{i}", agent_id="bot")), i


def test_concurrent_appends_and_deletes_from_three_replicas_match_sql_after_each_phase(
    replicas: Replicas, archival: dict[str, str]
) -> None:
    """Appends racing a delete of their scope on another replica: failed before with 500s (the
    delete's table drop raced the append's index write: "Directory not empty" on a folder,
    "Not found" on S3) and left tables of deleted blocks behind."""
    servers = replicas(3, **archival)
    key = create_key(servers[0].env, "acme")
    agents = ["a1", "a2", "a3"]
    for phase in range(3):
        errors: list[BaseException] = []

        def work(n: int, phase: int = phase, errors: list[BaseException] = errors) -> None:
            try:
                with client(servers[n % 3], key) as c:
                    for i in range(6):
                        agent = agents[(n + i) % len(agents)]
                        c.memory.append(
                            "archival", f"p{phase} w{n} i{i} token{phase}x{n}x{i}", agent_id=agent
                        )
                    if n == phase:  # one writer per phase deletes a scope mid-way
                        c.memory.delete("archival", agent_id=agents[phase])
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        for server in servers:
            with client(server, key) as c:
                for agent in agents:
                    try:
                        lines = c.memory.get("archival", agent_id=agent).content.splitlines()
                    except agentmem.NotFoundError:
                        lines = []
                    found = c.memory.recall(
                        "token", agent_id=agent, scope="agent", mode="vector", limit=100
                    )
                    assert sorted(r.content for r in found) == sorted(lines), (server.url, agent)
                    starts = [r.line_number for r in found]
                    assert len(starts) == len(set(starts)), "no duplicate line range"
                    assert sorted(starts) == list(range(1, len(lines) + 1))


def test_recall_learns_it_is_current_without_reading_versions(
    replicas: Replicas, s3: S3StandIn
) -> None:
    """Failed before: the cache's staleness check listed every kept version (reading each one's
    manifest): 113-347 manifest GETs per recall on S3 after a few hundred writes. Now a recall
    reads no version at all unless SQL says the block changed, and then O(1) of them."""
    bucket = "agentmem-requests"
    s3.create_bucket(bucket)
    a, b = replicas(2, **s3.settings(bucket), archival_version_grace_s="3600")
    key = create_key(a.env, "acme")
    steady, after_write = {}, {}
    with client(a, key) as ca, client(b, key) as cb:
        written = 0
        for writes in (5, 40):
            while written < writes:
                written += 1
                ca.memory.append("archival", f"line {written} apple river", agent_id="bot")
            s3.wait_quiet()  # A's maintenance of the table is over: count B's recalls alone
            mark = s3.mark()
            recalled(cb, "apple", agent_id="bot")  # B learns of A's writes from SQL
            after_write[writes] = S3StandIn.version_requests(s3.since(mark))
            mark = s3.mark()
            for _ in range(10):
                cb.memory.recall("apple river", agent_id="bot", limit=5)
            steady[writes] = S3StandIn.version_requests(s3.since(mark)) / 10
    assert steady == {5: 0, 40: 0}, steady
    assert after_write[40] <= after_write[5] + 1 <= 4, after_write


def test_cleanup_while_replicas_serve_fails_no_recall(
    replicas: Replicas, archival_s3: dict[str, str]
) -> None:
    """`agentmem cleanup` prunes every old version while B reads: failed before (a recall on a
    pruned version got a LanceDB not-found error). Now B reads the table again."""
    a, b = replicas(2, **archival_s3)
    key = create_key(a.env, "acme")
    errors: list[BaseException] = []
    done = threading.Event()
    with client(a, key) as ca, client(b, key) as cb:
        for i in range(10):
            ca.memory.append(
                "archival", f"note {i} about the harbor\nline two of note {i}", agent_id="bot"
            )
        assert recalled(cb, "harbor", agent_id="bot")

        def reader() -> None:
            with client(b, key) as c:
                while not done.is_set():
                    try:
                        for mode in ("keyword", "hybrid", "vector"):
                            assert c.memory.recall(
                                "harbor note", agent_id="bot", mode=mode, limit=5
                            )
                    except BaseException as exc:  # surfaced below
                        errors.append(exc)
                        return

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for _ in range(2):
                out = subprocess.run(
                    [sys.executable, "-m", "agentmem_server.cli", "cleanup"],
                    env=a.env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert out.returncode == 0, out.stderr
                ca.memory.append("archival", "one more harbor line", agent_id="bot")
        finally:
            done.set()
            thread.join()
        assert not errors, errors[:1]
        assert len(recalled(cb, "harbor", agent_id="bot")) == 12
