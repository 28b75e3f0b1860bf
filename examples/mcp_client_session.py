"""An MCP client session against agentmem: list the memory tools and call them.

    export AGENTMEM_BASE_URL=http://127.0.0.1:8765 AGENTMEM_API_KEY=am_...
    python examples/mcp_client_session.py

This is what an MCP host (Claude Desktop, an IDE, your own agent) does with agentmem's `/mcp`
endpoint, written with the official `mcp` SDK (installed with `agentmem-kit[server]`). The one
line of configuration is the URL plus the tenant's key as a Bearer token. docs/mcp.md has the
host snippets, including `agentmem mcp` for hosts that start a stdio command.
"""

from __future__ import annotations

import asyncio
import json
import os

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    base_url = os.environ.get("AGENTMEM_BASE_URL", "http://127.0.0.1:8765").rstrip("/")
    key = os.environ["AGENTMEM_API_KEY"]
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(base_url + "/mcp", http_client=http)) as mcp:
            tools = (await mcp.list_tools()).tools
            print("tools:", ", ".join(t.name for t in tools))

            await mcp.call_tool(
                "append_archival_memory",
                {"text": "Ana prefers a window seat\nAna's sister lives in Porto"},
            )
            found = await mcp.call_tool(
                "recall_archival_memory", {"query": "where to sit", "limit": 1}
            )
            print("recalled:", found.structured_content["matches"][0]["content"])

            core = (await mcp.call_tool("read_core_memory", {})).structured_content
            written = await mcp.call_tool(
                "update_core_memory",
                {"content": "Name: Ana\nSeat: window", "expected_updated_at": core["updated_at"]},
            )
            print("core updated at:", written.structured_content["updated_at"])

            # A stale write (someone changed the block since it was read) writes nothing and
            # hands back what is there now, so the model can merge and try again.
            stale = await mcp.call_tool(
                "update_core_memory",
                {"content": "Name: Ana", "expected_updated_at": core["updated_at"]},
            )
            print(
                "stale write refused:",
                stale.is_error,
                json.dumps(stale.structured_content["error"]["type"]),
            )


if __name__ == "__main__":
    asyncio.run(main())
