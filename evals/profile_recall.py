"""Where the time of one recall over HTTP goes: stage timers inside a real server process, a
sampling profile of it (py-spy), and the client's round trip, on one scope of N chunks.

    python -m evals.profile_recall --chunks 100000 --queries 300 --keep-data /tmp/prof
    python -m evals.profile_recall --before REF ...   # also profile the server code of a git ref

The server is `agentmem serve` started through this module (`--serve-timed`), which first wraps
the functions of each stage with timers (nothing in the server knows about them); at exit it
writes every stage's durations to a JSON file. Timers add ~2 us a stage. py-spy (the `bench`
extra) samples the server while the client recalls; its folded stacks are summed by the frames
named in `FRAMES`. Results: evals/out/profile_recall.json and, per server, the folded stacks
(`*.folded`, for any flame-graph viewer).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import contextlib
import functools
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "evals" / "out"

# (module, attribute path, stage name). Stages nest: "request" holds everything the server does
# for a request between its first byte read by the app and its last byte handed to uvicorn.
STAGES = [
    ("agentmem_server.api.middleware", "RequestIdMiddleware.__call__", "request (ASGI app)"),
    ("agentmem_server.api.middleware", "EdgeMiddleware.__call__", "request (ASGI app)"),
    ("agentmem_server.api.access", "AccessMiddleware._identify", "auth (key -> tenant)"),
    ("agentmem_server.api.access", "identify", "auth (key -> tenant)"),
    ("fastapi.routing", "solve_dependencies", "parse + validate body, deps"),
    ("fastapi.routing", "serialize_response", "serialise answer"),
    ("agentmem_server.services.memory", "MemoryService.recall", "service recall"),
    ("agentmem_server.storage.sql.uow", "UnitOfWork.run_autocommit", "sql"),
    ("agentmem_server.storage.lance.index", "LanceArchivalStore.open_scopes", "open scopes"),
    ("agentmem_server.embedding.batcher", "EmbeddingBatcher.embed", "embed query (awaited)"),
    ("agentmem_server.embedding.onnx", "OnnxSentenceEmbedder.embed_query", "embed query (model)"),
    ("agentmem_server.storage.lance.index", "LanceArchivalStore.text_search", "keyword leg"),
    ("agentmem_server.storage.lance.index", "LanceArchivalStore.vector_search", "vector leg"),
    ("agentmem_server.services.recall", "rank", "rank"),
]

# Frames whose inclusive share of the samples the summary reports (substring of a py-spy frame).
FRAMES = {
    "uvicorn/httptools parsing": "httptools_impl.py",
    "starlette/fastapi routing": "routing.py",
    "pydantic validation": "pydantic",
    "auth": "_identify",
    "SQL (SQLAlchemy + driver)": "sqlalchemy",
    "LanceDB (Python side)": "lancedb",
    "ONNX Runtime run": "run (onnxruntime",
    "tokenizer": "_encode_full",
    "faiss search": "faiss",
    "vector cache": "vector_cache.py",
    "rank": "services/recall.py",
    "event loop (uvloop, native)": "Runner.run",
    "thread pool worker": "thread.py",
    "json encode": "json",
}


# ---- the server side: timers around each stage ----------------------------------------------


def _install_timers(out_path: str) -> None:
    import importlib

    durations: dict[str, list[float]] = collections.defaultdict(list)

    def wrap(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        label = stage

        def name_of(args: tuple[Any, ...]) -> str:
            if stage.startswith("request"):
                return f"{label} {args[1].get('path', '')}"
            if stage != "sql":
                return label
            call = next((a for a in args if callable(a)), None)
            return f"sql: {getattr(call, '__name__', '?')}"

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    durations[name_of(args)].append(time.perf_counter() - t0)

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                durations[name_of(args)].append(time.perf_counter() - t0)

        return timed

    for module_name, path, stage in STAGES:
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        *parents, attr = path.split(".")
        for p in parents:
            owner = getattr(owner, p, None)
        if owner is None or not hasattr(owner, attr):
            continue
        setattr(owner, attr, wrap(getattr(owner, attr), stage))

    def dump() -> None:
        Path(out_path).write_text(json.dumps(durations))

    def dump_and_clear(*_: Any) -> None:  # SIGUSR1: what was timed since the last one
        dump()
        durations.clear()

    atexit.register(dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGUSR1, dump_and_clear)

    # Says when the in-memory copy first answered (the client waits for it before measuring).
    try:
        from agentmem_server.storage.lance.vector_cache import VectorCache
    except ImportError:
        return
    nearest = VectorCache.nearest

    async def nearest_noting(self: Any, *args: Any, **kwargs: Any) -> Any:
        hits = await nearest(self, *args, **kwargs)
        if hits is not None:
            Path(out_path + ".copied").touch()
        return hits

    VectorCache.nearest = nearest_noting  # type: ignore[method-assign]


def serve_timed(out_path: str, port: int) -> None:
    # Run as a file, this folder is first on sys.path: its modules must not shadow the server's.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)
    _install_timers(out_path)
    from agentmem_server.cli import app

    sys.argv = ["agentmem", "serve", "--port", str(port), "--log-level", "warning"]
    try:
        app()
    except SystemExit:
        pass


# ---- the client side ------------------------------------------------------------------------


class TimedServer:
    def __init__(self, data_dir: Path, code: Optional[str], name: str, **settings: str):
        from evals._bench import Server

        self.base = Server(data_dir, code=Path(code) if code else None, **settings)
        self.name = name
        self.stages_file = Path(tempfile.mkstemp(prefix=f"stages-{name}-", suffix=".json")[1])
        # Run as a file: the server's own imports come from `code` (an older checkout) or the
        # installed tree; this file imports nothing of evals/ when it serves.
        self.base.cli = [sys.executable, __file__, "--serve-timed", str(self.stages_file)]

    def start(self) -> TimedServer:
        base = self.base
        base.proc = subprocess.Popen(
            base.cli + ["--port", str(base.port)], env=base.env, cwd=str(ROOT)
        )
        import httpx

        for _ in range(1200):
            try:
                if httpx.get(base.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if base.proc.poll() is not None:
                raise RuntimeError("the server exited during startup")
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> dict[str, list[float]]:
        self.base.stop()
        try:
            return json.loads(self.stages_file.read_text() or "{}")
        except json.JSONDecodeError:
            return {}
        finally:
            self.stages_file.unlink(missing_ok=True)
            Path(str(self.stages_file) + ".copied").unlink(missing_ok=True)


def summarise_stages(durations: dict[str, list[float]], n: int) -> dict[str, Any]:
    """Median and p95 per call, and calls per recall, of each stage."""
    from evals._bench import latency_summary

    return {
        stage: {"calls_per_recall": round(len(values) / max(1, n), 2), **latency_summary(values)}
        for stage, values in sorted(durations.items())
        if values
    }


def fold_profile(folded: Path) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        leaves[frames[-1]] += c
        for label, needle in FRAMES.items():
            if any(needle in f for f in frames):
                counts[label] += c
    return {
        "samples": total,
        "inclusive_share": {k: round(v / max(1, total), 3) for k, v in counts.most_common()},
        "top_leaves": [(f, round(c / max(1, total), 3)) for f, c in leaves.most_common(25)],
    }


def stage_snapshot(server: TimedServer) -> dict[str, list[float]]:
    """The server's stage durations since the last snapshot (SIGUSR1 makes it write them)."""
    path = server.stages_file
    before = path.stat().st_mtime_ns if path.exists() else 0
    server.base.proc.send_signal(signal.SIGUSR1)
    for _ in range(100):
        if path.exists() and path.stat().st_mtime_ns != before and path.read_text():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.05)
    return {}


