"""Environment functions: the stage every assessment runs on, shared by the pytest fixtures
and the Locust runner (as e2e-framework keeps its Setup steps apart from features)."""

from __future__ import annotations

from e2e.harness import deploy
from e2e.harness.cluster import KindProjectCluster
from e2e.harness.deploy import Deployment
from e2e.harness.image import ImageInfo, build_image
from e2e.harness.kube import KubeTarget
from e2e.harness.timing import PhaseTimer
from e2e.harness.traffic import service_answers
from e2e.harness.waiting import wait_until

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
    """Apply the manifests and wait until the pods are settled and the Service answers."""
    deployment = Deployment(target, image)
    with timer.phase(f"rollout of {replicas} replicas"):
        deployment.apply(replicas)
        deployment.wait_settled(replicas)
        wait_until(
            lambda: service_answers(service_url),
            timeout=SERVICE_ANSWER_TIMEOUT,
            what=f"the Service answering at {service_url}",
        )
    return deployment
