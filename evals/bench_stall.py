"""One big append must not stall the server (issue 12, item 6): `/healthz` latency during it.

    python -m evals.bench_stall --mib 8                      # this checkout
    python -m evals.bench_stall --mib 8 --old /tmp/old9611   # and an older checkout, side by side
    python -m evals.bench_stall --mib 0.25,0.5,1 --ratio     # growing sizes, vs the bare model

Starts `agentmem serve` (the bundled MiniLM, SQLite), sends one archival append of `--mib` MiB
(`--shape lines`: ~60-character lines of random words; `--shape chat`: our eval dataset's
conversation lines, `[date] Speaker: text`, repeated; `--shape line`: one line) and, while it
runs, one `GET /healthz` every `--every-ms` from another client, for at most `--window-s`
seconds. Reports the append's time, the health checks' p50/p99/max (also for `--idle-s` before
it: the box's own noise), and the server's RSS before, at the end of the append, and
`--settle-s` later (the heap given back). The box is shared and noisy: read the
ratios of runs made together, not one figure alone.

`--ratio`: before and after each size's runs, the bare embedder embeds the texts that append
embedded (its line units' keys) in this process, with the server's batcher, while no server
runs; each run's `ratio` is its lines/s over the mean of the two (DESIGN §9: >= 0.85). Chunking
is in the server's time, not the bare one's. The health checks cost CPU the lanes then lack:
for the ratio alone, check rarely (`--every-ms 1000`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from evals._bench import Server, log


def make_text(mib: float, shape: str, seed: int = 7) -> str:
    if shape == "chat":
        return chat_text(mib)
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(4000)
    ]
    target = int(mib * 2**20)
    parts: list[str] = []
    size = 0
    sep = "\n" if shape == "lines" else " "
    while size < target:
        line = " ".join(rng.choice(words) for _ in range(10))
        parts.append(line)
        size += len(line) + 1
    return sep.join(parts)[:target]


def chat_text(mib: float) -> str:
    """The eval dataset's conversations (`[date] Speaker: text` lines, 0.18 MiB), over and over."""
    from evals.bench_archival import session_batches

    lines = [line for _, session in session_batches(10**9) for line in session]
    target = int(mib * 2**20)
    parts: list[str] = []
    size = 0
    while size < target:
        line = lines[len(parts) % len(lines)]
        parts.append(line)
        size += len(line) + 1
    return "\n".join(parts)[:target]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def probe_healthz(url: str, seconds: float, every_ms: float, done: threading.Event) -> list[float]:
    """`GET /healthz` every `every_ms` for `seconds` or until `done`: the latencies (s)."""
    import httpx

    samples: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as probe:
        while not done.is_set() and time.monotonic() < deadline:
            t = time.perf_counter()
            probe.get("/healthz")
            samples.append(time.perf_counter() - t)
            time.sleep(max(0.0, every_ms / 1000 - (time.perf_counter() - t)))
    return samples


def measure(code: Optional[Path], text: str, args: argparse.Namespace) -> dict:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        settings = {"embedding_model": args.model, "rate_limit_per_s": "0"}
        server = Server(Path(tmp), code=code, **settings).start()
        try:
            headers = {"Authorization": f"Bearer {server.key}"}
            with httpx.Client(
                base_url=server.url, timeout=600
            ) as warm:  # model warm, lazy imports done
                warm.post("/v1/memory/archival/append", json={"text": "warm up"}, headers=headers)
            rss_before = server.rss_mb()
            idle = probe_healthz(server.url, args.idle_s, args.every_ms, threading.Event())
            done = threading.Event()
            result: dict = {}

            def append() -> None:
                started = time.perf_counter()
                with httpx.Client(base_url=server.url, timeout=None) as client:
                    r = client.post(
                        "/v1/memory/archival/append", json={"text": text}, headers=headers
                    )
                result["status"] = r.status_code
                result["append_s"] = round(time.perf_counter() - started, 1)
                result["rss_end_mb"] = server.rss_mb()
                done.set()

            worker = threading.Thread(target=append, daemon=True)
            worker.start()
            samples = probe_healthz(server.url, args.window_s, args.every_ms, done)
            finished = done.wait(timeout=args.wait_s)
            if finished:
                time.sleep(args.settle_s)
            out = {
                "code": str(code) if code else "this checkout",
                "append_finished": finished,
                **result,
                "healthz_idle": latency(idle),
                "healthz": latency(samples),
                "rss_before_mb": rss_before,
                "rss_settled_mb": server.rss_mb() if finished else None,
            }
            if finished:
                t = time.perf_counter()
                server.stop()
                out["stop_s"] = round(time.perf_counter() - t, 1)
            else:
                t = time.perf_counter()
                server.stop()  # SIGTERM mid-append: how long until it is gone
                out["stop_mid_append_s"] = round(time.perf_counter() - t, 1)
            return out
        finally:
            server.stop()


