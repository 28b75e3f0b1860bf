"""`agentmem mcp` as a desktop host runs it: the installed command over stdio, through the official
`mcp` client's stdio transport, relaying to a real `agentmem serve` with the key from the env."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from support import READY_TIMEOUT_S, ServerProcess, create_key

pytestmark = pytest.mark.e2e

AGENTMEM = str(Path(sys.executable).parent / "agentmem")


@asynccontextmanager
async def stdio_session(server: ServerProcess, key: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=AGENTMEM,
        args=["mcp"],
        env={"AGENTMEM_BASE_URL": server.url, "AGENTMEM_API_KEY": key},
    )
    async with Client(params) as client:
        yield client


async def call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.structured_content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_stdio_relay_serves_the_same_tools_errors_and_tenancy(start_server) -> None:
    server = start_server()
    owner, stranger = create_key(server.env, "owner"), create_key(server.env, "stranger")

    async with stdio_session(server, owner) as client:
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == {
            "recall_archival_memory",
            "append_archival_memory",
            "read_archival_memory",
            "read_core_memory",
            "update_core_memory",
            "list_thread_messages",
            "get_state",
            "set_state",
            "list_state",
            "delete_state",
        }
        assert all(t.input_schema["additionalProperties"] is False for t in tools)
        assert (
            client.session.instructions and "recall_archival_memory" in client.session.instructions
        )

        await call(client, "append_archival_memory", text="Ana prefers window seats")
        found = await call(client, "recall_archival_memory", query="window seats")
        assert found["matches"][0]["content"] == "Ana prefers window seats"
        created = await call(client, "update_core_memory", content="v1", expected_updated_at=None)
        await call(client, "set_state", key="k", value=[1, 2])
        assert (await call(client, "get_state", key="k"))["value"] == [1, 2]
        read = await call(client, "read_core_memory")
        assert (read["content"], read["updated_at"]) == ("v1", created["updated_at"])

        stale = await client.call_tool(
            "update_core_memory", {"content": "v2", "expected_updated_at": None}
        )
        assert stale.is_error
        assert stale.structured_content["error"]["current_content"] == "v1"  # type: ignore[index]
        missing = await client.call_tool("list_thread_messages", {"thread_id": "thr_none"})
        assert missing.is_error
        assert missing.structured_content["error"]["type"] == "not_found"  # type: ignore[index]
        with pytest.raises(MCPError, match="no tool named 'nope'"):
            await client.call_tool("nope", {})

    async with stdio_session(server, stranger) as client:
        assert (await call(client, "recall_archival_memory", query="window seats"))["matches"] == []
        assert (await call(client, "read_core_memory"))["exists"] is False
        assert (await call(client, "get_state", key="k"))["exists"] is False


def test_without_a_key_the_command_says_what_to_set(tmp_path: Path) -> None:
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [AGENTMEM, "mcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "AGENTMEM_API_KEY" in done.stderr
    assert done.stdout == ""  # stdout is the protocol's: nothing else may be written there
