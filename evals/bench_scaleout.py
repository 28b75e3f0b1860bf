"""Scale-out: archival appends/s with 1, 2 and 3 replicas (one scope, many scopes), recall p50/p95
and the table-version requests a recall makes, on a shared folder and on an S3 stand-in (moto in
server mode on loopback), every replica on one PostgreSQL.

    python -m evals.bench_scaleout [--before REF] [--appends 60] \
        [--out evals/out/bench_scaleout.json]

`--before REF` measures the code of a git ref (e.g. the commit before the scale-out work) in the
same run, side by side: its servers run from a temporary worktree of that ref. Figures of one run
compare; the box is shared, so compare ratios, not absolute numbers across runs. Needs
PostgreSQL (AGENTMEM_TEST_POSTGRES_URL) and the test extra (moto).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import agentmem
from evals._bench import latency_summary, log

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the S3 stand-in and server helpers the tests use

from support import S3StandIn, ServerProcess, create_key, server_env  # noqa: E402

DEFAULT_PG = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WRITERS = 6
RECALLS = 40


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    import sqlalchemy

    schema = "bench_" + secrets.token_hex(4)
    engine = sqlalchemy.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@contextmanager
def code_of(ref: str | None) -> Iterator[str | None]:
    """A PYTHONPATH running the server code of `ref` (None: this checkout's)."""
    if ref is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="agentmem-before-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            yield f"{tree / 'server'}{os.pathsep}{tree}"
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )


