"""Locust load test of the iris classifier: `locust -f loadtest/locustfile.py --host URL`.

Users post flowers from the iris data set (and the tutorial's sample) to /iris/classify_iris,
and now and then GET /healthcheck. Every answer is checked and counted per pod and per node
(X-Pod-Name, X-Node-Name); the web UI shows the counts on its Pods and Nodes tabs (and
/iris/verdict), a headless run prints them. At the end the verdict on the thresholds below is
printed and becomes the exit code, so CI can gate on it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

# Locust puts the locustfile's directory and the working directory on sys.path; the repo root
# is needed for `loadtest` and `e2e.harness` from anywhere else.
REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import gevent  # noqa: E402
from flask import Response, jsonify, request  # noqa: E402
from locust import FastHttpUser, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402

from e2e.harness.balance import ALPHA, SKEW  # noqa: E402
from loadtest.answers import answer_problem, classify_problem  # noqa: E402
from loadtest.samples import iris  # noqa: E402
from loadtest.tally import NODE_HEADER, POD_HEADER, Tally, format_tally, share_rows  # noqa: E402
from loadtest.verdict import (  # noqa: E402
    CONNECTION_MODES,
    RunFigures,
    Thresholds,
    Verdict,
    evaluate,
)

CLASSIFY_PATH = "/iris/classify_iris"
HEALTH_PATH = "/healthcheck"
REPORT_KEY = "iris_tally"

TALLY = Tally()
_final: list[Verdict] = []  # set when the run ends, printed after Locust's own summary


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    parser.add_argument(
        "--connection-mode",
        choices=sorted(CONNECTION_MODES),
        default="new",
        help="new: `Connection: close`, a new connection per request, so the per-pod counts "
        "judge the Service's balancing (kube-proxy picks a pod per connection, not per "
        "request); keep-alive: one connection per user, as long-lived clients behave, so the "
        "counts show how connections spread and balance is not judged",
    )
    parser.add_argument(
        "--think-time",
        type=float,
        default=0.1,
        help="each user pauses a uniform 0..this many seconds between requests (0: none)",
    )
    parser.add_argument(
        "--expected-pods", type=int, default=3, help="pods that must all answer (default 3)"
    )
    parser.add_argument(
        "--pod-names",
        default="",
        help="comma-separated names of exactly the pods that must answer; overrides "
        "--expected-pods, and names the missing ones",
    )
    parser.add_argument(
        "--max-skew",
        type=float,
        default=SKEW,
        help=f"largest allowed max/min ratio of responses per pod (default {SKEW}; 0: off)",
    )
    parser.add_argument(
        "--balance-alpha",
        type=float,
        default=ALPHA,
        help="chi-square test of a uniform split over the pods fails below this p-value "
        f"(default {ALPHA}; 0: off)",
    )
    parser.add_argument(
        "--max-error-ratio",
        type=float,
        default=0.01,
        help="largest allowed share of failed requests (default 0.01)",
    )
    parser.add_argument(
        "--max-p95-ms",
        type=float,
        default=500.0,
        help="largest allowed 95th percentile response time in ms (default 500; 0: off)",
    )


def thresholds_from(options) -> Thresholds:
    names = tuple(name.strip() for name in options.pod_names.split(",") if name.strip())
    return Thresholds(
        expected_pods=options.expected_pods,
        pod_names=names,
        max_skew=options.max_skew,
        alpha=options.balance_alpha,
        max_error_ratio=options.max_error_ratio,
        max_p95_ms=options.max_p95_ms,
    )


# FastHttpUser (geventhttpclient), not HttpUser (requests): on one core against one uvicorn
# worker here it sent 1,478 rps keep-alive and 1,076 with a new connection per request, where
# HttpUser managed 664 and 557 (python -m loadtest.capacity; HttpUser measured the same way).
class IrisUser(FastHttpUser):
    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.rng = random.Random()
        self.think_time = options.think_time
        self.data = iris()
        # `Connection: close` makes the server end the connection after its answer, so the next
        # request opens a new one and kube-proxy picks a pod for it afresh.
        self.headers = {"Connection": "close"} if options.connection_mode == "new" else {}

    def wait_time(self) -> float:
        return self.rng.uniform(0, self.think_time)

    @task(10)
    def classify(self) -> None:
        with self.client.post(
            CLASSIFY_PATH,
            json=self.data.draw(self.rng),
            headers=self.headers,
            catch_response=True,
        ) as response:
            problem = classify_problem(
                response.status_code,
                response.json,
                _count(response),
                self.data.classes,
                _error(response),
            )
            if problem:
                response.failure(problem)

    @task(1)
    def healthcheck(self) -> None:
        with self.client.get(HEALTH_PATH, headers=self.headers, catch_response=True) as response:
            problem = answer_problem(response.status_code, _count(response), _error(response))
            if problem:
                response.failure(problem)


def _count(response) -> str | None:
    pod = response.headers.get(POD_HEADER) if response.headers else None
    if pod:
        TALLY.record(pod, response.headers.get(NODE_HEADER))
    return pod


def _error(response) -> object:
    """What went wrong with a request that got no answer; only such a response has it."""
    return getattr(response, "error", None)


def figures(environment: Environment) -> RunFigures:
    total = environment.stats.total
    return RunFigures(
        requests=total.num_requests,
        failures=total.num_failures,
        p95_ms=total.get_response_time_percentile(0.95) if total.num_requests else None,
        pods=dict(TALLY.pods),
        transport=CONNECTION_MODES[environment.parsed_options.connection_mode],
    )


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs) -> None:
    if environment.parsed_options is None:
        return
    try:
        thresholds_from(environment.parsed_options)
    except ValueError as error:
        sys.exit(f"loadtest: bad threshold: {error}")
    if environment.web_ui:
        _extend_web_ui(environment)
    if not isinstance(environment.runner, MasterRunner):
        iris()  # loaded now: in the first user's on_start it would stall every greenlet
    # gevent's loop caches the time, and it has not run since Locust started it, before seconds
    # of imports (this file's, scipy's, scikit-learn's). Without a refresh, the --run-time timer
    # Locust sets next counts from that stale time and ends the run seconds early.
    gevent.get_hub().loop.update_now()


# Workers count their own answers; each stats report carries the counts since the last one to
# the master, which sums them (with --processes, or the in-cluster master and workers).
@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict, **_kwargs) -> None:
    data[REPORT_KEY] = TALLY.take()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict, **_kwargs) -> None:
    TALLY.merge(data.get(REPORT_KEY, {}))


@events.reset_stats.add_listener
def _on_reset_stats(**_kwargs) -> None:
    TALLY.reset()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return  # the master judges the whole run
    verdict = evaluate(figures(environment), thresholds_from(environment.parsed_options))
    # Set either way: the thresholds, not Locust's "any failure at all", decide the exit code.
    environment.process_exit_code = verdict.exit_code
    _final.append(verdict)
    if prefix := environment.parsed_options.csv_prefix:
        _write_reports(prefix, verdict)


@events.quit.add_listener
def _on_quit(**_kwargs) -> None:
    # After Locust's own tables, so that the verdict is what a CI log ends with.
    for verdict in _final:
        print(f"\n{format_tally(TALLY)}\n\n{verdict.text()}", flush=True)


def _write_reports(prefix: str, verdict: Verdict) -> None:
    """Beside Locust's CSVs: the per-pod and per-node counts, and the verdict."""
    lines = ["kind,name,responses"]
    for kind, counts in (("pod", TALLY.pods), ("node", TALLY.nodes)):
        lines += [f"{kind},{name},{count}" for name, count in sorted(counts.items())]
    Path(f"{prefix}_pods.csv").write_text("\n".join(lines) + "\n")
    Path(f"{prefix}_verdict.txt").write_text(f"{format_tally(TALLY)}\n\n{verdict.text()}\n")


