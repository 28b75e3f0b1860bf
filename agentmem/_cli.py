"""The `agentmem` command's entry point, kept in the client so every install has it.

The command serves and administers a server, so its code and dependencies are in the `server`
extra. A client-only install answers with the extra to install instead of a traceback (as
httpx does for its own command line).
"""

from __future__ import annotations

import importlib
import sys

SERVER_EXTRA_HINT = "pip install 'agentmem-kit[server]'"


def main() -> None:
    try:
        # Imported by name: the client is type-checked without the server on its path.
        server_cli = importlib.import_module("agentmem_server.cli")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in {"agentmem", "agentmem_server"}:
            raise  # a broken install of our own code, not a missing extra
        print(
            f"The agentmem command runs the agentmem server and its tools, which need the "
            f"`server` extra (missing module: {exc.name}).\nInstall it with: {SERVER_EXTRA_HINT}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    server_cli.main()
