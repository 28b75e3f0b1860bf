"""Many concurrent archival appends to one scope: all succeed, with disjoint line ranges.

More concurrent requests than the server has worker threads: a write transaction that must wait
for a free thread to commit while the waiters hold every thread would stall until SQLite's busy
timeout (or forever on PostgreSQL row locks).
"""

from __future__ import annotations

import threading

import pytest

import agentmem

from support import create_key, in_threads

pytestmark = pytest.mark.e2e

CLIENTS = 16
APPENDS = 5


def test_concurrent_appends_to_one_scope_all_land(start_server, server_database):
    server = start_server(**server_database)
    key = create_key(server.env, "acme")
    ranges: list[tuple[int, int]] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        with agentmem.Client(api_key=key, base_url=server.url, timeout=20, max_retries=0) as client:
            for i in range(APPENDS):
                block = client.memory.append(
                    "archival", f"writer {n} line {i}a\nwriter {n} line {i}b", agent_id="busy"
                )
                with lock:
                    ranges.append((block.start_line, block.end_line))

    in_threads(CLIENTS, writer)
    lines = sorted(line for a, b in ranges for line in range(a, b + 1))
    assert lines == list(range(1, CLIENTS * APPENDS * 2 + 1))
    with agentmem.Client(api_key=key, base_url=server.url) as client:
        text = client.memory.get("archival", agent_id="busy").content.splitlines()
        assert sorted(text) == sorted(
            f"writer {n} line {i}{s}" for n in range(CLIENTS) for i in range(APPENDS) for s in "ab"
        )
        assert client.memory.recall("writer 7 line 3a", agent_id="busy", mode="keyword", limit=1)