def bare_embedder(text: str, model: str) -> dict:
    """The model alone on what the server embeds for `text` (one append, the default table
    format), the way `bench_archival --parts ingest` measures it."""
    from agentmem_server.embedding import load_embedder
    from agentmem_server.settings import Settings
    from evals.bench_archival import bare_throughput, chunk_texts

    settings = Settings(embedding_model=model, embedding_device="cpu")
    embedder = load_embedder(settings)
    lines = text.split("\n")
    (texts,) = chunk_texts([("bench", lines)], settings, embedder)
    embedder.embed(texts[:64])  # warm-up
    return bare_throughput(embedder, texts, len(lines), settings.embedding_batch_size)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mib",
        default="8",
        help="append size in MiB, or sizes separated by commas (the request limit is 8 MiB "
        "with JSON)",
    )
    parser.add_argument("--shape", choices=["lines", "line", "chat"], default="lines")
    parser.add_argument(
        "--model",
        default="bundled:all-MiniLM-L6-v2",
        help="the server's embedding model; `hash:384` leaves out the model's time, so a stall "
        "from anything else shows in seconds",
    )
    parser.add_argument("--every-ms", type=float, default=20.0)
    parser.add_argument(
        "--window-s", type=float, default=120.0, help="health checks for at most this long"
    )
    parser.add_argument(
        "--wait-s", type=float, default=3600.0, help="then wait this long for the append"
    )
    parser.add_argument("--settle-s", type=float, default=3.0)
    parser.add_argument(
        "--idle-s",
        type=float,
        default=15.0,
        help="health checks before the append (the box's noise)",
    )
    parser.add_argument("--old", type=Path, default=None, help="an older checkout to measure first")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--ratio", action="store_true", help="and the bare embedder on the same texts, per size"
    )
    args = parser.parse_args(argv)
    sizes = []
    for mib in (float(m) for m in args.mib.split(",")):
        text = make_text(mib * 0.97, args.shape)  # JSON quoting and the body's envelope fit
        lines = text.count("\n") + 1
        log(f"append of {len(text) / 2**20:.2f} MiB, {lines} lines")
        runs = []
        bare = [bare_embedder(text, args.model)] if args.ratio else []
        for code in ([args.old] if args.old else []) + [None]:
            log("measuring", code or "this checkout")
            runs.append(measure(code, text, args))
            log(json.dumps(runs[-1]))
        size: dict = {"mib": mib, "lines": lines, "runs": runs}
        if args.ratio:
            bare.append(bare_embedder(text, args.model))
            size["bare_embedder"] = bare
            log("bare embedder before and after:", json.dumps(bare))
            baseline = statistics.mean(b["lines_per_s"] for b in bare)
            for run in runs:
                if run.get("append_s"):
                    run["lines_per_s"] = round(lines / run["append_s"], 1)
                    run["ratio"] = round(run["lines_per_s"] / baseline, 3)
        sizes.append(size)
    report = {"shape": args.shape, "model": args.model, "sizes": sizes}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
