"""`create_app(settings)`: the FastAPI application. Nothing heavy happens until the lifespan
runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI
from starlette.routing import Route

from agentmem import __version__

from .api.docs import install_docs
from .api.errors import install_error_handlers
from .api.idempotency import IdempotencyMiddleware
from .api.mcp import MCP_PATH, McpEndpoint
from .api.middleware import EdgeMiddleware
from .api.routes import admin, agents, events, health, memory, runs, state, store, threads, transfer
from .settings import Settings


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .services.container import build_services

        services = await build_services(settings)
        app.state.services = services
        try:
            async with mcp_endpoint.run(services):
                yield
        finally:
            await services.close()

    app = FastAPI(
        title="agentmem",
        version=__version__,
        summary="Memory for LLM agents: core blocks, archival recall, runs with a memory policy.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both pages with local assets instead of a CDN's
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_docs(app)
    # Outermost last. The edge first: request id (every answer carries it), the size check, who
    # calls (api/access.py); then idempotency keys, which need the caller and see a bounded body.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(
        EdgeMiddleware,
        max_bytes=settings.max_request_bytes,
        overrides={"/v1/import": settings.max_import_bytes},
    )
    for module in (health, admin, memory, state, store, agents, runs, threads, transfer, events):
        app.include_router(module.router)
    # The Model Context Protocol endpoint (api/mcp.py): the memory tools for MCP hosts.
    mcp_endpoint = McpEndpoint(app)
    app.router.routes.append(
        Route(MCP_PATH, mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    return app


def end_streams(app: FastAPI) -> None:
    """End every open event stream now (server shutdown: uvicorn waits for open responses
    before it runs the lifespan's shutdown, and a stream never ends by itself)."""
    services = getattr(app.state, "services", None)
    if services is not None:
        services.event_hub.end_streams()
