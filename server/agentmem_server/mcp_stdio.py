"""`agentmem mcp`: the server's MCP tools over stdio, for desktop hosts that start a command.

    {"mcpServers": {"agentmem": {"command": "agentmem", "args": ["mcp"],
                                 "env": {"AGENTMEM_BASE_URL": "http://127.0.0.1:8765",
                                         "AGENTMEM_API_KEY": "am_..."}}}}

A relay, not a second implementation: it lists and calls the tools of a running server's `/mcp`
endpoint with the API key (the tenant) from the environment, so both transports offer exactly
the same tools, descriptions and errors. It loads no model and opens no database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Optional

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from agentmem import __version__
from agentmem._constants import DEFAULT_BASE_URL

REQUEST_TIMEOUT_S = 60.0
"""How long one relayed call may take (a recall over millions of lines stays far below it)."""


class RelayConfigError(Exception):
    """The environment does not say which server and key to use."""


def relay_target(base_url: Optional[str] = None, api_key: Optional[str] = None) -> tuple[str, str]:
    """(the `/mcp` URL, the API key), from the arguments or AGENTMEM_BASE_URL/AGENTMEM_API_KEY."""
    key = api_key or os.environ.get("AGENTMEM_API_KEY", "")
    if not key.strip():
        raise RelayConfigError(
            "set AGENTMEM_API_KEY to a tenant's API key (agentmem keys create --tenant NAME), "
            "and AGENTMEM_BASE_URL to the server's URL (default " + DEFAULT_BASE_URL + ")"
        )
    url = (base_url or os.environ.get("AGENTMEM_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return url + "/mcp", key.strip()


@asynccontextmanager
async def remote_client(url: str, api_key: str) -> AsyncIterator[Client]:
    """An official MCP client session on the server's `/mcp`, authenticated with `api_key`."""
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=httpx2.Timeout(REQUEST_TIMEOUT_S),
    ) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


def relay_server(remote: Client) -> Server[Any]:
    """An MCP server whose tools are `remote`'s: listed from it, each call forwarded to it
    (a tool error comes back as the same result, a protocol error as the same error)."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: Optional[types.PaginatedRequestParams]
    ) -> types.ListToolsResult:
        listed = await remote.list_tools(cursor=params.cursor if params else None)
        return types.ListToolsResult(tools=listed.tools, next_cursor=listed.next_cursor)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await remote.call_tool(params.name, params.arguments or {})

    return Server(
        "agentmem",
        version=__version__,
        title="agentmem memory",
        instructions=remote.session.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(base_url: Optional[str] = None, api_key: Optional[str] = None) -> None:
    """Relay the server's tools over this process's stdin/stdout until the host closes them."""
    url, key = relay_target(base_url, api_key)
    async with remote_client(url, key) as remote:
        server = relay_server(remote)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


def main(base_url: Optional[str] = None, api_key: Optional[str] = None) -> None:
    import anyio

    try:
        anyio.run(serve_stdio, base_url, api_key)
    except RelayConfigError as exc:
        print(f"agentmem mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
