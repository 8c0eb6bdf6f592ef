"""Requests per second of one server process, measured with wrk: classify, the service's
healthcheck, and FastAPI's hello world (bench/hello.py), all served the way the image serves
the service (`server_command`).

The server runs on CPU 0 (`taskset -c 0`) and wrk on CPU 1, and the server's CPU time over each
run says what bounded it. A ratio of two servers' requests per second compares their costs
only when both ran at their core's limit: at 40% of a core it measures wrk, or whatever else
ran on CPU 0. Every endpoint gets the same client, concurrency, duration and warm-up, and the
measured runs alternate so that drift (CPU frequency, a noisy neighbour) hits all alike.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubeverify import stop_process
from service.schemas import TUTORIAL_SAMPLE

HOST = "127.0.0.1"  # all traffic stays on the loopback interface
SERVER_CPU = 0
CLIENT_CPU = 1
SATURATED = 0.9  # of one core: below it, the server was not what bounded the run
START_TIMEOUT_S = 30.0

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SERVICE_APP = None  # the app the image's CMD serves when given none
HELLO_APP = "bench.hello:app"

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
    app: str | None  # the import path of the app that serves it (None: the service)
    path: str
    setup: str = ""  # Lua that shapes wrk's request
    # Served by uvicorn alone (no access log, no limits, no identity): a reference for what
    # the service's server itself costs, judged against no goal.
    uvicorn_alone: bool = False


HEALTHCHECK = Endpoint("GET /healthcheck", SERVICE_APP, "/healthcheck")
CLASSIFY = Endpoint(
    "POST /iris/classify_iris",
    SERVICE_APP,
    "/iris/classify_iris",
    'wrk.method = "POST"\n'
    'wrk.headers["Content-Type"] = "application/json"\n'
    f"wrk.body = {json.dumps(json.dumps(TUTORIAL_SAMPLE))}\n",
)
HELLO = Endpoint("GET / (FastAPI hello world)", HELLO_APP, "/")
HELLO_ON_UVICORN = Endpoint("GET / (hello, uvicorn alone)", HELLO_APP, "/", uvicorn_alone=True)
ENDPOINTS = (HEALTHCHECK, CLASSIFY, HELLO, HELLO_ON_UVICORN)
# Where each app says it can serve: the service once its model is loaded.
READY_PATHS = {SERVICE_APP: "/readyz", HELLO_APP: "/"}


@dataclass(frozen=True)
class Run:
    endpoint: Endpoint
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # cores used on average over the run
    server_waited: float  # share of the run the server was runnable but waited for a CPU
    client_cpu: float

    @property
    def per_cpu_second(self) -> float:
        """Requests per second of server CPU: the cost, whatever else ran on the machine."""
        return self.rps / self.server_cpu if self.server_cpu else float("nan")

    def bound_by(self) -> str:
        if self.server_cpu >= SATURATED:
            return "server"
        # Below its limit because other processes held CPU 0 while it waited: for a tenth of
        # the run or more, or for all the time it would have needed to reach its limit.
        if self.server_waited >= 1 - SATURATED or self.server_cpu + self.server_waited >= SATURATED:
            return "CPU 0 busy"
        return "client"  # idle for want of requests


def image_command(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The Dockerfile's CMD: the command every pod runs."""
    text = dockerfile.read_text().replace("\\\n", " ")
    commands = [line for line in text.splitlines() if line.startswith("CMD ")]
    if not commands:
        raise RuntimeError(f"{dockerfile} has no CMD")
    # The last CMD is the final stage's: the image's.
    return json.loads(commands[-1].removeprefix("CMD "))


def server_command(app: str | None, port: int, root: Path = ROOT) -> list[str]:
    """How the bench serves `app`: the one place it builds a server's command line.

    The image's own command, read from `root`'s Dockerfile rather than copied here, serving `app`
    (`--app`; None: the iris service, as in the image) on 127.0.0.1:`port` instead of the pod's
    address. Its program is looked up where this interpreter's scripts are, as the image puts
    its venv first on PATH.
    """
    program, *args = image_command(root / "Dockerfile")
    served = ["--app", app] if app else []
    return [
        str(Path(sys.executable).parent / program), *args, *served, "--host", HOST, "--port",
        str(port),
    ]  # fmt: skip


