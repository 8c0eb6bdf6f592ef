"""Environment functions: the stage every assessment runs on, shared by the pytest fixtures
and the Locust runner (as e2e-framework keeps its Setup steps apart from features)."""

from __future__ import annotations

from e2e.harness import deploy
from e2e.harness.cluster import KindProjectCluster
from e2e.harness.deploy import Deployment
from e2e.harness.image import ImageInfo, build_image
from e2e.harness.kube import KubeTarget
from e2e.harness.timing import PhaseTimer
from e2e.harness.traffic import wait_until_every_pod_answers

SERVICE_ANSWER_TIMEOUT = 60


def build_and_load(cluster: KindProjectCluster, tag: str, timer: PhaseTimer) -> ImageInfo:
    with timer.phase(f"build image {tag}"):
        info = build_image(tag, toolchain=cluster.toolchain, say=timer.say)
    cluster.load_image(tag)
    return info


def roll_out(
    target: KubeTarget,
    image: str,
    service_url: str,
    timer: PhaseTimer,
    replicas: int = deploy.DEFAULT_REPLICAS,
) -> Deployment:
    """Apply the manifests and wait until the pods are settled and each answers through the
    Service."""
    deployment = Deployment(target, image)
    with timer.phase(f"rollout of {replicas} replicas"):
        deployment.apply(replicas)
        pods = deployment.wait_settled(replicas)
        wait_until_every_pod_answers(service_url, pods, timeout=SERVICE_ANSWER_TIMEOUT)
    return deployment
