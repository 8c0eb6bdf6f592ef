"""Requests per second of one uvicorn worker, classify against healthcheck, measured with wrk.

Both endpoints get the same client, concurrency, duration and warm-up, and the measured runs
alternate between them so that drift (CPU frequency, a noisy neighbour) hits both alike. With
two cores or more, the server and wrk are pinned to different cores, and the CPU each used is
reported: the server near 100% of its core with wrk well below shows that the server is what
is measured, not the load generator.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubeverify.processes import stop
from service.schemas import TUTORIAL_SAMPLE

HOST = "127.0.0.1"  # all traffic stays on the loopback interface
START_TIMEOUT_S = 30.0

# wrk keeps its request loop in C as long as the script defines no request() or response():
# a static request plus a done() that reports in JSON costs nothing per request.
_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    setup: str = ""  # Lua that shapes wrk's request


ENDPOINTS = (
    Endpoint("GET /healthcheck", "/healthcheck"),
    Endpoint(
        "POST /iris/classify_iris",
        "/iris/classify_iris",
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(TUTORIAL_SAMPLE))}\n",
    ),
)


@dataclass(frozen=True)
class Run:
    endpoint: str
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # cores used on average
    client_cpu: float

    @property
    def per_cpu_second(self) -> float:
        """Requests per second of server CPU: the cost, whatever else ran on the machine."""
        return self.rps / self.server_cpu if self.server_cpu else float("nan")


@dataclass(frozen=True)
class Layout:
    server_cpus: frozenset[int] = frozenset()  # empty: not pinned
    client_cpus: frozenset[int] = frozenset()

    def describe(self) -> str:
        if not self.server_cpus:
            return "server and wrk share every core (fewer than 2 available)"
        return f"server on CPU {sorted(self.server_cpus)}, wrk on CPU {sorted(self.client_cpus)}"


def cpu_layout() -> Layout:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Layout()
    return Layout(frozenset(cpus[:1]), frozenset(cpus[1:]))


def _pinned_to(cpus: frozenset[int]) -> Callable[[], None] | None:
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # only reaped children: each wrk run
    return usage.ru_utime + usage.ru_stime


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def uvicorn_server(model_path: Path, layout: Layout, log: Path) -> Iterator[tuple[str, int]]:
    """One uvicorn worker, started as the image starts it; yields its base URL and pid."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "service.app:app", "--host", HOST,
               "--port", str(port), "--no-access-log"]  # fmt: skip
    env = {**os.environ, "MODEL_PATH": str(model_path), "POD_NAME": "bench", "NODE_NAME": "bench"}
    with log.open("wb") as out:
        # The access log is written, as in production, only not to a terminal.
        server = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_pinned_to(layout.server_cpus),
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(base + "/readyz"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"uvicorn not ready within {START_TIMEOUT_S:g} s (exit code "
                    f"{server.returncode}):\n{log.read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield base, server.pid
    finally:
        stop(server, grace=10)


def wrk(url: str, script: Path, seconds: float, connections: int, layout: Layout) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    # wrk stops by itself after `seconds`; the timeout only guards against a hang.
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
        preexec_fn=_pinned_to(layout.client_cpus),
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr or done.stdout}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["non_2xx"] or report["socket_errors"]:
        raise RuntimeError(
            f"{url}: {report['non_2xx']} non-2xx answers and {report['socket_errors']} socket "
            "errors: the figures would not measure the endpoint"
        )
    return report


def measure(
    model_path: Path, seconds: float, rounds: int, warmup: float, connections: int
) -> tuple[list[list[Run]], Layout]:
    """One list per round, a Run per endpoint in ENDPOINTS order."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` on Debian or Ubuntu")
    layout = cpu_layout()
    runs: list[list[Run]] = []
    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
        scripts = {}
        for i, endpoint in enumerate(ENDPOINTS):
            scripts[endpoint] = Path(tmp, f"endpoint{i}.lua")
            scripts[endpoint].write_text(endpoint.setup + _REPORT)
        with uvicorn_server(model_path, layout, Path(tmp, "server.log")) as (base, pid):
            for endpoint in ENDPOINTS:
                wrk(base + endpoint.path, scripts[endpoint], warmup, connections, layout)
            for _ in range(rounds):
                runs.append([])
                for endpoint in ENDPOINTS:
                    server_cpu, client_cpu = _cpu_seconds(pid), _children_cpu_seconds()
                    report = wrk(
                        base + endpoint.path, scripts[endpoint], seconds, connections, layout
                    )
                    wall = report["duration_us"] / 1e6
                    runs[-1].append(
                        Run(
                            endpoint=endpoint.name,
                            rps=report["requests"] / wall,
                            p50_ms=report["p50_us"] / 1000,
                            p99_ms=report["p99_us"] / 1000,
                            server_cpu=(_cpu_seconds(pid) - server_cpu) / wall,
                            client_cpu=(_children_cpu_seconds() - client_cpu) / wall,
                        )
                    )
    return runs, layout
