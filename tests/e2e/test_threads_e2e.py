"""Threads through a real server (`agentmem serve` in a child process): paging while other clients
write, compaction that forgets nothing (a fact from a compacted turn is recalled and injected by
an `auto` run, with the real model), and docs/threads.md's examples, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentmem import Client, MemoryPolicy, RunOptions

from support import create_key

pytestmark = [pytest.mark.e2e]

DOC = Path(__file__).resolve().parents[2] / "docs" / "threads.md"

WRITERS = 4
BATCHES = 15
BATCH = 5
RUNS = 5


def test_paging_forward_while_others_write_sees_every_message_once_in_order(
    start_server, server_database
):
    server = start_server(**server_database)
    key = create_key(server.env, "acme")
    with Client(api_key=key, base_url=server.url) as client:
        thread = client.threads.create(title="busy")
        written: list[list[str]] = [[] for _ in range(WRITERS)]
        errors: list[BaseException] = []
        done = threading.Event()

        def write(w: int) -> None:
            try:
                with Client(api_key=key, base_url=server.url) as own:
                    for b in range(BATCHES):
                        batch = [
                            {"role": "user", "content": f"w{w} b{b} m{i}"} for i in range(BATCH)
                        ]
                        written[w] += [m.id for m in own.threads.add_messages(thread.id, batch)]
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        client.agents.create("busy")
        run_ids: list[str] = []

        def run() -> None:
            # Runs append too (their user message and answer), binding the agent-less thread.
            try:
                with Client(api_key=key, base_url=server.url) as own:
                    for k in range(RUNS):
                        run_ids.append(own.agents.run("busy", f"run {k}", thread_id=thread.id).id)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        writers.append(threading.Thread(target=run))
        for t in writers:
            t.start()

        def watch() -> None:
            for t in writers:
                t.join()
            done.set()

        threading.Thread(target=watch).start()
        seen: list[str] = []
        contents: list[str] = []
        after = None
        while True:
            finished = done.is_set()  # read before the page: a page after the end holds the rest
            page = client.threads.messages(thread.id, limit=7, after=after)
            seen += [m.id for m in page]
            contents += [m.content for m in page]
            if page:
                after = page[-1].id
            elif finished:
                break

        assert errors == []
        total = WRITERS * BATCHES * BATCH + 2 * RUNS
        assert len(seen) == total and len(set(seen)) == total, "no message twice, none missed"
        added = {i for ids in written for i in ids}
        assert added <= set(seen)
        ran = [m for m in client.threads.messages(thread.id, limit=1000) if m.id not in added]
        assert sorted({m.run_id for m in ran}) == sorted(run_ids)
        assert [m.content for m in ran if m.role == "user"] == [f"run {k}" for k in range(RUNS)]
        assert seen == [m.id for m in client.threads.messages(thread.id, limit=1000)]
        # A batch is written all at once and each writer's batches in order.
        for w in range(WRITERS):
            mine = [c for c in contents if c.startswith(f"w{w} ")]
            assert mine == [f"w{w} b{b} m{i}" for b in range(BATCHES) for i in range(BATCH)]
            first = contents.index(f"w{w} b0 m0")
            for b in range(BATCHES):
                at = contents.index(f"w{w} b{b} m0")
                assert contents[at : at + BATCH] == [f"w{w} b{b} m{i}" for i in range(BATCH)]
            assert first >= 0


@pytest.mark.slow
def test_a_fact_from_a_compacted_turn_is_recalled_and_injected_by_an_auto_run(start_server):
    server = start_server(embedding_model="bundled:all-MiniLM-L6-v2")
    with Client(api_key=create_key(server.env, "acme"), base_url=server.url) as client:
        client.agents.create("helper")
        first = client.agents.run("helper", "Remember this: the gate code for the garage is 7391.")
        thread_id = first.thread_id
        for topic in (
            "the weather in Oslo",
            "a good pasta recipe",
            "the rules of chess",
            "jazz records",
        ):
            client.agents.run("helper", f"Tell me about {topic}.", thread_id=thread_id)

        result = client.threads.compact(thread_id, keep_last=2)
        assert result.compacted == 8 and result.summary is not None
        transcript = client.threads.messages(thread_id)
        assert [m.kind for m in transcript] == ["summary", "message", "message"]
        assert not any("7391" in m.content for m in transcript[1:])
        # The offline provider's extractive summary keeps the most informative user sentence.
        assert "7391" in result.summary.content

        archival = client.memory.get("archival", agent_id="helper").content
        assert re.search(
            r"^\[\d{4}-\d\d-\d\d \d\d:\d\d UTC\] user: Remember this: the gate code", archival, re.M
        )

        auto = RunOptions(memory_policy=MemoryPolicy(archival_mode="auto"))
        answer = client.agents.run(
            "helper", "What is the code for the garage gate?", thread_id=thread_id, options=auto
        )
        assert any("7391" in m.content for m in answer.recalled)
        run = client.runs.get(answer.id)
        reminder = [
            m.content
            for m in run.model_input
            if m.role == "system" and "<system_reminder>" in (m.content or "")
        ]
        assert reminder and "7391" in reminder[0]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_docs_threads_examples_run_against_a_real_server(start_server, tmp_path: Path):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 2
    server = start_server(embedding_model="bundled:all-MiniLM-L6-v2")
    env = dict(
        server.env, AGENTMEM_API_KEY=create_key(server.env, "docs"), AGENTMEM_BASE_URL=server.url
    )
    script = tmp_path / "threads_blocks.py"
    script.write_text("\n\n".join(blocks))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "['user', 'assistant', 'user', 'assistant']" in done.stdout
    assert "4 messages compacted; 4 archival lines" in done.stdout
