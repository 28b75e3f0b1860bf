"""agentmem server: FastAPI app over SQL (core blocks, agents, runs) and LanceDB (archival).

`create_app` and `Settings` are loaded on first access so that importing a submodule (the CLI,
the SQL store) does not pull in FastAPI and every route.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(name)
