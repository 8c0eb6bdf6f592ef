"""How the Service spreads requests (kubeverify's standard balance checks, with per-pod
health on the same draws), and on the real cluster the negative controls of both: a partial
skew the balance verdict must catch, and a pod starved of CPU that per-pod health must name."""

import copy

import yaml

from e2e import nodeport
from kubeverify import (
    Balance,
    Observation,
    answers_by_pod,
    balance_verdict,
    fresh_connection_draws,
    health_verdict,
    render_manifests,
    wait_until,
    wait_until_every_pod_answers,
)


class TestBalance(Balance):
    __doc__ = Balance.__doc__


SKEW_APP = "iris-skew"
TWIN = "iris-skew-twin"


def _iris_copy(deployment, name: str, app: str, replicas: int) -> dict:
    """The target's Deployment, renamed `name`, its pods labelled app=`app` (and by name), so
    that only a Service made to select them reaches them."""
    (iris,) = [
        doc
        for doc in render_manifests(deployment.target, deployment.image)
        if doc["kind"] == "Deployment"
    ]
    doc = copy.deepcopy(iris)
    doc["metadata"] = {"name": name, "labels": {"app": app}}
    doc["spec"]["replicas"] = replicas
    doc["spec"]["selector"] = {"matchLabels": {"app": app, "part": name}}
    doc["spec"]["template"]["metadata"]["labels"] = {"app": app, "part": name}
    doc["spec"]["template"]["spec"].pop("topologySpreadConstraints", None)
    return doc


def _skew_deployments(deployment) -> list[dict]:
    """Two Deployments of the iris image labelled app=iris-skew: two pods that name
    themselves, and two that both answer as TWIN."""
    named = _iris_copy(deployment, "iris-skew-named", SKEW_APP, 2)
    twins = _iris_copy(deployment, TWIN, SKEW_APP, 2)
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
    documents = _skew_deployments(deployment)
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    try:
        skewed = wait_until(
            lambda: _ready_pods(kube, SKEW_APP, 4), what="4 iris-skew pods ready", timeout=120
        ).value
        with nodeport.selecting(kube, {"app": SKEW_APP}, skewed, back_to=settled_pods):
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
    finally:
        for document in documents:
            kube.kubectl("delete", "deployment", document["metadata"]["name"], "--wait=false")
    # Every identity answered: only the chi-square can have failed it.
    assert (verdict.figures["missing"], verdict.figures["unexpected"]) == ([], [])
    assert not verdict.passed, verdict.explain()


def _ready_pods(kube, app: str, count: int) -> Observation:
    pods = [p for p in kube.pods(f"app={app}") if p.ready and not p.terminating]
    return Observation(
        len(pods) == count, f"ready {[p.name for p in pods]}", {p.name for p in pods}
    )


SICK_APP = "iris-sick"
STARVED = "iris-sick-starved"
# A CPU limit the pod starts under in seconds and then serves slowly: the iris server spends a
# few milliseconds of CPU on a request, so at this share requests wait for the next period.
STARVED_CPU = "50m"
SICK_DRAWS = 450  # 150 a pod: a pod twice as slow is named with power 1 (tests/test_health.py)


def test_a_pod_starved_of_cpu_is_named_by_per_pod_health(
    settled_pods, deployment, kube, endpoint, record
):
    """The negative control of per-pod health: three pods of one Service, one of them under a
    CPU limit; the balance is even, the pod is ready, and only per-pod latency can name it."""
    well = _iris_copy(deployment, "iris-sick-well", SICK_APP, 2)
    starved = _iris_copy(deployment, STARVED, SICK_APP, 1)
    resources = starved["spec"]["template"]["spec"]["containers"][0]["resources"]
    resources["requests"]["cpu"] = resources["limits"]["cpu"] = STARVED_CPU
    documents = [well, starved]
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    try:
        pods = wait_until(
            lambda: _ready_pods(kube, SICK_APP, 3), what="3 iris-sick pods ready", timeout=180
        ).value
        with nodeport.selecting(kube, {"app": SICK_APP}, pods, back_to=settled_pods):
            wait_until_every_pod_answers(endpoint, pods)
            outcomes = fresh_connection_draws(endpoint, SICK_DRAWS)
        verdict = record(
            health_verdict(
                answers_by_pod(outcomes, sorted(pods)),
                label=f"negative control: one pod under a CPU limit of {STARVED_CPU}",
                control=True,
            )
        )
    finally:
        for document in documents:
            kube.kubectl("delete", "deployment", document["metadata"]["name"], "--wait=false")
    assert not verdict.passed, verdict.explain()
    assert verdict.summary.startswith(f"1 of 3 pods sick: {STARVED}-"), verdict.summary
