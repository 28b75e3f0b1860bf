"""Server CPU per operation of bench_load's mix, one client at a time (issue 12, item 9).

    python -m evals.bench_opcost --db sqlite,postgres
    python -m evals.bench_opcost --model hash:384      # everything but the model

bench_load measures what 16 clients get; this measures what each kind of request costs the
server, so the mix's ceiling on two cores can be read off: one client, one agent scope and the
shared user scope seeded with `--seed-lines` lines as bench_load seeds them, then `--n` requests
of each kind in turns, `--rounds` times, with a pause between rounds for the maintenance that
appends set off (its CPU is left out: bench_load pays it, this does not). The server's CPU (user
+ system, all its threads, from psutil) is read around each batch; medians over the rounds.

Kinds: `recall` (hybrid, bench_load's request), `recall vector` and `recall keyword` (the two legs
alone), `append` (one line), `core get`, `core get+update` (bench_load's core operation), and
`core update, no key` (the same update sent without an `Idempotency-Key`, by plain httpx: what
the key's SQL claim and answer cost).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from evals._bench import Server, log
from evals.bench_load import _fresh_postgres_schema, _sentence

OUT = Path(__file__).resolve().parent / "out" / "bench_opcost.json"
MIX = {"recall": 5, "append": 2, "core get+update": 3}
"""bench_load's default mix."""


def measure(db: str, args: argparse.Namespace) -> dict:
    import httpx

    import agentmem

    rng = random.Random(1)
    settings = {"embedding_model": args.model, "rate_limit_per_s": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        if db == "postgres":
            settings["database_url"] = _fresh_postgres_schema(args.postgres_url)
        server = Server(Path(tmp), code=args.code, **settings).start()
        try:
            with (
                agentmem.Client(
                    api_key=server.key, base_url=server.url, timeout=120, max_retries=0
                ) as client,
                httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}
                ) as bare,
            ):
                agent = "opcost"
                seed = "\n".join(_sentence(rng) for _ in range(args.seed_lines))
                client.memory.append("archival", seed, agent_id=agent)
                client.memory.append("archival", seed)
                client.memory.update("core", "counter: 0", expected_updated_at=None, agent_id=agent)
                time.sleep(args.pause_s)

                def recall(mode: str) -> Callable[[], object]:
                    return lambda: client.memory.recall(
                        _sentence(rng, 4), agent_id=agent, limit=5, mode=mode
                    )

                def core(*, key: bool) -> None:
                    block = client.memory.get("core", agent_id=agent)
                    text = f"counter: {int(block.content.split(': ')[1]) + 1}"
                    if key:
                        client.memory.update(
                            "core", text, expected_updated_at=block.updated_at, agent_id=agent
                        )
                        return
                    bare.put(
                        "/v1/memory/core",
                        params={"agent_id": agent},
                        json={"content": text, "expected_updated_at": block.updated_at.isoformat()},
                    ).raise_for_status()

                kinds: dict[str, Callable[[], object]] = {
                    "recall": recall("hybrid"),
                    "recall vector": recall("vector"),
                    "recall keyword": recall("keyword"),
                    "append": lambda: client.memory.append(
                        "archival", _sentence(rng), agent_id=agent
                    ),
                    "core get": lambda: client.memory.get("core", agent_id=agent),
                    "core get+update": lambda: core(key=True),
                    "core update, no key": lambda: core(key=False),
                }
                cpu: dict[str, list[float]] = {k: [] for k in kinds}
                wall: dict[str, list[float]] = {k: [] for k in kinds}
                for r in range(args.rounds):
                    for name, fn in kinds.items():
                        c0, t0 = server.cpu_s(), time.perf_counter()
                        for _ in range(args.n):
                            fn()
                        wall[name].append((time.perf_counter() - t0) / args.n * 1000)
                        cpu[name].append((server.cpu_s() - c0) / args.n * 1000)
                    log(f"opcost {db}: round {r + 1} of {args.rounds}")
                    time.sleep(args.pause_s)
        finally:
            server.stop()
    per_op = {
        k: {
            "cpu_ms": round(statistics.median(cpu[k]), 2),
            "wall_ms": round(statistics.median(wall[k]), 2),
            "cpu_ms_rounds": [round(x, 2) for x in cpu[k]],
        }
        for k in cpu
    }
    mix_cpu = sum(per_op[k]["cpu_ms"] * w for k, w in MIX.items()) / sum(MIX.values())
    return {
        "db": db,
        "code": str(args.code or "this checkout"),
        "model": args.model,
        "per_op": per_op,
        "mix_cpu_ms_per_op": round(mix_cpu, 2),
        "ceiling_rps_on_2_cores": round(2000 / mix_cpu, 1),
        "load": os.getloadavg(),
    }


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="sqlite")
    p.add_argument("--model", default="bundled:all-MiniLM-L6-v2")
    p.add_argument("--n", type=int, default=60, help="requests of each kind per round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seed-lines", type=int, default=200)
    p.add_argument("--pause-s", type=float, default=4.0)
    p.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "AGENTMEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    p.add_argument("--code", type=Path, help="the server code of another checkout (a worktree)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    report = {"started": time.strftime("%Y-%m-%d %H:%M"), "runs": []}
    for db in args.db.split(","):
        run = measure(db, args)
        report["runs"].append(run)
        for k, v in run["per_op"].items():
            log(f"{db} {k:22s} server CPU {v['cpu_ms']:6.2f} ms, wall {v['wall_ms']:6.2f} ms")
        log(
            f"{db} bench_load mix: {run['mix_cpu_ms_per_op']} ms of server CPU per request, "
            f"at best {run['ceiling_rps_on_2_cores']} req/s on 2 cores"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
