"""How the Service spreads requests (kubeverify's standard balance checks), and a partial
skew on the real cluster that the verdict must catch."""

import copy

import yaml

from e2e import nodeport
from kubeverify import (
    Balance,
    Observation,
    balance_verdict,
    render_manifests,
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
    (iris,) = [
        doc
        for doc in render_manifests(deployment.target, deployment.image)
        if doc["kind"] == "Deployment"
    ]
    made = []
    for name, pod_name in (("iris-skew-named", None), (TWIN, TWIN)):
        doc = copy.deepcopy(iris)
        doc["metadata"] = {"name": name, "labels": {"app": SKEW_APP}}
        doc["spec"]["replicas"] = 2
        doc["spec"]["selector"] = {"matchLabels": {"app": SKEW_APP, "skew": name}}
        doc["spec"]["template"]["metadata"]["labels"] = {"app": SKEW_APP, "skew": name}
        spec = doc["spec"]["template"]["spec"]
        spec.pop("topologySpreadConstraints", None)
        if pod_name:
            for env in spec["containers"][0]["env"]:
                if env["name"] == "POD_NAME":
                    env.pop("valueFrom")
                    env["value"] = pod_name
        made.append(doc)
    return made


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
            lambda: _ready_skew_pods(kube), what="4 iris-skew pods ready", timeout=120
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


def _ready_skew_pods(kube) -> Observation:
    pods = [p for p in kube.pods(f"app={SKEW_APP}") if p.ready and not p.terminating]
    return Observation(len(pods) == 4, f"ready {[p.name for p in pods]}", {p.name for p in pods})
