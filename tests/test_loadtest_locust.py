"""The locustfile run by Locust itself, headless, against a stand-in for a Service.

The stand-in plays kube-proxy's part: it picks a "pod" per connection, not per request, and
every answer on that connection names that pod. That shows what the connection modes really do
on the wire (a new connection per request, or one per user) without a cluster.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from kubeverify.locust import cli as locust_cli
from kubeverify.waiting import DeadlineExceeded, Observation, wait_until

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtest" / "locustfile.py"

# Looked up, never imported: importing Locust monkey-patches the pytest process with gevent.
if importlib.util.find_spec("locust") is None:
    pytest.skip("Locust is not installed (the load or e2e extra)", allow_module_level=True)

RUN_SECONDS = 3
PODS = ("pod-a", "pod-b", "pod-c")


@dataclass
class FakeService:
    """Answers like the classifier; `pods` is the round-robin kube-proxy picks from, per
    connection (repeat a name to skew it)."""

    pods: tuple[str, ...] = PODS
    status: int = 200
    # False: answers never say `Connection: close`, so the client keeps its connection open
    # even when it asked for a new one per request.
    honours_close: bool = True
    # Pods that answer late by this many seconds (a sick replica beside well siblings).
    slow: dict[str, float] = field(default_factory=dict)
    connections: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self
        picks = itertools.cycle(self.pods)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive unless the client says close
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def setup(self) -> None:
                super().setup()
                with service._lock:
                    service.connections += 1
                    self.pod = next(picks)
                    self.connection_id = f"{self.client_address[1]}/{service.connections}"

            def _answer(self, body: bytes) -> None:
                with service._lock:
                    service.requests += 1
                if delay := service.slow.get(self.pod):
                    time.sleep(delay)
                self.send_response(service.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Pod-Name", self.pod)
                self.send_header("X-Node-Name", f"node-of-{self.pod}")
                self.send_header("X-Connection-Id", self.connection_id)
                if not service.honours_close:
                    self.close_connection = False
                if self.close_connection:
                    # As uvicorn does; geventhttpclient decides by the answer, not its request,
                    # whether a connection may be reused.
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(json.dumps({"class": "setosa", "probability": 0.99}).encode())

            def do_GET(self) -> None:
                self._answer(b'"Iris classifier is ready!"')

            def log_message(self, *args) -> None:
                pass

        return Handler

    @contextmanager
    def serving(self) -> Iterator[str]:
        server = _Server(("127.0.0.1", 0), self.handler())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A connection per request at a thousand a second overflows the default backlog of 5.
    request_queue_size = 512

    def handle_error(self, request, client_address) -> None:
        # Users stopped at the end of a run hang up mid-answer; anything else is a real error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# The chi-square needs about 900 responses before a pass means anything (its "balance evidence"
# check); a short run on a busy machine may not get there. Tests of something else turn it off
# and keep the max/min skew check.
NO_CHI_SQUARE = ("--balance-alpha", "0")


def locust(host: str, *args: str, users: int = 4, seconds: int = RUN_SECONDS):
    command = locust_cli.headless_command(
        LOCUSTFILE, host, users=users, seconds=seconds, extra=args
    )
    return locust_cli.run(command, seconds)


def test_new_connection_mode_opens_a_connection_per_request_and_passes_on_even_counts():
    service = FakeService()
    with service.serving() as host:
        run = locust(host, "--connection-mode", "new", "--think-time", "0", *NO_CHI_SQUARE)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert service.requests > 100
    assert service.connections == service.requests
    assert "verdict: PASSED" in run.stdout
    assert "[ok] a connection per request: " in run.stdout
    assert "\n  [memory] Locust peak memory " in run.stdout
    for pod in PODS:
        assert f"node-of-{pod}" in run.stdout


def test_a_client_that_keeps_its_connection_fails_the_new_connection_proof():
    service = FakeService(honours_close=False)  # so geventhttpclient reuses the connection
    with service.serving() as host:
        run = locust(host, "--connection-mode", "new", "--think-time", "0", *NO_CHI_SQUARE)
    print(run.stdout)
    assert service.connections < service.requests
    assert run.returncode == 1
    assert "[FAILED] a connection per request: " in run.stdout


def test_keep_alive_mode_keeps_one_connection_per_user_and_judges_pods_by_chance():
    service = FakeService()
    with service.serving() as host:
        run = locust(host, "--connection-mode", "keep-alive", "--think-time", "0", users=2)
    print(run.stdout)
    assert service.requests > 100
    assert service.connections == 2
    # 2 connections over 3 pods always leave one out: bad luck, not a fault of the Service.
    assert run.returncode == 0, run.stdout
    assert "[ok] pods: 2 of 3 expected pods answered (" in run.stdout
    assert "pods not judged: " in run.stdout
    assert "2 connections leave a pod out 100.0% of the time on an even Service" in run.stdout
    assert "balance not judged: 2 keep-alive connections, each one draw" in run.stdout


def test_keep_alive_users_enough_to_reach_every_pod_fail_a_service_short_of_one():
    service = FakeService(pods=("pod-a", "pod-b"))
    with service.serving() as host:
        run = locust(host, "--connection-mode", "keep-alive", "--think-time", "0.05", users=30)
    print(run.stdout)
    assert service.connections == 30
    assert run.returncode == 1
    assert "1 short (an even Service leaves a pod out of 30 connections with chance 1.6e-05)" in (
        run.stdout
    )


def test_a_skewed_service_fails_the_verdict_on_skew():
    service = FakeService(pods=("pod-a", "pod-a", "pod-b", "pod-c"))
    with service.serving() as host:
        run = locust(host, "--think-time", "0")
    print(run.stdout)
    assert run.returncode == 1
    assert "verdict: FAILED" in run.stdout
    assert "[FAILED] balance skew: max/min 2.0" in run.stdout


def test_a_service_short_of_pods_fails_naming_the_missing_ones():
    service = FakeService(pods=("pod-a", "pod-b"))
    with service.serving() as host:
        run = locust(host, "--think-time", "0", "--pod-names", ",".join(PODS))
    print(run.stdout)
    assert run.returncode == 1
    assert "1 short, no response from pod-c" in run.stdout


def test_a_slow_pod_beside_well_siblings_is_named_by_per_pod_health():
    # Even counts, no error, a p95 within bounds: only the pod's latency beside its siblings'
    # tells it apart.
    service = FakeService(slow={"pod-b": 0.02})
    with service.serving() as host:
        run = locust(host, "--think-time", "0", *NO_CHI_SQUARE)
    print(run.stdout)
    assert run.returncode == 1
    assert (
        "[FAILED] each pod as healthy as its siblings: per pod: 1 of 3 pods sick: pod-b: median"
        in run.stdout
    )
    assert "[ok] balance skew" in run.stdout
    assert "[ok] error ratio" in run.stdout


def test_errors_and_latency_beyond_the_thresholds_fail():
    service = FakeService(status=503)
    with service.serving() as host:
        run = locust(host, "--think-time", "0", "--max-p95-ms", "0.001")
    print(run.stdout)
    assert run.returncode == 1
    assert "[FAILED] error ratio" in run.stdout
    assert "[FAILED] p95 latency" in run.stdout


def test_bad_thresholds_stop_locust_before_any_request():
    service = FakeService()
    with service.serving() as host:
        run = locust(host, "--max-skew", "0.5")
    assert run.returncode != 0
    assert "bad threshold: max skew" in run.stderr
    assert service.requests == 0


# Locust's imports take seconds, more on a busy machine; then workers report every 3 s
# (Locust's WORKER_REPORT_INTERVAL), later when the machine is busy.
LOCUST_START_S = 60
REPORTS_DEADLINE_S = 30


def test_worker_processes_report_their_counts_to_the_master(tmp_path):
    # Not headless: at --run-time a headless master sends "quit" and gives the workers' last
    # reports half a second (MasterRunner.quit), which a busy machine misses. With --autostart
    # it stops the workers and keeps receiving their reports; it is ended once they are in.
    service = FakeService()
    web_port, master_port = _free_port(), _free_port()
    with service.serving() as host:
        command = _web_ui_command(
            host, web_port, "--processes", "2", "-t", f"{RUN_SECONDS}s",
            # Not Locust's default 5557: the workers of another run on this machine would join.
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
            "--master-port", str(master_port),
            # A bound: the test ends the run itself as soon as the reports are in.
            "--autoquit", str(LOCUST_START_S + REPORTS_DEADLINE_S), "--stop-timeout", "5",
            "--think-time", "0", "--csv", str(tmp_path / "run"), *NO_CHI_SQUARE, users=4,
        )  # fmt: skip
        log = tmp_path / "locust.log"
        with locust_cli.started(command, log) as master:
            ui = f"http://127.0.0.1:{web_port}"
            try:
                seen = wait_until(
                    lambda: _master_counts(ui, service.requests),
                    what="the workers' last reports at the master",
                    timeout=LOCUST_START_S + RUN_SECONDS + REPORTS_DEADLINE_S,
                ).value
            except DeadlineExceeded as error:
                pytest.fail(f"{error}\n{log.read_text()[-3000:]}")
            master.terminate()  # Locust's own shutdown: the verdict, then the reports
            exit_code = master.wait(timeout=REPORTS_DEADLINE_S)
    output = log.read_text()
    print(output)
    assert exit_code == 0, output[-3000:]
    assert output.count("verdict: PASSED") == 1  # the master's; workers do not judge
    counted = sum(
        int(line.split(",")[2])
        for line in (tmp_path / "run_pods.csv").read_text().splitlines()[1:]
        if line.startswith("pod,")
    )
    # Every answer the workers counted reached the master, and no answer went uncounted.
    assert service.requests > 100
    assert counted == seen["pods"] == seen["requests"] == service.requests
    assert "verdict: PASSED" in (tmp_path / "run_verdict.txt").read_text()
    # The master judged the run, and says what it held at most doing so.
    assert "\n  [memory] master peak memory " in (tmp_path / "run_verdict.txt").read_text()
    stated = json.loads((tmp_path / "run_verdict.json").read_text())["memory"]
    assert stated["role"] == "master"
    assert 30 < stated["peak_mib"] < 1024


def _master_counts(ui: str, answered: int) -> Observation:
    """Done once the run has stopped and the master counts every answer the service gave, in
    Locust's statistics and in the per-pod counts."""
    try:
        stats = httpx.get(f"{ui}/stats/requests", timeout=2).json()
        verdict = httpx.get(f"{ui}/kubeverify/verdict", timeout=2).json()
    except (httpx.HTTPError, ValueError) as error:
        return Observation(False, f"{type(error).__name__}: {error}")
    counts = {
        "requests": next(row for row in stats["stats"] if row["name"] == "Aggregated")[
            "num_requests"
        ],
        "pods": sum(verdict["pods"].values()),
    }
    done = stats["state"] == "stopped" and counts["requests"] == counts["pods"] == answered
    return Observation(
        done, f"state {stats['state']}, {counts}, the service answered {answered}", counts
    )


