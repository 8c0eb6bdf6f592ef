"""Locust listeners for any service whose answers name their pod: import this module from a
locustfile (`from kubeverify.locust import listeners`) and every answer is counted per pod and
per node, the web UI gains Pods and Nodes tabs (and /kubeverify/verdict), and at the end the
verdict on the thresholds below is printed and becomes Locust's exit code, so CI can gate on it.

Users call `check(response, self.environment)` in their tasks for what every answer must be
(the status, a pod header), and send `request_headers(environment)` so that
`--connection-mode new` opens a new connection per request.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import gevent
from flask import Response, jsonify, request
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from kubeverify.answers import answer_problem
from kubeverify.balance import ALPHA, SKEW
from kubeverify.locust.memory import peak_memory
from kubeverify.locust.tally import Tally, format_tally, pod_rows, share_rows, split_rows
from kubeverify.locust.verdict import (
    CONNECTION_MODES,
    Judgement,
    RunFigures,
    Thresholds,
    declared_split,
    evaluate,
)
from kubeverify.target import DEFAULT_POD_HEADER

REPORT_KEY = "kubeverify_tally"

TALLY = Tally()
_environment: list[Environment] = []  # the run's, for listeners Locust does not hand it to
_final: list[Judgement] = []  # set when the run ends, printed after Locust's own summary
_peak_users = [0]  # the most users spawned at once: a floor on the connections they opened


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    group = parser.add_argument_group("kubeverify", "per-pod counts and the verdict")
    group.add_argument(
        "--connection-mode",
        choices=sorted(CONNECTION_MODES),
        default="new",
        help="new: `Connection: close`, a new connection per request, so the per-pod counts "
        "judge the Service's balancing (kube-proxy picks a pod per connection, not per "
        "request); keep-alive: one connection per user, as long-lived clients behave, so each "
        "connection is one draw: balance is judged on connections per pod when there are "
        "enough (see --connection-header)",
    )
    group.add_argument(
        "--pod-header", default=DEFAULT_POD_HEADER, help="the header naming the answering pod"
    )
    group.add_argument(
        "--node-header", default="X-Node-Name", help="the header naming its node ('': none)"
    )
    group.add_argument(
        "--connection-header",
        default="X-Connection-Id",
        help="the header naming the connection an answer came on, the same for every request "
        "of one connection ('': none): proves a new connection per request, and counts "
        "keep-alive connections",
    )
    group.add_argument(
        "--expected-pods", type=int, default=3, help="pods that must all answer (default 3)"
    )
    group.add_argument(
        "--pod-names",
        default="",
        help="comma-separated names of exactly the pods that must answer; overrides "
        "--expected-pods, and names the missing ones",
    )
    group.add_argument(
        "--pods-replaced",
        action="store_true",
        help="the run spans a change that replaces the pods (a rollout): the pods of "
        "--pod-names (those before it) must answer, and as many others (their replacements); "
        "balance is not judged",
    )
    group.add_argument(
        "--split-header",
        default="",
        help="the header naming the group an answer belongs to (X-Model-Version, say), for "
        "--declared-split",
    )
    group.add_argument(
        "--declared-split",
        default="",
        help="the share each group should get, as GROUP=WEIGHT,... (weights relative: "
        "'1=75,2=25'); judged like the balance, with its error rates, on the groups the "
        "--split-header names",
    )
    group.add_argument(
        "--max-skew",
        type=float,
        default=SKEW,
        help=f"largest allowed max/min ratio of responses per pod (default {SKEW}; 0: off)",
    )
    group.add_argument(
        "--balance-alpha",
        type=float,
        default=ALPHA,
        help="chi-square test of a uniform split over the pods fails below this p-value "
        f"(default {ALPHA}; 0: off)",
    )
    group.add_argument(
        "--max-error-ratio",
        type=float,
        default=0.01,
        help="largest allowed share of failed requests (default 0.01; 0: none may fail, "
        "stated as the bound 0 failures of n give)",
    )
    group.add_argument(
        "--max-p95-ms",
        type=float,
        default=500.0,
        help="largest allowed 95th percentile response time in ms (default 500; 0: off)",
    )
    group.add_argument(
        "--enforce-power",
        action="store_true",
        help="per-pod health short of its power (0.99 against one pod at 5%% errors, or twice "
        "as slow: a run too short for it) fails the run, rather than passing at low power",
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
        pods_replaced=options.pods_replaced,
        declared_split=declared_split(options.declared_split, options.split_header),
        enforce_power=options.enforce_power,
    )


def request_headers(environment: Environment) -> dict[str, str]:
    """Headers every request of a user carries: `Connection: close` in the new-connection
    mode makes the server end the connection after its answer, so the next request opens a
    new one and kube-proxy picks a pod for it afresh."""
    return {"Connection": "close"} if environment.parsed_options.connection_mode == "new" else {}


def check(response, environment: Environment) -> str | None:
    """Count the answer for its pod and node; None for a good answer (200 from a pod that
    names itself), else what is wrong, for `response.failure()`."""
    parsed = environment.parsed_options
    headers = response.headers or {}
    pod = headers.get(parsed.pod_header)
    if pod:
        TALLY.record(
            pod,
            headers.get(parsed.node_header) if parsed.node_header else None,
            headers.get(parsed.connection_header) if parsed.connection_header else None,
            headers.get(parsed.split_header, "") if parsed.split_header else None,
        )
    return answer_problem(
        response.status_code,
        pod,
        pod_header=parsed.pod_header,
        error=getattr(response, "error", None),
    )


def figures(environment: Environment) -> RunFigures:
    total = environment.stats.total
    return RunFigures(
        requests=total.num_requests,
        failures=total.num_failures,
        p95_ms=total.get_response_time_percentile(0.95) if total.num_requests else None,
        pods=dict(TALLY.pods),
        transport=CONNECTION_MODES[environment.parsed_options.connection_mode],
        connections=TALLY.connections,
        connections_capped=TALLY.connections_capped,
        reused=TALLY.reused,
        users=_peak_users[0] or None,
        groups=dict(TALLY.groups) if environment.parsed_options.split_header else None,
        answers=TALLY.answers,
    )


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs) -> None:
    _environment[:] = [environment]
    if environment.parsed_options is None:
        return
    try:
        thresholds_from(environment.parsed_options)
    except ValueError as error:
        sys.exit(f"kubeverify: bad threshold: {error}")
    if environment.web_ui:
        _extend_web_ui(environment)
    # gevent's loop caches the time, and it has not run since Locust started it, before seconds
    # of imports (the locustfile's, scipy's). Without a refresh, the --run-time timer Locust
    # sets next counts from that stale time and ends the run seconds early.
    gevent.get_hub().loop.update_now()


# Workers count their own answers; each stats report carries the counts since the last one to
# the master, which sums them (with --processes, or in-cluster master and workers).
@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict, **_kwargs) -> None:
    data[REPORT_KEY] = TALLY.take()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict, **_kwargs) -> None:
    TALLY.merge(data.get(REPORT_KEY, {}))


@events.request.add_listener
def _on_request(response_time, response=None, exception=None, **_kwargs) -> None:
    """Each answer's latency and outcome for its pod, as Locust counted it (a failure the
    locustfile marked included): per-pod health's sample."""
    environment = _environment[0] if _environment else None
    headers = getattr(response, "headers", None)
    if environment is None or environment.parsed_options is None or not headers:
        return
    if pod := headers.get(environment.parsed_options.pod_header):
        TALLY.answered(pod, response_time / 1000, exception is not None)


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **_kwargs) -> None:
    _peak_users[0] = max(_peak_users[0], user_count)


