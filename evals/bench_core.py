"""Core-block latency over HTTP: guarded update and get, p50/p95, on SQLite and PostgreSQL.

Each backend runs a real `agentmem serve` process on a loopback port; the public client talks to
it. Both backends are measured in the same run so their figures compare (the machine is shared).

    python -m evals.bench_core [--n 500] [--postgres-url URL] [--out evals/out/bench_core.json]

docs/design.md §9 target: update p50 <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import agentmem
from evals._bench import Server, latency_summary

DEFAULT_PG = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def measure(url: str, key: str, n: int) -> dict[str, dict[str, float]]:
    with agentmem.Client(api_key=key, base_url=url) as client:
        block = client.memory.update("core", "0", expected_updated_at=None, agent_id="bench")
        for _ in range(50):  # warm the connection pool, the SQL pool and the code paths
            block = client.memory.update(
                "core", "w", expected_updated_at=block.updated_at, agent_id="bench"
            )
        updates, gets = [], []
        for i in range(n):
            t0 = time.perf_counter()
            block = client.memory.update(
                "core", f"value {i}", expected_updated_at=block.updated_at, agent_id="bench"
            )
            updates.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.memory.get("core", agent_id="bench")
            gets.append(time.perf_counter() - t0)
    return {"update": latency_summary(updates), "get": latency_summary(gets)}


def _pg_schema_url(base: str) -> tuple[str, str] | None:
    import sqlalchemy

    schema = "bench_" + secrets.token_hex(4)
    try:
        engine = sqlalchemy.create_engine(base)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL unavailable at {base}: {exc}; skipping it", file=sys.stderr)
        return None
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="measured operations per kind")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=Path("evals/out/bench_core.json"))
    args = parser.parse_args(argv)

    results: dict[str, dict] = {}
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    pg = _pg_schema_url(args.postgres_url)
    if pg:
        backends.append(("postgres", pg[0]))
    try:
        for name, db_url in backends:
            with tempfile.TemporaryDirectory() as tmp:
                settings = {"embedding_model": "hash:384"} | (
                    {"database_url": db_url} if db_url else {}
                )
                server = Server(Path(tmp), **settings).start()
                try:
                    results[name] = measure(server.url, server.key, args.n)
                finally:
                    server.stop()
            r = results[name]
            print(
                f"{name:9s} update p50 {r['update']['p50_ms']:6.2f} ms  "
                f"p95 {r['update']['p95_ms']:6.2f} ms | "
                f"get p50 {r['get']['p50_ms']:6.2f} ms  p95 {r['get']['p95_ms']:6.2f} ms  "
                f"(n={args.n})"
            )
    finally:
        if pg:
            _drop_schema(args.postgres_url, pg[1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
