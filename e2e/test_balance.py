"""How the Service spreads requests (kubeverify's standard balance checks, with per-pod
health on the same draws), and on the real cluster the negative controls of both: a partial
skew the balance verdict must catch, and a pod starved of CPU and one answering 503s, which
per-pod health must name."""

import json
import re

import pytest

from e2e import route as route_image
from e2e.controls import iris_copy, selected
from kubeverify import (
    Balance,
    Observation,
    answers_by_pod,
    balance_verdict,
    fresh_connection_requests,
    health_verdict,
    wait_until,
    wait_until_every_pod_answers,
)


class TestBalance(Balance):
    __doc__ = Balance.__doc__


SKEW_APP = "iris-skew"
TWIN = "iris-skew-twin"


def _skew_deployments(deployment) -> list[dict]:
    """Two Deployments of the iris image labelled app=iris-skew: two pods that name
    themselves, and two that both answer as TWIN."""
    named = iris_copy(deployment, "iris-skew-named", SKEW_APP, 2)
    twins = iris_copy(deployment, TWIN, SKEW_APP, 2)
    for env in twins["spec"]["template"]["spec"]["containers"][0]["env"]:
        if env["name"] == "POD_NAME":
            env.pop("valueFrom")
            env["value"] = TWIN
    return [named, twins]


def test_a_partial_skew_fails_through_the_chi_square(
    settled_pods, deployment, kube, endpoint, run, record, pytestconfig
):
    """The negative control of the balance verdict: four pods, two of them answering with one
    name, make a 1:1:2 split over three identities; no pod is starved, so only the
    chi-square can catch it."""
    with selected(kube, _skew_deployments(deployment), SKEW_APP, 4, settled_pods, 120) as skewed:
        identities = sorted({pod for pod in skewed if not pod.startswith(TWIN)} | {TWIN})
        wait_until_every_pod_answers(endpoint, identities)
        verdict = record(
            balance_verdict(
                endpoint,
                identities,
                pytestconfig.getoption("balance_test"),
                label="balance, negative control: 4 pods, 2 sharing a name (1:1:2)",
                say=run.timer.note,
                control=True,
            )
        )
    # Every request answered and every identity among them: only the chi-square can fail it.
    assert "failed" not in verdict.figures, verdict.explain()
    assert (verdict.figures["missing"], verdict.figures["unexpected"]) == ([], [])
    assert not verdict.passed, verdict.explain()


SICK_APP = "iris-sick"
STARVED = "iris-sick-starved"
FAILING = "iris-sick-503"
# A CPU limit the pod is resized to once ready (in place, Kubernetes 1.33 and later): the iris
# server spends a few milliseconds of CPU on a request, so at this share requests wait for the
# next period. Started under it, the pod took some 10 s to load its model.
STARVED_CPU = "50m"
RESIZE_SINCE = 33  # the minor version whose API resizes a pod in place by default (beta)
RESIZE_TIMEOUT = 60
FAILING_PERCENT = 20  # of its answers, a 503 from the HAProxy sidecar in front of it
SICK_REQUESTS = 600  # 150 a pod: each fault named with power 1 (tests/test_health.py)
# The sidecar: the pod's "http" port, naming the pod in its 503s as the server does in its
# answers; every other request goes on to the server beside it.
FAULTS = f"""\
global
    maxconn 500
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend faults
    bind :8080
    acl failing rand(100) lt {FAILING_PERCENT}
    http-request return status 503 hdr X-Pod-Name "${{POD_NAME}}" if failing
    default_backend server
backend server
    server app 127.0.0.1:5000
"""


def _failing(deployment) -> list[dict]:
    """A pod of the iris image behind an HAProxy sidecar that answers FAILING_PERCENT of its
    requests with a 503 (its ConfigMap, and the Deployment)."""
    doc = iris_copy(deployment, FAILING, SICK_APP, 1)
    spec = doc["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    for port in server["ports"]:
        if port["name"] == "http":
            port["name"] = "app"  # the sidecar takes the port the Services target
    for probe in ("readinessProbe", "livenessProbe"):
        if probe in server:
            server[probe]["httpGet"]["port"] = "app"
    spec["containers"].append(
        {
            "name": "faults",
            "image": route_image.IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ],
            "volumeMounts": [{"name": "faults", "mountPath": "/etc/route"}],
        }
    )
    spec["volumes"] = [*spec.get("volumes", []), {"name": "faults", "configMap": {"name": FAILING}}]
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": FAILING},
        "data": {"haproxy.cfg": FAULTS},
    }
    return [config, doc]


def _starve(kube, pod: str, container: str) -> None:
    """The pod's container resized in place to STARVED_CPU (request and limit), and the kubelet
    seen to have applied it."""
    resources = {"requests": {"cpu": STARVED_CPU}, "limits": {"cpu": STARVED_CPU}}
    patch = {"spec": {"containers": [{"name": container, "resources": resources}]}}
    kube.kubectl("patch", "pod", pod, "--subresource", "resize", "--patch", json.dumps(patch))

    def applied() -> Observation:
        read = kube.core.read_namespaced_pod(pod, kube.namespace)
        (status,) = [s for s in read.status.container_statuses if s.name == container]
        limit = ((status.resources and status.resources.limits) or {}).get("cpu")
        resizing = [c.type for c in read.status.conditions or [] if "Resize" in c.type]
        return Observation(limit == STARVED_CPU and not resizing, f"cpu {limit}, {resizing}")

    wait_until(applied, what=f"{pod} resized to {STARVED_CPU}", timeout=RESIZE_TIMEOUT)


def test_a_starved_pod_and_a_failing_pod_are_named_by_per_pod_health(
    settled_pods, deployment, stage, kube, endpoint, record
):
    """The negative controls of per-pod health: four pods of one Service, two well, one resized
    under a CPU limit once ready and one answering some 503s; the split is even and every pod
    ready, and only per-pod latency and errors can name the two, each for what is wrong with
    it."""
    if not route_image.made_available(stage):
        pytest.skip("the failing pod's sidecar image is built here; this provider pulls images")
    if kube.minor_version < RESIZE_SINCE:
        pytest.skip(f"the starved pod is resized in place, which Kubernetes 1.{RESIZE_SINCE} and "
                    f"later do; this cluster runs 1.{kube.minor_version}")  # fmt: skip
    well = iris_copy(deployment, "iris-sick-well", SICK_APP, 2)
    starved = iris_copy(deployment, STARVED, SICK_APP, 1)
    documents = [well, starved, *_failing(deployment)]
    with selected(kube, documents, SICK_APP, 4, settled_pods, 180) as pods:
        (pod,) = [name for name in pods if name.startswith(STARVED)]
        _starve(kube, pod, starved["spec"]["template"]["spec"]["containers"][0]["name"])
        # Answers from the pods before, while kube-proxy catches up, are left out by name.
        outcomes = fresh_connection_requests(endpoint, SICK_REQUESTS)
    verdict = record(
        health_verdict(
            answers_by_pod(outcomes, sorted(pods)),
            label=f"negative control: one pod under a CPU limit of {STARVED_CPU}, one "
            f"answering {FAILING_PERCENT}% 503s",
            control=True,
        )
    )
    assert not verdict.passed, verdict.explain()
    assert verdict.summary.startswith("2 of 4 pods sick: "), verdict.summary
    assert re.search(rf"{FAILING}-\S+: \d+ errors of \d+ against 0 of", verdict.summary), (
        verdict.summary
    )
    assert re.search(rf"{STARVED}-\S+: median [\d.]+ ms against", verdict.summary), verdict.summary
