"""The change feed: write-to-delivery latency, stream throughput, and what the log costs a write.

    python -m evals.bench_events [--n 300] [--postgres-url URL] [--out evals/out/bench_events.json]

Measured in one run, side by side (the machine is shared and noisy):
- delivery: a `client.events.stream` subscriber receives each `memory.append` made by another
  client; latency from the start of the write request to the event's arrival, p50/p99. Same
  replica (SQLite and PostgreSQL), and across two replicas on one PostgreSQL, woken by
  LISTEN/NOTIFY and, for comparison, by polling the log alone (`AGENTMEM_EVENTS_LISTEN=false`).
- throughput: events/s one stream receives replaying a backlog from the log, and live while 8
  writers append as fast as they can (there the writers are the bound, printed beside it).
- cost: core `update` p50 through `MemoryService` with the log and without it (the write's one
  guarded statement alone), interleaved in rounds on the same database; the same for
  `threads.add_messages` of 10 messages through `ThreadService` (`--write-cost-only`: just these).

docs/design.md §9 target: a write to a subscriber on another replica p50 <= 50 ms, p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import agentmem
from evals._bench import Server, log
from evals.bench_core import _drop_schema, _pg_schema_url

DEFAULT_PG = os.environ.get(
    "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def summary(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(rank(0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "n": len(ordered),
    }


class Subscriber:
    """A stream on a thread; `arrived[seq]` = perf_counter() when the event came."""

    def __init__(self, url: str, key: str, **filters: Any):
        self.arrived: dict[int, float] = {}
        self.count = 0
        self.cond = threading.Condition()
        self._stop = False
        self.client = agentmem.Client(api_key=key, base_url=url)

        def run() -> None:
            for event in self.client.events.stream(**filters):
                if self._stop:
                    return
                with self.cond:
                    self.arrived[event.seq] = time.perf_counter()
                    self.count += 1
                    self.cond.notify_all()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_count(self, n: int, timeout: float = 60.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.count >= n, timeout)

    def stop(self, poke: Any) -> None:
        self._stop = True
        poke()
        self.thread.join(30)
        self.client.close()


def delivery(write_url: str, read_url: str, key: str, n: int) -> dict[str, float]:
    """Latency from the start of each append (through `write_url`) to its arrival on a stream
    open on `read_url`, one write at a time at ~50 writes/s."""
    sub = Subscriber(read_url, key, kinds=["core"])
    with agentmem.Client(api_key=key, base_url=write_url) as writer:
        # Warm up until the stream is live.
        deadline = time.monotonic() + 60
        while sub.count == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the stream never delivered")
            writer.memory.append("core", "warm-up", agent_id="bench")
            sub.wait_count(1, 0.5)
        latencies: list[float] = []
        for i in range(n):
            seen = sub.count
            t0 = time.perf_counter()
            block = writer.memory.append("core", f"line {i}", agent_id="bench")
            if not sub.wait_count(seen + 1, 10):
                raise RuntimeError(f"event {i} not delivered within 10 s")
            with sub.cond:
                arrived = max(sub.arrived.values())
            latencies.append(arrived - t0)
            time.sleep(0.02)
            if block.line_count > 500:  # keep the core block under its size limit
                writer.memory.delete("core", agent_id="bench")
        sub.stop(lambda: writer.memory.append("core", "stop", agent_id="bench"))
    return summary(latencies)


def throughput(url: str, key: str, n: int) -> dict[str, float]:
    """events/s a stream receives: live while 8 writers append, then replaying the backlog."""
    sub = Subscriber(url, key, kinds=["core"], namespace=["agent"])
    with agentmem.Client(api_key=key, base_url=url) as writer:
        writer.memory.append("core", "warm-up", agent_id="w0")
        if not sub.wait_count(1, 60):
            raise RuntimeError("the stream never delivered")
        start_count = sub.count

        def write(worker: int) -> None:
            with agentmem.Client(api_key=key, base_url=url) as c:
                for i in range(n // 8):
                    if i and i % 400 == 0:
                        c.memory.delete("core", agent_id=f"w{worker}")
                    c.memory.append("core", f"{i}", agent_id=f"w{worker}")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(8)))
        written_s = time.perf_counter() - t0
        deletes = sum(1 for i in range(1, n // 8) if i % 400 == 0)
        expected = start_count + 8 * (n // 8 + deletes)
        if not sub.wait_count(expected, 120):
            raise RuntimeError(f"only {sub.count} of {expected} events arrived")
        live_s = time.perf_counter() - t0
        sub.stop(lambda: writer.memory.append("core", "stop", agent_id="w0"))

    # Replay: everything so far, from seq 0, on a fresh stream.
    with agentmem.Client(api_key=key, base_url=url) as reader:
        page = reader.events.list(after=0, limit=1000)
        last = page.next_after
        while page.has_more:
            page = reader.events.list(after=last, limit=1000)
            last = page.next_after
        count = 0
        t0 = time.perf_counter()
        for event in reader.events.stream(after=0):
            count += 1
            if event.seq >= last:
                break
        replay_s = time.perf_counter() - t0
    events_live = expected - start_count
    return {
        "live_events": events_live,
        "live_events_per_s": round(events_live / live_s, 1),
        "writers_events_per_s": round(events_live / written_s, 1),
        "replay_events": count,
        "replay_events_per_s": round(count / replay_s, 1),
    }


def write_cost(database_url: str, rounds: int, per_round: int) -> dict[str, Any]:
    """Core update p50 through MemoryService with the log and without, interleaved."""
    from agentmem_server.services.events import EventLog
    from agentmem_server.services.memory import MemoryService
    from agentmem_server.storage.sql.store import SqlStore

    async def run() -> dict[str, Any]:
        sql = SqlStore.open(database_url)
        try:
            archival: Any = None  # core writes never touch the archival index
            with_log = MemoryService(sql, archival, core_limit_chars=8000, events=EventLog(sql))
            without = MemoryService(sql, archival, core_limit_chars=8000)
            samples: dict[str, list[float]] = {"with_log": [], "without_log": []}
            blocks = {}
            for name, service in (("with_log", with_log), ("without_log", without)):
                blocks[name] = await service.update_block("bench", "core", "0", None, name)
            for r in range(rounds):
                order = [("with_log", with_log), ("without_log", without)]
                if r % 2:
                    order.reverse()
                for name, service in order:
                    block = blocks[name]
                    for i in range(per_round):
                        t0 = time.perf_counter()
                        block = await service.update_block(
                            "bench", "core", f"v{r}.{i}", block.updated_at, name
                        )
                        samples[name].append(time.perf_counter() - t0)
                    blocks[name] = block
            out: dict[str, Any] = {k: summary(v) for k, v in samples.items()}
            out["ratio_p50"] = round(out["with_log"]["p50_ms"] / out["without_log"]["p50_ms"], 2)
            return out
        finally:
            await sql.aclose()

    return asyncio.run(run())


def thread_write_cost(database_url: str, rounds: int, per_round: int) -> dict[str, Any]:
    """`threads.add_messages` of 10 messages p50 through ThreadService with the log (a `thread`
    `append` event carrying the messages) and without, interleaved."""
    from agentmem.types import MessagesAddRequest, ThreadCreateRequest
    from agentmem_server.services.events import EventLog
    from agentmem_server.services.threads import ThreadService
    from agentmem_server.storage.sql.store import SqlStore

    request = MessagesAddRequest.model_validate(
        {"messages": [{"role": "user", "content": f"message {i} " * 10} for i in range(10)]}
    )

    async def run() -> dict[str, Any]:
        sql = SqlStore.open(database_url)
        try:
            services = {
                "with_log": ThreadService(sql, events=EventLog(sql)),
                "without_log": ThreadService(sql),
            }
            threads = {
                name: (await service.create("bench", ThreadCreateRequest())).id
                for name, service in services.items()
            }
            samples: dict[str, list[float]] = {name: [] for name in services}
            for r in range(rounds):
                order = list(services.items())
                if r % 2:
                    order.reverse()
                for name, service in order:
                    for _ in range(per_round):
                        t0 = time.perf_counter()
                        await service.add_messages("bench", threads[name], request)
                        samples[name].append(time.perf_counter() - t0)
            out: dict[str, Any] = {k: summary(v) for k, v in samples.items()}
            out["ratio_p50"] = round(out["with_log"]["p50_ms"] / out["without_log"]["p50_ms"], 2)
            return out
        finally:
            await sql.aclose()

    return asyncio.run(run())


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="measured deliveries per setup")
    parser.add_argument("--throughput-n", type=int, default=2000, help="events for throughput")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=Path("evals/out/bench_events.json"))
    parser.add_argument(
        "--write-cost-only", action="store_true", help="only what the log costs a write"
    )
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    pg = _pg_schema_url(args.postgres_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'cost.db'}"
            log("write cost: sqlite")
            results["write_cost_sqlite"] = write_cost(sqlite_url, rounds=10, per_round=50)
            if pg:
                log("write cost: postgres")
                results["write_cost_postgres"] = write_cost(pg[0], rounds=10, per_round=50)
            log("thread write cost: sqlite")
            results["thread_write_cost_sqlite"] = thread_write_cost(
                sqlite_url, rounds=10, per_round=30
            )
            if pg:
                log("thread write cost: postgres")
                results["thread_write_cost_postgres"] = thread_write_cost(
                    pg[0], rounds=10, per_round=30
                )
        setups: list[tuple[str, Optional[str], dict[str, str]]] = [("sqlite", None, {})]
        if pg:
            setups.append(("postgres", pg[0], {}))
        if args.write_cost_only:
            setups = []
        for name, db_url, extra in setups:
            with tempfile.TemporaryDirectory() as tmp:
                settings = {"embedding_model": "hash:384", "rate_limit_per_s": "0"} | extra
                if db_url:
                    settings["database_url"] = db_url
                server = Server(Path(tmp), **settings).start()
                try:
                    log(f"delivery, same replica: {name}")
                    results[f"same_replica_{name}"] = delivery(
                        server.url, server.url, server.key, args.n
                    )
                    log(f"throughput: {name}")
                    results[f"throughput_{name}"] = throughput(
                        server.url, server.key, args.throughput_n
                    )
                finally:
                    server.stop()
        if pg and not args.write_cost_only:
            for mode, extra in (
                ("listen", {}),
                ("poll_only", {"events_listen": "false", "events_poll_s": "0.1"}),
            ):
                with tempfile.TemporaryDirectory() as tmp:
                    settings = {
                        "embedding_model": "hash:384",
                        "rate_limit_per_s": "0",
                        "database_url": pg[0],
                    } | extra
                    a = Server(Path(tmp) / "a", **settings).start()
                    b = Server(Path(tmp) / "b", **settings).start()
                    try:
                        log(f"delivery across replicas: {mode}")
                        results[f"cross_replica_{mode}"] = delivery(a.url, b.url, a.key, args.n)
                    finally:
                        a.stop()
                        b.stop()
    finally:
        if pg:
            _drop_schema(args.postgres_url, pg[1])
    for name, r in results.items():
        print(f"{name:28s} {json.dumps(r)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