def appends_per_s(servers: list[ServerProcess], key: str, scope_of: Any, appends: int) -> float:
    errors: list[BaseException] = []
    per_writer = max(1, appends // WRITERS)

    def work(w: int) -> None:
        try:
            with agentmem.Client(
                api_key=key, base_url=servers[w % len(servers)].url, timeout=120, max_retries=0
            ) as c:
                for i in range(per_writer):
                    c.memory.append(
                        "archival", f"writer {w} note {i} about the harbor", agent_id=scope_of(w, i)
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WRITERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} appends failed, first: {errors[0]!r}")
    return round(per_writer * WRITERS / elapsed, 2)


def measure(
    store: str, pythonpath: str | None, pg_base: str, s3: S3StandIn, appends: int, tmp: Path
) -> dict[str, Any]:
    if store == "s3":
        bucket = f"bench-{secrets.token_hex(4)}"
        s3.create_bucket(bucket)
        archival = s3.settings(bucket)
    else:
        archival = {"archival_uri": str(tmp / "lance")}
    result: dict[str, Any] = {}
    with pg_schema(pg_base) as db:
        settings = {"embedding_model": "hash:384", "database_url": db, **archival}
        servers: list[ServerProcess] = []
        try:
            for i in range(3):
                env = server_env(tmp / f"replica-{i}", **settings)
                if pythonpath:
                    env["PYTHONPATH"] = pythonpath
                servers.append(ServerProcess(env, tmp / f"server-{i}.log"))
            for s in servers:
                s.wait_ready(timeout=300)
            key = create_key(servers[0].env, "bench")
            for n in (1, 2, 3):
                one = appends_per_s(servers[:n], key, lambda w, i, n=n: f"one{n}", appends)
                many = appends_per_s(
                    servers[:n], key, lambda w, i, n=n: f"many{n}_{w}_{i}", appends
                )
                result[f"appends_per_s_one_scope_{n}_replicas"] = one
                result[f"appends_per_s_many_scopes_{n}_replicas"] = many
                log(
                    f"{store}: {n} replica(s): one scope {one} appends/s, many scopes {many} "
                    "appends/s"
                )
            with agentmem.Client(api_key=key, base_url=servers[0].url, timeout=120) as c:
                for _ in range(10):
                    c.memory.recall("harbor note", agent_id="one3", limit=5)
                s3.wait_quiet()  # maintenance done: count only what recalls ask for
                mark = s3.mark()
                samples = []
                for _ in range(RECALLS):
                    t0 = time.perf_counter()
                    c.memory.recall("harbor note", agent_id="one3", limit=5)
                    samples.append(time.perf_counter() - t0)
                done = s3.since(mark)
            result["recall"] = latency_summary(samples)
            if store == "s3":
                result["version_requests_per_recall"] = round(
                    S3StandIn.version_requests(done) / RECALLS, 2
                )
                result["requests_per_recall"] = round(len(done) / RECALLS, 2)
            log(
                f"{store}: recall {result['recall']} "
                f"{result.get('version_requests_per_recall', '')}"
            )
        finally:
            for s in servers:
                s.stop()
    return result


def memory_per_scope(scopes: int, cache_mb: int) -> dict[str, float]:
    """RSS one process gains per recalled scope (3 lines each): open handles (at most 256),
    LanceDB's caches and, with `cache_mb` > 0, the in-memory copies. Run in a child process so
    each figure starts from the same empty process."""
    code = f"""
import asyncio, gc, json, tempfile
from pathlib import Path
import psutil
from agentmem_server.embedding import HashEmbedder
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.settings import Settings
from agentmem_server.storage.base import BlockRef

async def main():
    tmp = tempfile.mkdtemp()
    settings = Settings(data_dir=Path(tmp), embedding_model="hash:384", recall_cache_mb={cache_mb})
    emb = HashEmbedder(384)
    refs = [BlockRef("t1", f"blk_{{i}}", "agent", f"a{{i}}") for i in range({scopes})]
    index = await ArchivalIndex.open(settings, emb, background_maintenance=False)
    for r in refs:
        lines = await index.prepare([f"line one of {{r.agent_id}}", "two", "three"])
        await index.add(r, lines, first_line=1, written_at=1)
    await index.close()
    index = await ArchivalIndex.open(settings, emb, background_maintenance=False)
    await index.recall("t1", "warm", scopes=[refs[0]])
    gc.collect()
    before = psutil.Process().memory_info().rss
    for _ in range(3):
        for r in refs:
            await index.recall("t1", "line one", scopes=[r], mode="vector")
        await asyncio.sleep(0.5)
    gc.collect()
    after = psutil.Process().memory_info().rss
    cache = index.store.lance.vector_cache
    budgeted = cache.nbytes if cache else 0
    print(json.dumps({{"rss_kb_per_scope": round((after - before) / {scopes} / 1024, 1),
                      "budgeted_kb_per_scope": round(budgeted / {scopes} / 1024, 1)}}))
    await index.close()

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1800
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", help="a git ref whose server code is measured beside this checkout's"
    )
    parser.add_argument(
        "--appends", type=int, default=60, help="appends per measurement (6 writers)"
    )
    parser.add_argument("--stores", default="folder,s3")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument(
        "--memory-scopes", type=int, default=1000, help="scopes for the memory figure (0: skip)"
    )
    parser.add_argument("--out", type=Path, default=Path("evals/out/bench_scaleout.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    versions = [("after", None)] + ([("before", args.before)] if args.before else [])
    with S3StandIn() as s3:
        for name, ref in versions:
            with code_of(ref) as pythonpath:
                for store in args.stores.split(","):
                    with tempfile.TemporaryDirectory(prefix="agentmem-bench-") as tmp:
                        log(f"{name} ({ref or 'this checkout'}), {store}")
                        results[f"{name}/{store}"] = measure(
                            store, pythonpath, args.postgres_url, s3, args.appends, Path(tmp)
                        )
    if args.memory_scopes:
        for cache_mb in (0, 384):
            figure = memory_per_scope(args.memory_scopes, cache_mb)
            results[f"memory/{args.memory_scopes}_scopes_cache_{cache_mb}mb"] = figure
            log(f"memory, {args.memory_scopes} scopes, recall cache {cache_mb} MB: {figure}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
