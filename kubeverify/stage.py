"""Environment functions: the stage every assessment runs on, shared by the pytest fixtures
and any runner (as e2e-framework keeps its Setup steps apart from features).

`Stage` sets it up in order (cluster, image, rollout) and takes it down; the fixtures and a
Locust runner both go through it, so there is one way to set the stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kubeverify import versions
from kubeverify.cluster import ExistingCluster, KindProjectCluster
from kubeverify.deployment import Deployment
from kubeverify.image import ImageInfo, build_target_image
from kubeverify.kube import KubeTarget
from kubeverify.target import Target
from kubeverify.timing import PhaseTimer
from kubeverify.toolchain import Toolchain, detect
from kubeverify.traffic import Endpoint, wait_until_every_pod_answers

SERVICE_ANSWER_TIMEOUT = 60


@dataclass
class Options:
    """How the user asked the stage to be set (the plugin's command-line options)."""

    toolchain_env: str | None = None
    kind_bin: str | None = None  # these three win over the toolchain's
    kubectl_bin: str | None = None  # also the existing-cluster mode's (else PATH's)
    node_image: str | None = None
    publish_port: int | None = None  # kind: publish the Service on this loopback port
    cluster_name: str | None = None
    keep: bool = False  # keep the kind cluster, or the existing cluster's namespace
    kubeconfig: Path | None = None  # existing-cluster mode when this or context is given
    context: str | None = None
    namespace: str | None = None  # existing-cluster mode: a given namespace, else one per run
    image: str | None = None  # an image to deploy as it is, instead of the target's
    base_url: str | None = None

    @property
    def existing_cluster(self) -> bool:
        return bool(self.kubeconfig or self.context)

    def unused(self) -> list[str]:
        """A warning for each option given that this run's mode does not use."""
        if self.existing_cluster and self.publish_port is not None:
            return [
                f"--publish-port {self.publish_port} is for a kind cluster; this run uses an "
                "existing one (--kubeconfig or --context): ignored, --base-url says where the "
                "Service is reached"
            ]
        if not self.existing_cluster and self.namespace is not None:
            return [
                f"--namespace {self.namespace} is for an existing cluster (--kubeconfig or "
                "--context); this run makes a kind cluster: ignored, the target's namespace is "
                "used"
            ]
        return []


@dataclass
class Stage:
    target: Target
    options: Options
    timer: PhaseTimer
    toolchain: Toolchain | None = None
    cluster: KindProjectCluster | ExistingCluster | None = None
    kube: KubeTarget | None = None
    image_info: ImageInfo | None = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        if self.options.base_url:
            return self.options.base_url
        if self.options.publish_port and not self.options.existing_cluster:
            parts = urlsplit(self.target.base_url)
            netloc = f"{parts.hostname}:{self.options.publish_port}"
            return urlunsplit(parts._replace(netloc=netloc))
        return self.target.base_url

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self.target, self.base_url)

    def up(self) -> KubeTarget:
        options = self.options
        for warning in options.unused():
            self.timer.note(f"warning: {warning}")
        if options.existing_cluster:
            kubeconfig = options.kubeconfig or Path.home() / ".kube/config"
            self.cluster = ExistingCluster(
                kubeconfig,
                options.context,
                self.timer,
                options.namespace,
                options.keep,
                options.kubectl_bin,
            )
            self.notes.append("existing cluster")
        else:
            self.toolchain = replace(
                detect(options.toolchain_env),
                **{
                    name: value
                    for name, value in (
                        ("kind", options.kind_bin),
                        ("kubectl", options.kubectl_bin),
                        ("node_image", options.node_image),
                    )
                    if value
                },
            )
            self.timer.note(f"toolchain: {self.toolchain.describe()}")
            self.notes.append(self.toolchain.describe())
            self.cluster = KindProjectCluster(
                self.target,
                self.toolchain,
                self.timer,
                options.cluster_name,
                options.keep,
                options.publish_port,
            )
        self.kube = self.cluster.up()
        kind = self.cluster.kind if isinstance(self.cluster, KindProjectCluster) else None
        self.versions = versions.collect(self.kube, kind, getattr(self.cluster, "name", None))
        self.timer.note(f"verifying on: {versions.start_line(self.versions)}")
        for warning in versions.warnings(self.versions):
            self.timer.note(f"warning: {warning}")
        return self.kube

    def image(self) -> str:
        """The image to deploy: `--image` as it is, else the target's tag, built from its
        context when it names one; loaded into kind's nodes (an existing cluster pulls it)."""
        tag = self.options.image or self.target.image.tag
        if isinstance(self.cluster, KindProjectCluster):
            if self.target.image.context and not self.options.image:
                with self.timer.phase(f"build image {tag}"):
                    self.image_info = build_target_image(
                        self.target.image, self.cluster.toolchain, say=self.timer.say
                    )
            self.cluster.load_image(tag)
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
        if self.cluster is not None:
            self.cluster.down()
