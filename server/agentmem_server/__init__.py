"""agentmem server: FastAPI app over SQL (core blocks, agents, runs) and LanceDB (archival)."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