@events.reset_stats.add_listener
def _on_reset_stats(**_kwargs) -> None:
    TALLY.reset()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return  # the master judges the whole run
    verdict = evaluate(figures(environment), thresholds_from(environment.parsed_options))
    # Measured once the verdicts are computed: what the run and its judging held at most.
    role = "master" if getattr(environment.parsed_options, "master", False) else "Locust"
    verdict = replace(verdict, memory=peak_memory(role))
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


def _write_reports(prefix: str, verdict: Judgement) -> None:
    """Beside Locust's CSVs: the per-pod and per-node counts, and the verdicts (as text, and as
    JSON with the error rates each claims)."""
    lines = ["kind,name,responses"]
    for kind, counts in (("pod", TALLY.pods), ("node", TALLY.nodes)):
        lines += [f"{kind},{name},{count}" for name, count in sorted(counts.items())]
    Path(f"{prefix}_pods.csv").write_text("\n".join(lines) + "\n")
    Path(f"{prefix}_verdict.txt").write_text(f"{format_tally(TALLY)}\n\n{verdict.text()}\n")
    Path(f"{prefix}_verdict.json").write_text(json.dumps(verdict.to_json(), indent=2) + "\n")


def _extend_web_ui(environment: Environment) -> None:
    """Pods and Nodes tabs in Locust's web UI: the table structure goes in the page's template
    arguments, the rows ride along on the /stats/requests answer the UI polls."""
    web_ui = environment.web_ui
    columns = [
        {"key": "name", "title": "Name"},
        {"key": "responses", "title": "Responses"},
        {"key": "share", "title": "Share"},
    ]
    declared = thresholds_from(environment.parsed_options).declared_split
    web_ui.template_args["extended_tabs"] = [
        {"title": "Pods", "key": "pods"},
        {"title": "Nodes", "key": "nodes"},
        *([{"title": "Split", "key": "split"}] if declared else []),
    ]
    web_ui.template_args["extended_tables"] = [
        {
            "key": "pods",
            "structure": [
                *columns,
                {"key": "failed", "title": "Failed (first answers)"},
                {"key": "median_ms", "title": "Median ms"},
            ],
        },
        {"key": "nodes", "structure": columns},
        {"key": "split", "structure": [*columns, {"key": "declared", "title": "Declared"}]},
    ]

    @web_ui.app.after_request
    def _add_pod_rows(response: Response) -> Response:
        if request.path == "/stats/requests" and response.is_json:
            body = response.get_json()
            body["extended_stats"] = [
                {"key": "pods", "data": pod_rows(TALLY)},
                {"key": "nodes", "data": share_rows(TALLY.nodes)},
                {"key": "split", "data": split_rows(TALLY.groups, declared)},
            ]
            response.set_data(jsonify(body).get_data())
        return response

    @web_ui.app.route("/kubeverify/verdict")
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