def _web_ui_command(host: str, web_port: int, *args: str, users: int) -> list[str]:
    """Locust with its web UI on 127.0.0.1, starting the users at once."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host,
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--autostart",
        "-u", str(users), "-r", str(users), *args,
    ]  # fmt: skip


def test_the_web_ui_shows_pod_and_node_tabs_and_the_verdict_so_far(tmp_path):
    service = FakeService()
    web_port = _free_port()
    with service.serving() as host:
        command = _web_ui_command(
            host, web_port, "-t", "20s", "--autoquit", "0", "--think-time", "0.05", users=2
        )
        ui = f"http://127.0.0.1:{web_port}"
        with locust_cli.started(command, tmp_path / "locust.log"):
            seen = wait_until(
                lambda: _pod_rows(ui), what="pod rows in the web UI's stats", timeout=30
            ).value
            page = httpx.get(ui, timeout=5).text
            verdict = httpx.get(f"{ui}/kubeverify/verdict", timeout=5).json()
    assert {row["name"] for row in seen["pods"]} == set(PODS)
    assert {row["name"] for row in seen["nodes"]} == {f"node-of-{pod}" for pod in PODS}
    assert '"extended_tabs": [{"key": "pods", "title": "Pods"}' in page
    assert set(verdict["pods"]) == set(PODS)
    assert "[ok] pods: 3 of 3 expected pods answered" in verdict["verdict"]


def _pod_rows(ui: str) -> Observation:
    try:
        stats = httpx.get(f"{ui}/stats/requests", timeout=2).json()
    except (httpx.HTTPError, ValueError) as error:
        return Observation(False, f"{type(error).__name__}: {error}")
    tables = {table["key"]: table["data"] for table in stats.get("extended_stats", [])}
    pods = {row["name"] for row in tables.get("pods", [])}
    return Observation(pods == set(PODS), f"extended_stats {tables}", tables)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
