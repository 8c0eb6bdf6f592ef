"""Environment functions: the stage every assessment runs on, shared by the pytest fixtures
and any runner (as e2e-framework keeps its Setup steps apart from features).

`Stage` sets it up in order (the provider's cluster, the image, the rollout) and takes it
down; the fixtures and a Locust runner both go through it, so there is one way to set the
stage. Where the cluster comes from is the provider's business alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kubeverify import versions
from kubeverify.deployment import Deployment
from kubeverify.kube import KubeTarget
from kubeverify.providers import Provider
from kubeverify.target import Image, Target
from kubeverify.timing import PhaseTimer
from kubeverify.traffic import Endpoint, wait_until_every_pod_answers

SERVICE_ANSWER_TIMEOUT = 60


def settle(deployment: Deployment, endpoint: Endpoint, replicas: int) -> list[str]:
    """The Deployment back at `replicas`, settled, each pod having answered through the
    Service (a check before may have replaced or removed pods); its pods' names."""
    if not deployment.settled(replicas).done:
        deployment.apply(replicas=replicas)
    pods = deployment.wait_settled(replicas)
    wait_until_every_pod_answers(endpoint, pods)
    return pods


@dataclass
class Stage:
    target: Target
    provider: Provider
    timer: PhaseTimer
    image_given: str | None = None  # deploy this as it is instead of the target's image
    base_url_given: str | None = None  # reach the Service here instead of the target's url
    kube: KubeTarget | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.base_url_given or self.provider.reach(self.target.base_url)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self.target, self.base_url)

    def reach(self, url: str | None) -> Endpoint:
        """The target's probe sent to `url` (a split's entry point) as this machine reaches it;
        None: the Service's own."""
        return self.endpoint.at(self.provider.reach(url)) if url else self.endpoint

    def up(self) -> KubeTarget:
        self.kube = self.provider.up()
        self.versions = {**versions.collect(self.kube), **self.provider.facts()}
        self.timer.note(f"verifying on: {versions.start_line(self.versions)}")
        for warning in versions.warnings(self.versions):
            self.timer.note(f"warning: {warning}")
        return self.kube

    def image(self, also: Sequence[Image] = ()) -> str:
        """The image to deploy, made available to the cluster by the provider: the one given
        as it is, else the target's (built from its context where it names one); with it,
        where the provider builds images, the images `also` the checks will need."""
        wanted = Image(self.image_given) if self.image_given else self.target.image
        tag = self.provider.make_available(wanted, *(also if self.provider.builds else ()))
        self.versions.update(self.provider.facts())  # what was built, for the report
        return tag

    def roll_out(self, image: str, replicas: int | None = None) -> Deployment:
        """Apply the manifests and wait until the pods are settled and each answers through the
        Service."""
        replicas = replicas or self.target.replicas
        deployment = Deployment(self.kube, self.target, image, say=self.timer.note)
        with self.timer.phase(f"rollout of {replicas} replicas"):
            deployment.apply(replicas)
            pods = deployment.wait_settled(replicas, progress=self.timer.note)
            wait_until_every_pod_answers(self.endpoint, pods, timeout=SERVICE_ANSWER_TIMEOUT)
        return deployment

    def down(self) -> None:
        self.provider.down()
