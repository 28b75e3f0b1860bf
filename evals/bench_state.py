"""Keyed-state latency over HTTP with a million entries in the tenant, beside a core-block get.

Each backend (SQLite, PostgreSQL) runs a real `agentmem serve` process; the public client talks
to it. The tenant's entries are loaded into SQL before the server starts (over HTTP a million
sets would take an hour); the server then sees them as any others. Measured per backend, in the
same run and interleaved, so the figures compare on a shared machine:

- get: a random key among the million (namespace ("bench",))
- set: a random key among the million, last write wins
- lookup: 4 levels given (workflow, session, agent, tenant), the key only at the tenant root,
  so all four namespaces are probed
- list: a 1,000-key prefix page among the million
- core get and core update: `memory.get("core")` and a guarded `memory.update("core", ...)`,
  the references a state read and a state write are compared with
- set_raw_key and set_raw_no_key: the same PUT as `set` from plain httpx, with and without an
  `Idempotency-Key` (the client always sends one; the server records a keyed write's answer in
  SQL), so the pair shows what the idempotency record costs a write

    python -m evals.bench_state [--entries 1000000] [--n 300] [--postgres-url URL]
        [--out evals/out/bench_state.json]

DESIGN §9 targets: get and set p50 <= 3 ms, lookup of 4 levels p50 <= 4 ms, a 1,000-key prefix
list among 1M entries p50 <= 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

import agentmem
from agentmem.types.state import encode_namespace
from evals._bench import Server, latency_summary, log
from evals.bench_core import _drop_schema, _pg_schema_url

DEFAULT_PG = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NAMESPACE = ("bench",)
BATCH = 20_000


def key_of(i: int) -> str:
    return f"k{i:07d}"


def load(database_url: str, tenant_id: str, entries: int) -> float:
    """Insert `entries` keys into ("bench",) and one at the tenant root; seconds it took."""
    from agentmem_server.storage.sql.schema import state_entries, state_tenants
    from agentmem_server.storage.sql.store import SqlStore

    started = time.perf_counter()
    store = SqlStore.open(database_url)
    now = int(time.time() * 1_000_000)
    value = {"n": 1, "note": "benchmark entry"}
    size = len(json.dumps(value, separators=(",", ":")))
    try:
        for first in range(0, entries, BATCH):
            rows = [
                {
                    "tenant_id": tenant_id,
                    "namespace": "bench",
                    "key": key_of(i),
                    "value": value,
                    "value_bytes": size,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": None,
                }
                for i in range(first, min(entries, first + BATCH))
            ]
            with store.begin() as conn:
                conn.execute(state_entries.insert(), rows)
        with store.begin() as conn:
            conn.execute(
                state_entries.insert(),
                [
                    {
                        "tenant_id": tenant_id,
                        "namespace": "",
                        "key": "tier",
                        "value": "standard",
                        "value_bytes": 10,
                        "created_at": now,
                        "updated_at": now,
                        "expires_at": None,
                    }
                ],
            )
            conn.execute(
                state_tenants.insert(),
                [{"tenant_id": tenant_id, "entries": entries + 1, "bytes": entries * size + 10}],
            )
        if store.dialect == "sqlite":
            with store.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        else:
            with store.single_statements() as conn:
                conn.exec_driver_sql("VACUUM ANALYZE state_entries")
    finally:
        store.close()
    return time.perf_counter() - started


def measure(url: str, key: str, entries: int, n: int) -> dict[str, dict[str, float]]:
    rng = random.Random(0)
    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})

    def raw_set(idempotent: bool) -> object:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotent else {}
        answer = raw.put(
            f"/v1/state/entries/{key_of(rng.randrange(entries))}",
            params={"namespace": encode_namespace(NAMESPACE)},
            json={"value": {"n": rng.randrange(1000)}},
            headers=headers,
        )
        answer.raise_for_status()
        return answer

    with raw, agentmem.Client(api_key=key, base_url=url) as client:
        bench = client.state.namespace(*NAMESPACE)
        core = [client.memory.update("core", "reference block", expected_updated_at=None)]

        def core_update() -> object:
            core[0] = client.memory.update(
                "core", f"reference {rng.random()}", expected_updated_at=core[0].updated_at
            )
            return core[0]

        ops: dict[str, Callable[[], object]] = {
            "get": lambda: bench.get(key_of(rng.randrange(entries))),
            "set": lambda: bench.set(key_of(rng.randrange(entries)), {"n": rng.randrange(1000)}),
            "lookup4": lambda: client.state.lookup(
                "tier", workflow_id="wf-1", session_id="s-1", agent_id="a-1"
            ),
            "list1000": lambda: bench.list(
                prefix=key_of(rng.randrange(entries // 1000) * 1000)[:5], limit=1000
            ),
            "core_get": lambda: client.memory.get("core"),
            "core_update": core_update,
            "set_raw_key": lambda: raw_set(True),
            "set_raw_no_key": lambda: raw_set(False),
        }
        for _ in range(30):  # warm the connections, the pools and the code paths
            for op in ops.values():
                op()
        page = bench.list(prefix=key_of(0)[:5], limit=1000)
        assert len(page.items) == min(1000, entries), len(page.items)
        samples: dict[str, list[float]] = {name: [] for name in ops}
        for _ in range(n):
            for name, op in ops.items():  # interleaved: noise on the box hits every kind alike
                t0 = time.perf_counter()
                op()
                samples[name].append(time.perf_counter() - t0)
    return {name: latency_summary(s) for name, s in samples.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--entries", type=int, default=1_000_000, help="entries in the tenant (multiple of 1,000)"
    )
    parser.add_argument("--n", type=int, default=300, help="measured operations per kind")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("evals/out/bench_state.json"))
    args = parser.parse_args(argv)

    results: dict[str, dict] = {"entries": args.entries, "n": args.n}
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    pg = None if args.no_postgres else _pg_schema_url(args.postgres_url)
    if pg:
        backends.append(("postgres", pg[0]))
    try:
        for name, db_url in backends:
            with tempfile.TemporaryDirectory() as tmp:
                settings = {"embedding_model": "hash:384", "state_sweep_interval_s": "0"}
                if db_url:
                    settings["database_url"] = db_url
                server = Server(Path(tmp), **settings)
                database_url = db_url or f"sqlite:///{Path(tmp) / 'agentmem.db'}"
                log(f"{name}: loading {args.entries:,} entries")
                loaded_s = load(database_url, server.tenant_id, args.entries)
                log(f"{name}: loaded in {loaded_s:.0f} s; measuring")
                server.start()
                try:
                    r = measure(server.url, server.key, args.entries, args.n)
                finally:
                    server.stop()
            results[name] = r
            print(
                f"{name:9s} "
                + " | ".join(
                    f"{op} p50 {m['p50_ms']:6.2f} p95 {m['p95_ms']:6.2f}" for op, m in r.items()
                )
                + f"  (ms, n={args.n}, {args.entries:,} entries)",
                flush=True,
            )
    finally:
        if pg:
            _drop_schema(args.postgres_url, pg[1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
