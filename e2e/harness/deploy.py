"""Putting the iris-classifier manifests on a cluster and waiting until they have settled."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from e2e.harness.kube import KubeTarget
from e2e.harness.waiting import Observation, wait_until

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAME = "iris-classifier"
SELECTOR = "app=iris-classifier"
CLUSTER_IP_SERVICE = "iris-classifier"
NODE_PORT_SERVICE = "iris-classifier-nodeport"
DEFAULT_REPLICAS = 3


def load_manifests(image: str, replicas: int | None = None) -> list[dict]:
    """The objects in manifests/, with the Deployment's image (and replica count) set."""
    documents = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    rendered = []
    for document in documents:
        document = copy.deepcopy(document)
        if document["kind"] == "Deployment" and document["metadata"]["name"] == NAME:
            document["spec"]["template"]["spec"]["containers"][0]["image"] = image
            if replicas is not None:
                document["spec"]["replicas"] = replicas
        rendered.append(document)
    return rendered


class Deployment:
    """The iris-classifier Deployment as the suites drive it: apply, scale, restart, settle."""

    def __init__(self, target: KubeTarget, image: str) -> None:
        self.target = target
        self.image = image

    def apply(self, replicas: int | None = None) -> None:
        """`kubectl apply` of every manifest, as the tutorial scales: by re-applying."""
        objects = load_manifests(self.image, replicas)
        self.target.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def pre_stop_sleep_seconds(self) -> float:
        """How long the running Deployment's preStop hook keeps a terminating pod serving."""
        deployment = self.target.apps.read_namespaced_deployment(NAME, self.target.namespace)
        container = deployment.spec.template.spec.containers[0]
        hook = container.lifecycle.pre_stop if container.lifecycle else None
        command = hook._exec.command if hook and hook._exec else None
        if not command or command[0] != "sleep" or len(command) != 2:
            raise ValueError(f"{NAME} has no preStop `sleep N` hook: {command}")
        return float(command[1])

    def rollout_restart(self) -> None:
        self.target.kubectl("rollout", "restart", f"deployment/{NAME}")

    def delete_pod(self, name: str) -> None:
        self.target.core.delete_namespaced_pod(name, self.target.namespace)

    def settled(self, replicas: int) -> Observation:
        """Exactly `replicas` pods, all updated and ready, none terminating, all endpoints."""
        deployment = self.target.apps.read_namespaced_deployment(NAME, self.target.namespace)
        status = deployment.status
        pods = self.target.pods(SELECTOR)
        ready, not_ready = self.target.endpoint_pods(CLUSTER_IP_SERVICE)
        ready_pods = {pod.name for pod in pods if pod.ready and not pod.terminating}
        done = (
            deployment.spec.replicas == replicas
            and (status.observed_generation or 0) >= deployment.metadata.generation
            and (status.updated_replicas or 0) == replicas
            and (status.ready_replicas or 0) == replicas
            and (status.available_replicas or 0) == replicas
            and (status.replicas or 0) == replicas
            and len(pods) == replicas
            and len(ready_pods) == replicas
            and ready == ready_pods
            and not not_ready
        )
        detail = (
            f"spec {deployment.spec.replicas}, updated {status.updated_replicas}, ready "
            f"{status.ready_replicas}, available {status.available_replicas}; pods "
            f"[{'; '.join(pod.line() for pod in pods)}]; endpoints ready {sorted(ready)} "
            f"not-ready {sorted(not_ready)}"
        )
        return Observation(done, detail)

    def wait_settled(self, replicas: int, timeout: float = 180) -> list[str]:
        """Wait for `settled`; return the ready pods' names."""
        wait_until(
            lambda: self.settled(replicas),
            what=f"{NAME} settled at {replicas} replicas",
            timeout=timeout,
        )
        return [pod.name for pod in self.target.pods(SELECTOR)]
