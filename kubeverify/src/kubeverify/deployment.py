"""Putting a target's manifests on a cluster, changing its Deployment, waiting until it settles."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

from kubeverify.apiversions import as_served
from kubeverify.kube import KubectlError, KubeTarget, pre_stop_sleep
from kubeverify.target import Target
from kubeverify.waiting import Observation, wait_until

SETTLE_TIMEOUT = 180


def render(target: Target, image: str, replicas: int | None = None, kubectl=None) -> list[dict]:
    """The target's objects with its Deployment's image (and replica count) set.

    A kustomization is rendered by `kubectl kustomize` (kubectl: a KubeTarget); a directory by
    reading its YAML files in name order.
    """
    documents = read_manifests(target.manifests, kubectl)
    rendered, found = [], False
    for document in documents:
        document = copy.deepcopy(document)
        if document.get("kind") == "Deployment" and document["metadata"]["name"] == target.name:
            found = True
            _container(document, target)["image"] = image
            if replicas is not None:
                document["spec"]["replicas"] = replicas
        rendered.append(document)
    if not found:
        raise ValueError(f"no Deployment named {target.name} in {target.manifests}")
    return rendered


def read_manifests(directory: Path, kubectl=None) -> list[dict]:
    """The objects of a directory: a kustomization rendered by `kubectl kustomize` (kubectl: a
    KubeTarget), else its YAML files read in name order."""
    if (directory / "kustomization.yaml").is_file():
        if kubectl is None:
            raise ValueError(f"{directory} is a kustomization: rendering it needs kubectl")
        text = kubectl.kubectl("kustomize", str(directory))
        return [doc for doc in yaml.safe_load_all(text) if doc]
    documents = []
    for path in sorted(directory.glob("*.y*ml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


@contextmanager
def objects_of(
    kube: KubeTarget, directory: Path | None, target: Target, image: str, timeout: float = 180
) -> Iterator[list[dict]]:
    """The objects of `directory` applied for the block (a canary beside the target, say), and
    deleted after it, however it ends, their pods gone (a pod whose containers have all
    exited serves nothing; the kubelet takes some seconds more to remove it from the API). A
    container naming the target's image by its tag gets the image in use (built, loaded or
    given)."""
    if directory is None:
        yield []
        return
    objects = []
    for document in read_manifests(directory, kube):
        document = copy.deepcopy(document)
        if document.get("kind") == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                if container.get("image") == target.image.tag:
                    container["image"] = image
        objects.append(document)
    served, _ = as_served(objects, kube.api_versions)
    text = yaml.safe_dump_all(served)
    kube.kubectl("apply", "-f", "-", stdin=text)
    deployments = [doc for doc in served if doc.get("kind") == "Deployment"]
    try:
        yield served
    finally:
        # Scaled to 0 first: the ReplicaSet controller stops the pods at once, where after a
        # delete the garbage collector does, and it took up to 70 s to here (1 s as often).
        for deployment in deployments:
            with suppress(KubectlError):  # gone already: the delete below says no more
                kube.kubectl("scale", f"deployment/{deployment['metadata']['name']}",
                             "--replicas=0")  # fmt: skip
        selectors = [
            ",".join(f"{k}={v}" for k, v in doc["spec"]["selector"]["matchLabels"].items())
            for doc in deployments
        ]
        wait_until(
            lambda: _gone(kube, selectors),
            what=f"the pods of {directory.name} exited",
            timeout=timeout,
        )
        kube.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true", stdin=text,
                     timeout=timeout)  # fmt: skip


def _gone(kube: KubeTarget, selectors: list[str]) -> Observation:
    left = [pod.name for selector in selectors for pod in kube.pods(selector) if not pod.gone]
    return Observation(not left, f"still running: {left}")


def _container(deployment: dict, target: Target) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    if target.container is None:
        return containers[0]
    for container in containers:
        if container["name"] == target.container:
            return container
    raise ValueError(f"Deployment {target.name} has no container named {target.container}")


class Deployment:
    """The target's Deployment as the checks drive it: apply, scale, restart, settle."""

    def __init__(
        self, kube: KubeTarget, target: Target, image: str, say: Callable[[str], None] = print
    ) -> None:
        self.kube = kube
        self.target = target
        self.image = image
        self.say = say
        self.said: set[str] = set()  # what apply() has told of, once a run: it re-applies often

    @property
    def name(self) -> str:
        return self.target.name

    def apply(self, replicas: int | None = None) -> None:
        """`kubectl apply` of every manifest; scaling is re-applying with another count. An
        object in an API version the server predates goes in the older one it serves."""
        objects, moved = as_served(
            render(self.target, self.image, replicas, kubectl=self.kube), self.kube.api_versions
        )
        for line in moved:
            if line not in self.said:
                self.said.add(line)
                self.say(line)
        self.kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def read(self):
        return self.kube.apps.read_namespaced_deployment(self.name, self.kube.namespace)

    def pre_stop_sleep_seconds(self) -> float | None:
        """How long the running Deployment's preStop hook keeps a terminating pod serving, when
        it is a `sleep N`; None when there is no such hook."""
        return pre_stop_sleep(
            self.kube.api.sanitize_for_serialization(self.read().spec.template.spec)
        )

    def rollout_restart(self) -> None:
        self.kube.kubectl("rollout", "restart", f"deployment/{self.name}")

    def delete_pod(self, name: str) -> None:
        self.kube.core.delete_namespaced_pod(name, self.kube.namespace)

    def pods(self):
        """The target's pods, less those deleted that serve nothing (`PodState.gone`): the
        kubelet takes up to its sync period (10 s on our kind clusters, 1 min by default) to
        remove them from the API, which a check would otherwise wait out."""
        return [pod for pod in self.kube.pods(self.target.selector) if not pod.gone]

    def settled(self, replicas: int) -> Observation:
        """Exactly `replicas` pods, all updated and ready, none terminating, and every Service
        of the target has exactly them as endpoints, besides pods of other Deployments that the
        Service selects on purpose (a canary beside them) while those live."""
        deployment = self.read()
        status = deployment.status
        pods = self.pods()
        ready_pods = {pod.name for pod in pods if pod.ready and not pod.terminating}
        endpoints = {}
        for service in self.target.services:
            ready, waiting = self.kube.endpoint_pods(service.name)
            others = self.kube.selected_pods(service.name) - {pod.name for pod in pods}
            endpoints[service.name] = (ready - others, waiting - others)
        done = (
            deployment.spec.replicas == replicas
            and (status.observed_generation or 0) >= deployment.metadata.generation
            and (status.updated_replicas or 0) == replicas
            and (status.ready_replicas or 0) == replicas
            and (status.available_replicas or 0) == replicas
            and (status.replicas or 0) == replicas
            and len(pods) == replicas
            and len(ready_pods) == replicas
            and all(ready == ready_pods and not waiting for ready, waiting in endpoints.values())
        )
        detail = (
            f"spec {deployment.spec.replicas}, updated {status.updated_replicas}, ready "
            f"{status.ready_replicas}, available {status.available_replicas}; pods "
            f"[{'; '.join(pod.line() for pod in pods)}]; endpoints "
            + "; ".join(
                f"{name}: ready {sorted(ready)} not-ready {sorted(waiting)}"
                for name, (ready, waiting) in endpoints.items()
            )
        )
        return Observation(done, detail)

    def wait_settled(
        self, replicas: int, timeout: float = SETTLE_TIMEOUT, progress=None
    ) -> list[str]:
        """Wait for `settled`; return the ready pods' names. `progress` hears of a long wait."""
        wait_until(
            lambda: self.settled(replicas),
            what=f"{self.name} settled at {replicas} replicas",
            timeout=timeout,
            progress=progress,
        )
        return [pod.name for pod in self.pods()]
