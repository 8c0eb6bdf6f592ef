"""`python -m bench.locust_capacity`: requests per second one Locust worker sustains on one pod.

One server process on 127.0.0.1, started as the image starts it, stands in for one pod; one
Locust process (one worker: Locust uses a single core) runs the project's locustfile at it, with
keep-alive connections and with a new connection per request, each bounded in time. The server
is pinned to CPU 0 and Locust to CPU 1, and the CPU each used while the users ran says which
bounded the figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.throughput import CLIENT_CPU, SERVER_CPU, SERVICE_APP, pinned, serving
from kubeverify import Observation, wait_until
from kubeverify.locust import OVERRUN_S, aggregated, headless_command, started
from service import train

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtest" / "locustfile.py"

MODES = ("keep-alive", "new")
SATURATED = 0.9  # of one core
START_TIMEOUT_S = 60  # Locust's imports take seconds, more on a busy machine


@dataclass(frozen=True)
class Capacity:
    mode: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    locust_cpu: float  # cores used on average while the users ran
    server_cpu: float
    exit_code: int
    said: str = ""  # on a failure, Locust's verdict, or the end of its log where none was written

    @property
    def rps_per_locust_core(self) -> float:
        """What one Locust worker would do with its core to itself: a linear estimate, for
        sizing --workers when the server, not Locust, bounded the run."""
        return self.rps / self.locust_cpu if self.locust_cpu else 0.0

    def bound_by(self) -> str:
        if self.locust_cpu >= SATURATED:
            return "Locust"
        if self.server_cpu >= SATURATED:
            return "server"
        return "neither"


def measure(
    base: str,
    server: psutil.Process,
    mode: str,
    users: int,
    seconds: int,
    tmp: Path,
) -> Capacity:
    prefix = tmp / f"capacity-{mode}"
    log = tmp / f"capacity-{mode}.log"
    command = headless_command(
        LOCUSTFILE,
        base,
        users=users,
        seconds=seconds,
        csv_prefix=prefix,
        # One pod, and latency is measured here, not judged.
        extra=[
            *("--connection-mode", mode, "--think-time", "0"),
            *("--expected-pods", "1", "--max-p95-ms", "0"),
        ],
    )
    children_before = _children_cpu_seconds()
    with started(pinned(CLIENT_CPU, command), log) as process:
        # CPU counts from the moment the users start: Locust's start-up is not its capacity.
        wait_until(
            lambda: _users_started(log, process),
            what=f"Locust starting its users ({log})",
            timeout=START_TIMEOUT_S,
            interval=0.1,
        )
        locust_at_start = _cpu_seconds(psutil.Process(process.pid))
        server_at_start = _cpu_seconds(server)
        process.wait(timeout=seconds + OVERRUN_S)
        server_cpu = _cpu_seconds(server) - server_at_start
    locust_cpu = _children_cpu_seconds() - children_before - locust_at_start
    row = aggregated(prefix)
    return Capacity(
        mode=mode,
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=float(row["50%"]),
        p95_ms=float(row["95%"]),
        locust_cpu=locust_cpu / seconds,
        server_cpu=server_cpu / seconds,
        exit_code=process.returncode,
        said=what_locust_said(prefix, log) if process.returncode else "",
    )


def what_locust_said(prefix: Path, log: Path, lines: int = 40) -> str:
    """The verdict kubeverify's listeners wrote, or, where a failure came before it (a
    traceback in an event handler), the end of Locust's log."""
    verdict = Path(f"{prefix}_verdict.txt")
    if verdict.exists():
        return verdict.read_text(errors="replace").rstrip()
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _users_started(log: Path, process) -> Observation:
    text = log.read_text(errors="replace")
    if process.poll() is not None:
        raise RuntimeError(f"Locust exited {process.returncode} before its run:\n{text[-2000:]}")
    return Observation("Ramping to" in text, text.strip().splitlines()[-1:] or "no output yet")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: each Locust run
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locust_capacity", description=__doc__)
    parser.add_argument("--seconds", type=int, default=15, help="run time per mode (default 15)")
    parser.add_argument("--users", type=int, default=32, help="Locust users (default 32)")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300 or not 1 <= args.users <= 1000:
        parser.error("--seconds must lie in 1..300 and --users in 1..1000")
    # Figures from a busy machine measure its other work; the load says whether it was.
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="iris-capacity-") as tmp:
        artifact = Path(tmp, "model.json")
        if train.main([str(artifact)]) != 0:
            return 1
        with serving(SERVICE_APP, artifact, Path(tmp, "server.log")) as served:
            server = psutil.Process(served.pid)
            for mode in MODES:
                print(f"[capacity] {mode}: {args.users} users for {args.seconds} s ...", flush=True)
                results.append(
                    measure(served.base, server, mode, args.users, args.seconds, Path(tmp))
                )
    print(
        f"\nOne Locust worker (FastHttpUser, {args.users} users, no think time) against one "
        f"server process on 127.0.0.1, {args.seconds} s per mode; server on CPU {SERVER_CPU}, "
        f"Locust on CPU {CLIENT_CPU}; load average {load:.1f} on "
        f"{os.cpu_count()} CPUs before the runs"
    )
    print(
        f"  {'connection':<11} {'rps':>8} {'requests':>9} {'failed':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'Locust CPU':>10} {'server CPU':>10} {'rps/Locust core':>15}  bound by"
    )
    for r in results:
        print(
            f"  {r.mode:<11} {r.rps:>8,.0f} {r.requests:>9} {r.failures:>7} {r.p50_ms:>7.0f} "
            f"{r.p95_ms:>7.0f} {r.locust_cpu:>10.0%} {r.server_cpu:>10.0%} "
            f"{r.rps_per_locust_core:>15,.0f}  {r.bound_by()}"
        )
    keep_alive, new = results
    print(f"  new connection / keep-alive: {new.rps / keep_alive.rps:.2f}")
    failed = [r for r in results if r.exit_code != 0]
    for r in failed:
        print(
            f"  the {r.mode} run failed (Locust exit code {r.exit_code}):\n{r.said}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
