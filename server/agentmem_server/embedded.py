"""A real agentmem server on a background thread, for notebooks, evals and benchmarks.

    with serve_in_thread() as server:          # temp data dir, bundled MiniLM, offline LLM
        client = agentmem.Client(api_key=server.api_key, base_url=server.url)

It is the same app and HTTP stack as `agentmem serve`, only hosted in this process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class EmbeddedServer:
    url: str
    """`http://127.0.0.1:PORT`"""
    api_key: str
    """A key of a fresh tenant (named by `tenant`)."""
    admin_key: str
    data_dir: Path


def _bound_socket() -> socket.socket:
    # Handing uvicorn an already-bound socket avoids the race of "find a free port, then bind it".
    # The explicit IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve_in_thread(
    settings_overrides: Optional[Mapping[str, Any]] = None,
    *,
    data_dir: Optional[Path] = None,
    tenant: str = "default",
    startup_timeout_s: float = 180.0,
) -> Iterator[EmbeddedServer]:
    """Start the server on a free loopback port; stop it (and drop a temp data dir) on exit."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import uvicorn

    from agentmem import Client

    from .app import create_app
    from .settings import Settings

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentmem-")))
        admin_key = "adm_" + secrets.token_urlsafe(24)
        settings = Settings(
            data_dir=data_dir, admin_key=admin_key, **dict(settings_overrides or {})
        )
        sock = _bound_socket()
        stack.callback(sock.close)
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="agentmem-server", daemon=True
        )
        thread.start()

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=60)

        stack.callback(stop)
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    "the in-process agentmem server failed to start (see the log above)"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the in-process agentmem server did not start within {startup_timeout_s:.0f}s"
                )
            time.sleep(0.05)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with Client(api_key=admin_key, base_url=url) as admin:
            api_key = admin.admin.create_key(tenant).key
        yield EmbeddedServer(url=url, api_key=api_key, admin_key=admin_key, data_dir=data_dir)