def wait_for_copy(servers: list[TimedServer], timeout_s: float) -> bool:
    import agentmem
    from evals._bench import log

    t0 = time.perf_counter()
    for server in servers:
        with agentmem.Client(api_key=server.base.key, base_url=server.base.url) as client:
            while not Path(str(server.stages_file) + ".copied").exists():
                if time.perf_counter() - t0 > timeout_s:
                    log(f"[{server.name}] no in-memory copy after {timeout_s:g}s")
                    return False
                client.memory.recall("q", agent_id="bench", scope="agent", mode="vector")
                time.sleep(1.0)
    log(f"in-memory copies answer after {time.perf_counter() - t0:.0f}s")
    return True


def spy_on(server: TimedServer, folded: Path) -> Optional[subprocess.Popen]:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        return None
    proc = subprocess.Popen(
        [py_spy, "record", "--pid", str(server.base.proc.pid), "--rate", "250"]
        + ["--format", "raw", "--nonblocking", "-o", str(folded)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return proc


def profile_side_by_side(
    servers: list[TimedServer], queries: int, spy: bool, copy_timeout_s: float
) -> dict[str, Any]:
    """Each mode: every server answers the same queries in turns, query by query."""
    import agentmem
    from evals._bench import latency_summary, log

    report: dict[str, Any] = {s.name: {} for s in servers}
    report["copied"] = wait_for_copy(servers, copy_timeout_s)
    clients = [agentmem.Client(api_key=s.base.key, base_url=s.base.url) for s in servers]
    try:
        for mode in ("vector", "hybrid"):
            kwargs = dict(agent_id="bench", scope="agent", limit=5, mode=mode)
            for client in clients:
                for i in range(20):
                    client.memory.recall(f"warm up {i}", **kwargs)
            for server in servers:
                stage_snapshot(server)  # drop what warming up timed
            spies = [
                spy_on(s, OUT / f"profile_recall_{s.name}_{mode}.folded") if spy else None
                for s in servers
            ]
            times: dict[str, list[float]] = {s.name: [] for s in servers}
            health: dict[str, list[float]] = {s.name: [] for s in servers}
            for i in range(queries):
                query = f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"
                # Each query starts with the next server: going first (right after the client's
                # own work, or after the other server's threads) is not always the same one's.
                pairs = list(zip(servers, clients, strict=True))
                k = i % len(pairs)
                for server, client in pairs[k:] + pairs[:k]:
                    t0 = time.perf_counter()
                    client.memory.recall(query, **kwargs)
                    times[server.name].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    client._http.get(server.base.url + "/healthz")
                    health[server.name].append(time.perf_counter() - t0)
            for server, proc in zip(servers, spies, strict=True):
                out: dict[str, Any] = {
                    "recall": latency_summary(times[server.name]),
                    "healthz": latency_summary(health[server.name]),
                    "stages": summarise_stages(stage_snapshot(server), queries),
                }
                if proc is not None:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(60)
                    folded = OUT / f"profile_recall_{server.name}_{mode}.folded"
                    if folded.exists():
                        out["profile"] = fold_profile(folded)
                report[server.name][mode] = out
                log(f"[{server.name}] {mode}: {out['recall']} healthz {out['healthz']}")
    finally:
        for client in clients:
            client.close()
    return report


QUESTIONS = [
    "where does my sister live now?",
    "what did we decide about the budget?",
    "which restaurant did Tom recommend?",
    "when is the dentist appointment?",
    "what is the name of the new project?",
    "how old is the dog?",
    "who is organising the offsite?",
    "what did the doctor say about the knee?",
]


def prepare(data_dir: Path, chunks: int) -> None:
    """One agent scope of `chunks` synthetic chunks (evals/bench_archival.py), reused if there."""
    from evals import bench_archival as ba
    from evals._bench import Server

    server = Server(data_dir)  # only for its tenant (keys create)
    vectors = ba.synthetic_vectors(chunks)
    queries = ba.synthetic_queries(vectors, 10)

    async def load() -> None:
        _, index = await ba.load_scope(data_dir, server.tenant_id, vectors, queries, 10_000)
        await index.close()

    asyncio.run(load())
    (data_dir / "tenant").write_text(server.tenant_id)


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve-timed":
        serve_timed(argv[1], int(argv[argv.index("--port") + 1]))
        return {}
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--keep-data", help="keep (and reuse) the store here")
    p.add_argument("--before", help="also profile the server code of this git ref")
    p.add_argument("--copy-timeout-s", type=float, default=600.0)
    p.add_argument("--no-spy", action="store_true")
    args = p.parse_args(argv)
    from evals.bench_scaleout import code_of

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(args.keep_data or tmp) / str(args.chunks)
        data_dir.mkdir(parents=True, exist_ok=True)
        prepare(data_dir, args.chunks)
        report: dict[str, Any] = {
            "chunks": args.chunks,
            "queries": args.queries,
            "load": os.getloadavg(),
        }
        versions = [("after", None)] + ([("before", args.before)] if args.before else [])
        with contextlib.ExitStack() as stack:
            servers = []
            for name, ref in versions:
                code = stack.enter_context(code_of(ref))
                server = TimedServer(data_dir, code, name).start()
                stack.callback(server.stop)
                servers.append(server)
            report.update(
                profile_side_by_side(servers, args.queries, not args.no_spy, args.copy_timeout_s)
            )
        report["load_end"] = os.getloadavg()
    (OUT / "profile_recall.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
