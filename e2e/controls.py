"""Pods of the iris image that the negative controls make beside the target: a copy of its
Deployment under another name and labels, put alone behind the NodePort Service for a while."""

import copy
from contextlib import contextmanager

import yaml

from e2e import nodeport
from kubeverify import Observation, render_manifests, wait_until


def iris_copy(deployment, name: str, app: str, replicas: int) -> dict:
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


def ready_pods(kube, app: str, count: int) -> Observation:
    pods = [p for p in kube.pods(f"app={app}") if p.ready and not p.terminating]
    return Observation(
        len(pods) == count, f"ready {[p.name for p in pods]}", {p.name for p in pods}
    )


@contextmanager
def selected(kube, documents, app: str, count: int, settled_pods, timeout: float):
    """The block's pods: `documents` applied, their `count` pods (labelled app=`app`) ready
    and alone behind the NodePort Service; after it, the Service back to the settled pods
    and the documents deleted, however the block ends."""
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    try:
        pods = wait_until(
            lambda: ready_pods(kube, app, count), what=f"{count} {app} pods ready", timeout=timeout
        ).value
        with nodeport.selecting(kube, {"app": app}, pods, back_to=settled_pods):
            yield pods
    finally:
        kube.kubectl("delete", "-f", "-", "--wait=false", stdin=yaml.safe_dump_all(documents))
