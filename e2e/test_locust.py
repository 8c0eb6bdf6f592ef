"""The Locust load test on the cluster: its verdict passes on the real Service and fails, naming
the pods that got nothing, when the Service is made to send every connection to one pod.

Runs in the e2e session: the `e2e` extra installs Locust.
"""

import json

import pytest

from e2e.harness import deploy
from e2e.harness.report import REPORTS
from e2e.harness.traffic import wait_until_every_pod_answers
from e2e.harness.waiting import Observation, wait_until
from loadtest import locust_cli

USERS = 10
SECONDS = 25
SKEWED_SECONDS = 15
SKEW_LABEL = "iris-e2e-skew"
ENDPOINTS_TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("three_replicas")


def _locust(service_url, pods, name, seconds):
    REPORTS.mkdir(parents=True, exist_ok=True)
    command = locust_cli.headless_command(
        service_url,
        users=USERS,
        seconds=seconds,
        csv_prefix=REPORTS / f"e2e-locust-{name}",
        html=REPORTS / f"e2e-locust-{name}.html",
        # A new connection per request: kube-proxy picks a pod for every request, so the
        # per-pod counts judge balancing. The default thresholds: max/min 1.5, alpha 0.001,
        # 1% errors, p95 500 ms.
        extra=["--connection-mode", "new", "--pod-names", ",".join(pods)],
    )
    return locust_cli.run(command, seconds)


def _verdict(output: str) -> str:
    return output[output.index("\npod ") :].strip() if "\npod " in output else output[-3000:]


def test_locust_verdict_passes_on_the_service(three_replicas, service_url, run, report):
    done = _locust(service_url, three_replicas, "balanced", SECONDS)
    verdict = _verdict(done.stdout)
    run.timer.note(f"Locust, {USERS} users for {SECONDS} s at {service_url}:\n{verdict}")
    row = locust_cli.aggregated(REPORTS / "e2e-locust-balanced")
    report.figures["locust_balanced"] = {
        "exit_code": done.returncode,
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p95_ms": float(row["95%"]),
    }
    assert done.returncode == 0, f"{verdict}\n{done.stderr[-3000:]}"
    assert "verdict: PASSED" in verdict
    for pod in three_replicas:
        assert pod in verdict


def test_locust_verdict_fails_naming_the_pods_a_skewed_service_starves(
    three_replicas, target, service_url, run, report
):
    only = three_replicas[0]
    starved = sorted(three_replicas[1:])
    service = target.core.read_namespaced_service(deploy.NODE_PORT_SERVICE, target.namespace)
    selector = dict(service.spec.selector)
    target.kubectl("label", "pod", only, f"{SKEW_LABEL}=only")
    try:
        # Strategic merge: the selector keeps app=iris-classifier and gains the label.
        target.kubectl(
            "patch", "service", deploy.NODE_PORT_SERVICE,
            "-p", json.dumps({"spec": {"selector": {SKEW_LABEL: "only"}}}),
        )  # fmt: skip
        wait_until(
            lambda: _nodeport_endpoints(target, {only}),
            what=f"{deploy.NODE_PORT_SERVICE} sending only to {only}",
            timeout=ENDPOINTS_TIMEOUT,
        )
        wait_until_every_pod_answers(service_url, [only])
        done = _locust(service_url, three_replicas, "skewed", SKEWED_SECONDS)
    finally:
        target.kubectl(
            "patch", "service", deploy.NODE_PORT_SERVICE, "--type=json",
            "-p", json.dumps([{"op": "replace", "path": "/spec/selector", "value": selector}]),
        )  # fmt: skip
        target.kubectl("label", "pod", only, f"{SKEW_LABEL}-")
        wait_until(
            lambda: _nodeport_endpoints(target, set(three_replicas)),
            what=f"{deploy.NODE_PORT_SERVICE} back to its {len(three_replicas)} pods",
            timeout=ENDPOINTS_TIMEOUT,
        )
    verdict = _verdict(done.stdout)
    run.timer.note(f"Locust against a Service selecting only {only}:\n{verdict}")
    report.figures["locust_skewed"] = {"exit_code": done.returncode, "only_pod": only}
    assert done.returncode == 1, f"{verdict}\n{done.stderr[-3000:]}"
    assert "verdict: FAILED (pods)" in verdict
    assert f"2 short, no response from {', '.join(starved)}" in verdict


def _nodeport_endpoints(target, pods: set[str]) -> Observation:
    ready, not_ready = target.endpoint_pods(deploy.NODE_PORT_SERVICE)
    return Observation(ready == pods and not not_ready, f"ready {sorted(ready)}")
