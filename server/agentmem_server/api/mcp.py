"""The Model Context Protocol endpoint at `/mcp`: agentmem's memory tools for MCP hosts.

    {"mcpServers": {"agentmem": {"url": "http://127.0.0.1:8765/mcp",
                                 "headers": {"Authorization": "Bearer am_..."}}}}

Streamable HTTP, stateless and answering in JSON: each POST carries one message and is served on
its own, so any replica answers any call and nothing is held between calls. The caller is the
tenant of its API key, found by `api/access.py` exactly as for `/v1` (same rate limits, same
throttling of failed keys); no key or an unknown key answers 401 before MCP sees the request.
The tools are `services/mcp_tools.py`, called in-process on the same services as the REST routes.
Errors: a failed call (bad arguments, a refused write) is a tool result with `isError` whose
structured content says what went wrong; an unknown tool is a JSON-RPC error (invalid params).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Optional

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from agentmem import __version__

from ..services.mcp_tools import McpTools, ToolFailure
from .errors import error_response

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..services.container import Services

MCP_PATH = "/mcp"

INSTRUCTIONS = (
    "agentmem is long-term memory. Before answering anything that may depend on earlier "
    "conversations, call recall_archival_memory. Save lasting facts with append_archival_memory. "
    "The core memory block is a short profile: read it with read_core_memory and change it with "
    "update_core_memory, passing the updated_at you read."
)


def _tenant_of(ctx: ServerRequestContext[Any, Any]) -> str:
    request = ctx.request
    tenant_id = getattr(request.state, "tenant_id", None) if isinstance(request, Request) else None
    if not isinstance(tenant_id, str):
        # McpEndpoint refuses unauthenticated requests before MCP runs; this is a transport
        # that reached the tools some other way.
        raise MCPError(types.INVALID_REQUEST, "no authenticated tenant for this request")
    return tenant_id


def tool_result(payload: dict[str, Any], *, is_error: bool = False) -> types.CallToolResult:
    """A result carrying `payload` both as structured content and as its JSON text (for hosts
    that show only text)."""
    text = json.dumps(payload, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=payload,
        is_error=is_error,
    )


def build_server(services: Services) -> Server[Any]:
    """The MCP server whose tools run on `services` for the tenant of each request."""
    tools = McpTools(services)
    listed = [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=spec.input_schema(),
            annotations=types.ToolAnnotations(
                title=spec.title,
                read_only_hint=spec.read_only,
                destructive_hint=False if spec.read_only else None,
                open_world_hint=False,
            ),
        )
        for spec in tools.specs()
    ]

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: Optional[types.PaginatedRequestParams]
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if not tools.has(params.name):
            known = ", ".join(spec.name for spec in tools.specs())
            raise MCPError(types.INVALID_PARAMS, f"no tool named {params.name!r}; tools: {known}")
        tenant_id = _tenant_of(ctx)
        try:
            payload = await tools.call(tenant_id, params.name, params.arguments or {})
        except ToolFailure as failure:
            return tool_result(failure.payload, is_error=True)
        return tool_result(payload)

    return Server(
        "agentmem",
        version=__version__,
        title="agentmem memory",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class McpEndpoint:
    """The ASGI endpoint mounted at `/mcp`; `run()` wraps the app's lifespan after the services
    exist (the session manager runs one task group per server)."""

    def __init__(self, app: FastAPI):
        self._app = app
        self._manager: Optional[StreamableHTTPSessionManager] = None

    @asynccontextmanager
    async def run(self, services: Services) -> AsyncIterator[None]:
        # One manager per lifespan: a manager runs once, and an app may be started again.
        manager = StreamableHTTPSessionManager(
            app=build_server(services),
            json_response=True,
            stateless=True,
            # DNS-rebinding checks would refuse a Host the SDK does not expect (a proxy, a
            # replica's name); a page in a browser cannot send our Bearer key anyway.
            security_settings=None,
            max_request_body_size=services.settings.max_request_bytes,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if getattr(Request(scope).state, "tenant_id", None) is None:
            request = Request(scope)
            has_key = "authorization" in request.headers
            message = (
                "invalid API key for /mcp: send the tenant's key as `Authorization: Bearer <key>`"
                if has_key
                else "missing API key: send `Authorization: Bearer <key>` (a tenant's API key)"
            )
            response = error_response(
                request,
                401,
                "authentication_error",
                message,
                field="Authorization",
                headers={"www-authenticate": "Bearer"},
            )
            return await response(scope, receive, send)
        if self._manager is None:
            raise RuntimeError("the MCP endpoint is served only while the app's lifespan runs")
        await self._manager.handle_request(scope, receive, send)