def _extend_web_ui(environment: Environment) -> None:
    """Pods and Nodes tabs in Locust's web UI: the table structure goes in the page's template
    arguments, the rows ride along on the /stats/requests answer the UI polls."""
    web_ui = environment.web_ui
    columns = [
        {"key": "name", "title": "Name"},
        {"key": "responses", "title": "Responses"},
        {"key": "share", "title": "Share"},
    ]
    web_ui.template_args["extended_tabs"] = [
        {"title": "Pods", "key": "pods"},
        {"title": "Nodes", "key": "nodes"},
    ]
    web_ui.template_args["extended_tables"] = [
        {"key": "pods", "structure": columns},
        {"key": "nodes", "structure": columns},
    ]

    @web_ui.app.after_request
    def _add_pod_rows(response: Response) -> Response:
        if request.path == "/stats/requests" and response.is_json:
            body = response.get_json()
            body["extended_stats"] = [
                {"key": "pods", "data": share_rows(TALLY.pods)},
                {"key": "nodes", "data": share_rows(TALLY.nodes)},
            ]
            response.set_data(jsonify(body).get_data())
        return response

    @web_ui.app.route("/iris/verdict")
    def _verdict_so_far() -> Response:
        """The counts and the verdict the run would get if it ended now."""
        verdict = evaluate(figures(environment), thresholds_from(environment.parsed_options))
        return jsonify(
            {
                "pods": dict(TALLY.pods),
                "nodes": dict(TALLY.nodes),
                "passed": verdict.passed,
                "verdict": verdict.text(),
            }
        )
