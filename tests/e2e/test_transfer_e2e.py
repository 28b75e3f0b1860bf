"""Export a tenant from one real server, import it into another: same blocks, same recall."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import agentmem
from agentmem import MemoryPolicy, RunOptions

from support import ServerProcess, create_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTIONS = [
    "who is allergic to something?",
    "when is the dentist appointment?",
    "favourite programming language",
]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _fill(client: agentmem.Client) -> None:
    client.memory.update(
        "core", "- name: Priya\n- timezone: Europe/Berlin", expected_updated_at=None
    )
    client.memory.update(
        "core", "- answers in bullet points", expected_updated_at=None, agent_id="helper"
    )
    # Several appends of different sizes: the import must chunk them exactly as they were written.
    client.memory.append(
        "archival",
        "[2026-01-03] Priya: my son is allergic to peanuts\n\nsecond paragraph line",
        agent_id="helper",
    )
    client.memory.append(
        "archival",
        "\n".join(
            f"[2026-01-{d:02d}] Priya: note number {d} about the garden" for d in range(4, 30)
        ),
        agent_id="helper",
    )
    client.memory.append(
        "archival", "[2026-02-01] Priya: dentist appointment on March 3rd at 9am", agent_id="helper"
    )
    client.memory.append("archival", "I mostly write Rust these days, Python at work")
    # A thread no run has bound, with a title, metadata and a system message: exports used to
    # carry none of these in a form the strict import accepted.
    loose = client.threads.create(title="Lisbon trip", metadata={"user": "u_42"})
    client.threads.add_messages(
        loose.id,
        [
            {"role": "system", "content": "Answer in German."},
            {"role": "user", "content": "book a window seat"},
        ],
    )
    client.agents.create("helper", instructions="Be helpful.")
    client.agents.run(
        "helper",
        "what do you know about allergies?",
        options=RunOptions(memory_policy=MemoryPolicy(archival_mode="auto")),
    )


def _snapshot(client: agentmem.Client) -> dict:
    blocks = {
        (b.block_type, b.agent_id): (b.content, b.line_count)
        for scope in ("user", "agent")
        for b in client.memory.list(scope=scope, agent_id="helper" if scope == "agent" else None)
    }
    archival = {
        agent: client.memory.get("archival", agent_id=agent).content for agent in (None, "helper")
    }
    recalls = {
        (q, mode): [
            (r.content, r.line_number, r.end_line, r.scope, round(r.score, 5))
            for r in client.memory.recall(q, agent_id="helper", mode=mode, limit=5)
        ]
        for q in QUESTIONS
        for mode in ("vector", "keyword", "hybrid")
    }
    agents = [(a.id, a.instructions) for a in client.agents.list()]
    threads = [
        (
            t.agent_id,
            t.title,
            t.metadata,
            t.created_at,
            [(m.role, m.kind, m.content) for m in client.threads.messages(t.id, limit=1000)],
        )
        for t in client.threads.list(limit=100).data
    ]
    return {
        "blocks": blocks,
        "archival": archival,
        "recalls": recalls,
        "agents": agents,
        "threads": threads,
    }


def _fill_and_move(
    source: ServerProcess, source_key: str, target: ServerProcess, target_key: str, dump: Path
) -> tuple[dict, str, list[tuple[str, str]], str]:
    """Fills the source tenant and runs its agent once, then moves the tenant with the CLI
    (`export` from the source, `import` into the target tenant): (the source's snapshot, the
    run's thread id, its transcript, what `import` printed)."""
    with agentmem.Client(api_key=source_key, base_url=source.url) as client:
        _fill(client)
        thread = client.runs.get(client.agents.run("helper", "hello").id).thread_id
        transcript = [(m.role, m.content) for m in client.threads.messages(thread)]
        before = _snapshot(client)
    exported = _cli(
        source.env, "export", "--out", str(dump), "--base-url", source.url, "--api-key", source_key
    )
    assert exported.returncode == 0, exported.stderr
    imported = _cli(
        target.env, "import", str(dump), "--base-url", target.url, "--api-key", target_key
    )
    assert imported.returncode == 0, imported.stderr
    return before, thread, transcript, imported.stdout


def test_export_import_round_trip(start_server, tmp_path: Path):
    source = start_server(data_dir=tmp_path / "a", embedding_model="bundled:all-MiniLM-L6-v2")
    target = start_server(data_dir=tmp_path / "b", embedding_model="bundled:all-MiniLM-L6-v2")
    source_key, target_key = create_key(source.env, "acme"), create_key(target.env, "acme-moved")
    dump = tmp_path / "acme.jsonl"
    before, thread, transcript, imported = _fill_and_move(
        source, source_key, target, target_key, dump
    )
    assert "4 archival_lines" in imported

    with agentmem.Client(api_key=target_key, base_url=target.url) as client:
        after = _snapshot(client)
        assert [(m.role, m.content) for m in client.threads.messages(thread)] == transcript
    assert after == before

    again = _cli(target.env, "import", str(dump), "--base-url", target.url, "--api-key", target_key)
    assert again.returncode == 1 and "HTTP 409" in again.stderr


def test_export_then_import_into_a_second_tenant_of_the_same_server(start_server, tmp_path: Path):
    """Thread, message and run ids are server-wide: the copy gets ids of its own (the CLI lists
    them), both tenants read their own transcript, and nothing of one shows in the other. Before
    the strict import this answered 409 (an oracle of the other tenant's ids)."""
    server = start_server(data_dir=tmp_path / "a", embedding_model="bundled:all-MiniLM-L6-v2")
    source_key, target_key = create_key(server.env, "acme"), create_key(server.env, "acme-copy")
    before, thread, transcript, imported = _fill_and_move(
        server, source_key, server, target_key, tmp_path / "acme.jsonl"
    )
    renamed = dict(line.strip().split(" -> ") for line in imported.splitlines() if " -> " in line)
    assert thread in renamed, imported

    with agentmem.Client(api_key=target_key, base_url=server.url) as client:
        assert _snapshot(client) == before
        assert [(m.role, m.content) for m in client.threads.messages(renamed[thread])] == transcript
        with pytest.raises(agentmem.NotFoundError):
            client.threads.messages(thread)
    with agentmem.Client(api_key=source_key, base_url=server.url) as client:
        assert _snapshot(client) == before
        with pytest.raises(agentmem.NotFoundError):
            client.threads.messages(renamed[thread])
