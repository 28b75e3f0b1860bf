"""What the benchmarks share: latency summaries, timestamped logging, `agentmem serve` in a
child."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional


def latency_summary(samples_s: Sequence[float]) -> dict:
    """Median and nearest-rank p95 of durations in seconds, reported in milliseconds."""
    ordered = sorted(samples_s)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(
            ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000, 2
        ),
        "n": len(ordered),
    }


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`agentmem serve` in its own process (its RSS is then the server's alone)."""

    def __init__(self, data_dir: Path, *, code: Optional[Path] = None, **settings: str):
        """`code`: run the server from another checkout (a `git worktree` of an older commit),
        to measure old and new side by side in one run."""
        import httpx

        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMEM_")}
        if code is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(code / "server"), str(code)])
        self.env.update({f"AGENTMEM_{k.upper()}": str(v) for k, v in settings.items()})
        self.env["AGENTMEM_DATA_DIR"] = str(data_dir)
        cli = [sys.executable, "-m", "agentmem_server.cli"]
        made = subprocess.run(
            cli + ["keys", "create", "--tenant", "bench"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = made.stdout.strip().splitlines()[-1]
        self.tenant_id = re.search(r"\((\S+)\)", made.stdout).group(1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cli = cli
        self.proc: Optional[subprocess.Popen] = None
        self._httpx = httpx

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            self.cli + ["serve", "--port", str(self.port), "--log-level", "warning"], env=self.env
        )
        for _ in range(1200):
            try:
                if self._httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except self._httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited during startup")
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def rss_mb(self) -> float:
        import psutil

        return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)

    def cpu_s(self) -> float:
        """The server process's CPU time so far (user + system, all its threads), in seconds."""
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def thread_cpu_s(self) -> dict[str, float]:
        """The server's CPU seconds so far by thread name (`/proc/PID/task/*/stat`; Python 3.11
        names no OS thread, so its threads are `python` and LanceDB's have their own names), the
        event loop's (the main thread) apart. Threads that ended are missing: read it twice and
        subtract, over a window in which the pools stay up."""
        tick = os.sysconf("SC_CLK_TCK")
        pid = self.proc.pid
        groups: dict[str, float] = {}
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:  # the thread ended meanwhile
                continue
            comm_end = stat.rindex(")")
            name = "event loop" if task.name == str(pid) else stat[stat.index("(") + 1 : comm_end]
            fields = stat[comm_end + 2 :].split()
            groups[name] = groups.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return groups

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
