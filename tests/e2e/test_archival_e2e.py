"""Issue 3's "done when", end to end: a real server with the bundled MiniLM, thousands of archival
lines, paraphrased questions answered with the right line numbers, no tenant seeing another's
rows, and replaced or deleted text gone from every file of the data dir."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import agentmem

from support import create_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AGENT = "travel-agent"
LINES = 2400
FACTS = {
    # line number: (the line, a paraphrase that shares none of its content words)
    317: (
        "Maria, my sister, moved to Lisbon in May and now works as a nurse there.",
        "Which city did my sibling relocate to?",
    ),
    1234: ("Our dog Biscuit turned seven years old last week.", "How old is the family pet?"),
    2050: (
        "I get terribly seasick, so please never book me on a ferry.",
        "Can she handle travelling by ship?",
    ),
}
OLD_PHONE = "My old phone number was 0176-Qzvx-4471."
OLD_PHONE_LINE = 901


def filler(i: int) -> str:
    teams = ["finance", "design", "support", "platform", "sales", "legal"]
    chores = [
        "reviewed {n} invoices with the {team} team",
        "the {team} stand-up moved to room {n}",
        "archived {n} old tickets from the {team} queue",
        "ordered {n} notebooks for the {team} office",
        "drafted the {team} newsletter, section {n}",
    ]
    return f"day {i}: " + chores[i % len(chores)].format(n=i % 97, team=teams[i % len(teams)])


def archival_lines() -> list[str]:
    lines = [filler(i) for i in range(1, LINES + 1)]
    for number, (line, _) in FACTS.items():
        lines[number - 1] = line
    lines[OLD_PHONE_LINE - 1] = OLD_PHONE
    return lines


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def test_thousands_of_lines_recalled_isolated_and_deleted_without_a_trace(
    start_server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = start_server(
        data_dir=data, embedding_model="bundled:all-MiniLM-L6-v2", archival_version_grace_s="1"
    )
    lines = archival_lines()
    with (
        agentmem.Client(
            api_key=create_key(server.env, "acme"), base_url=server.url, timeout=300
        ) as acme,
        agentmem.Client(api_key=create_key(server.env, "globex"), base_url=server.url) as globex,
    ):
        for start in range(0, LINES, 200):  # agents append as they go, not in one request
            block = acme.memory.append(
                "archival", "\n".join(lines[start : start + 200]), agent_id=AGENT
            )
        assert block.line_count == LINES

        for number, (line, question) in FACTS.items():
            hits = acme.memory.recall(question, agent_id=AGENT, limit=3)
            found = [h for h in hits if h.line_number <= number <= h.end_line]
            assert found, (question, [(h.line_number, h.content[:60]) for h in hits])
            hit = found[0]
            assert hit.content.split("\n")[number - hit.line_number] == line
            assert (hit.scope, hit.agent_id, hit.block_type) == ("agent", AGENT, "archival")
            around = acme.memory.get("archival", agent_id=AGENT, start_line=number, end_line=number)
            assert around.content == line

            # Another tenant asking the same thing, for the same agent id, sees nothing of acme's.
            assert globex.memory.recall(question, agent_id=AGENT, limit=3) == []
        with pytest.raises(agentmem.NotFoundError):
            globex.memory.get("archival", agent_id=AGENT)

        # Editing a line out: recall stops finding it at once, the files lose it after the grace.
        current = acme.memory.get("archival", agent_id=AGENT)
        edited = list(lines)
        edited[OLD_PHONE_LINE - 1] = "My phone number is the one on my card."
        acme.memory.update(
            "archival", "\n".join(edited), agent_id=AGENT, expected_updated_at=current.updated_at
        )
        assert not any(
            "Qzvx" in h.content
            for h in acme.memory.recall("old phone number", agent_id=AGENT, limit=5)
        )
        deadline = time.monotonic() + 60
        while files_holding(data / "lance", b"Qzvx") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert files_holding(data / "lance", b"Qzvx") == [], (
            "the replaced line outlived the grace in the archival files"
        )

        acme.memory.delete("archival", agent_id=AGENT)
        assert acme.memory.recall(FACTS[317][1], agent_id=AGENT) == []
        with pytest.raises(agentmem.NotFoundError):
            acme.memory.get("archival", agent_id=AGENT)
    server.stop()  # SQLite folds its write-ahead log back into the database and removes it

    for needle in (b"Biscuit", b"Lisbon", b"seasick", b"Qzvx", b"biscuit", b"lisbon"):
        assert files_holding(data, needle) == [], needle


def test_cleanup_command_prunes_replaced_text_at_once(start_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data_dir=data)  # the default grace: ten minutes
    with agentmem.Client(api_key=create_key(server.env, "acme"), base_url=server.url) as client:
        client.memory.append(
            "archival", "the locker code is Wqpz-2231\nthe gym opens at six", agent_id="coach"
        )
        current = client.memory.get("archival", agent_id="coach")
        client.memory.update(
            "archival",
            "the gym opens at six",
            agent_id="coach",
            expected_updated_at=current.updated_at,
        )
    server.stop()
    assert files_holding(data / "lance", b"Wqpz"), (
        "kept for the grace, as other replicas may read it"
    )

    done = subprocess.run(
        [sys.executable, "-m", "agentmem_server.cli", "cleanup"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Pruned the old versions of 1 archival tables" in done.stdout
    assert files_holding(data, b"Wqpz") == []
    assert files_holding(data / "lance", b"gym opens at six")
