"""The Deployment as applied: 3 ready replicas on the workers, behind the Service."""

import httpx
import pytest

from e2e.harness import deploy
from e2e.harness.traffic import CLASSIFY_PATH, TUTORIAL_SAMPLE

pytestmark = pytest.mark.usefixtures("three_replicas")


def test_deployment_has_three_of_three_replicas_ready(target):
    status = target.apps.read_namespaced_deployment(deploy.NAME, target.namespace).status
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3)


def test_pods_run_only_on_workers_and_spread_over_both(target):
    nodes = target.nodes()
    workers = {name for name, control_plane in nodes.items() if not control_plane}
    pods = target.pods(deploy.SELECTOR)
    placed = {pod.name: pod.node for pod in pods}
    assert set(placed.values()) <= workers, f"pods on control-plane nodes: {placed}"
    assert set(placed.values()) == workers, f"pods do not cover every worker {workers}: {placed}"


def test_service_endpoints_equal_the_ready_pods(target):
    ready_pods = {pod.name for pod in target.pods(deploy.SELECTOR) if pod.ready}
    for service in (deploy.CLUSTER_IP_SERVICE, deploy.NODE_PORT_SERVICE):
        ready, not_ready = target.endpoint_pods(service)
        assert (ready, not_ready) == (ready_pods, set()), service


def test_healthcheck_answers_through_the_service(service_url):
    response = httpx.get(f"{service_url}/healthcheck", timeout=5)
    assert response.status_code == 200
    assert response.json() == "Iris classifier is ready!"
    assert response.headers["x-pod-name"].startswith(f"{deploy.NAME}-")


def test_tutorial_sample_is_setosa_through_the_service(service_url, target):
    response = httpx.post(f"{service_url}{CLASSIFY_PATH}", json=TUTORIAL_SAMPLE, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["class"] == "setosa"
    assert body["probability"] >= 0.98
    pods = {pod.name: pod.node for pod in target.pods(deploy.SELECTOR)}
    assert response.headers["x-node-name"] == pods[response.headers["x-pod-name"]]