def uvicorn_command(app: str, port: int) -> list[str]:
    """`app` on uvicorn's fastest stack with nothing of the service's server, for reference."""
    return [
        sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port),
        "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--no-server-header",
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pinned(cpu: int, command: list[str]) -> list[str]:
    """`command` on `cpu` alone; taskset execs it, so the pid is the command's."""
    if shutil.which("taskset") is None:
        raise RuntimeError("taskset is not installed: `apt-get install -y util-linux`")
    if not {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0):
        raise RuntimeError(f"needs CPUs {SERVER_CPU} and {CLIENT_CPU}: one for each side")
    return ["taskset", "-c", str(cpu), *command]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _waited_seconds(pid: int) -> float:
    """How long the server's main thread, which runs its event loop, has waited for a CPU."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # only reaped children: each wrk run
    return usage.ru_utime + usage.ru_stime


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serving_env(root: Path) -> dict[str, str]:
    """The environment with `root`'s packages first on the path, ahead of the ones installed."""
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


@dataclass(frozen=True)
class Server:
    base: str
    pid: int
    command: list[str]


@contextmanager
def serving(
    app: str | None, model_path: Path, log: Path, uvicorn_alone: bool = False, root: Path = ROOT
) -> Iterator[Server]:
    """`server_command(app)` (or `uvicorn_command`) on CPU 0, until it answers on its ready
    path; stopped after. `root`: the checkout whose code it serves (its packages first on the
    path, ahead of the one installed)."""
    port = _free_port()
    command = uvicorn_command(app, port) if uvicorn_alone else server_command(app, port, root)
    env = {
        **serving_env(root),
        "MODEL_PATH": str(model_path),
        "POD_NAME": "bench",
        "NODE_NAME": "bench",
    }
    with log.open("wb") as out:
        # The access log is written, as in production, only not to a terminal.
        server = subprocess.Popen(
            pinned(SERVER_CPU, command), cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(base + READY_PATHS[app]):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{app} not ready within {START_TIMEOUT_S:g} s (exit code "
                    f"{server.returncode}):\n{log.read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield Server(base, server.pid, command)
    finally:
        stop_process(server, grace=10)


def wrk(url: str, script: Path, seconds: float, connections: int) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    # wrk stops by itself after `seconds`; the timeout only guards against a hang.
    done = subprocess.run(
        pinned(CLIENT_CPU, command),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
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
) -> tuple[list[list[Run]], list[list[str]]]:
    """One list per round, a Run per endpoint in ENDPOINTS order; and each server's command."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` on Debian or Ubuntu")
    runs: list[list[Run]] = []
    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp, ExitStack() as servers:
        # Both up for the whole measurement, so that their runs can alternate; the one not
        # under load idles.
        kinds = dict.fromkeys((endpoint.app, endpoint.uvicorn_alone) for endpoint in ENDPOINTS)
        served = {
            kind: servers.enter_context(
                serving(*kind[:1], model_path, Path(tmp, f"server{i}.log"), kind[1])
            )
            for i, kind in enumerate(kinds)
        }
        scripts = {
            endpoint: script_for(endpoint, Path(tmp), f"endpoint{i}")
            for i, endpoint in enumerate(ENDPOINTS)
        }
        for endpoint in ENDPOINTS:
            wrk(
                served[endpoint.app, endpoint.uvicorn_alone].base + endpoint.path,
                scripts[endpoint],
                warmup,
                connections,
            )
        for number in range(rounds):
            # The order reversed every other round: no endpoint always runs after another.
            order = ENDPOINTS if number % 2 == 0 else ENDPOINTS[::-1]
            ran = {
                endpoint: timed_run(
                    endpoint,
                    served[endpoint.app, endpoint.uvicorn_alone],
                    scripts[endpoint],
                    seconds,
                    connections,
                )
                for endpoint in order
            }
            runs.append([ran[endpoint] for endpoint in ENDPOINTS])
    return runs, [server.command for server in served.values()]


def script_for(endpoint: Endpoint, directory: Path, name: str) -> Path:
    """wrk's script for the endpoint: its request and the JSON report."""
    script = directory / f"{name}.lua"
    script.write_text(endpoint.setup + _REPORT)
    return script


def timed_run(
    endpoint: Endpoint, server: Server, script: Path, seconds: float, connections: int
) -> Run:
    """One measured wrk run at the endpoint, with what the server and wrk used meanwhile."""
    cpu, waited, client = (
        _cpu_seconds(server.pid),
        _waited_seconds(server.pid),
        _children_cpu_seconds(),
    )
    started = time.monotonic()
    report = wrk(server.base + endpoint.path, script, seconds, connections)
    # From before wrk starts to after it exits: a little longer than its own duration, so the
    # CPU shares err low, never into "server-bound".
    window = time.monotonic() - started
    return Run(
        endpoint=endpoint,
        rps=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        server_cpu=(_cpu_seconds(server.pid) - cpu) / window,
        server_waited=(_waited_seconds(server.pid) - waited) / window,
        client_cpu=(_children_cpu_seconds() - client) / window,
    )
