"""A cluster the user already has (any Kubernetes, any registry): nothing is created but a
namespace of the run's own, which goes at the end with everything in it, so the cluster is left
as it was. Images come from the user's registry; none is built or loaded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from kubeverify.kube import KubeTarget
from kubeverify.preflight import kubectl_binary
from kubeverify.providers import KEEP, KUBECTL, Option
from kubeverify.target import Image, Target
from kubeverify.timing import PhaseTimer

NAMESPACE_PREFIX = "kubeverify-"
DELETE_TIMEOUT = 300


class ExistingClusterProvider:
    name: ClassVar[str] = "existing"
    builds: ClassVar[bool] = False
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "--kubeconfig",
            "existing-cluster mode, on the cluster of this kubeconfig (see --context), where "
            "the run creates nothing but a namespace of its own",
            pytest_kind=True,
        ),
        Option(
            "--context",
            "existing-cluster mode (with or without --kubeconfig): the kubeconfig context",
        ),
        Option(
            "--namespace",
            "existing-cluster mode: a namespace to use as it is; default: one created for the "
            "run and deleted after it (--keep-cluster keeps it)",
            instead="the target's namespace is used",
        ),
        KEEP,
        KUBECTL,
    )

    def __init__(
        self,
        timer: PhaseTimer,
        kubeconfig: Path | None = None,
        context: str | None = None,
        namespace: str | None = None,
        keep: bool = False,
        kubectl: str | None = None,
    ) -> None:
        kubectl = kubectl_binary(kubectl)  # the one given, else PATH's
        self.given_namespace = namespace is not None
        self.namespace = namespace or f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
        self.kube = KubeTarget(
            kubeconfig or Path.home() / ".kube/config",
            kubectl,
            context=context,
            namespace=self.namespace,
        )
        self.timer = timer
        self.keep = keep
        self.created = False

    @classmethod
    def wanted(cls, given: Mapping[str, Any]) -> bool:
        return bool(given.get("kubeconfig") or given.get("context"))

    @classmethod
    def from_options(
        cls, given: Mapping[str, Any], target: Target, timer: PhaseTimer
    ) -> ExistingClusterProvider:
        kubeconfig = given.get("kubeconfig")
        return cls(
            timer,
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            context=given.get("context"),
            namespace=given.get("namespace"),
            keep=bool(given.get("keep_cluster")),
            kubectl=given.get("kind_kubectl_bin"),
        )

    def up(self) -> KubeTarget:
        with self.timer.phase(f"connect to existing cluster ({self.kube.context or 'current'})"):
            self.kube.core.list_node()
            if not self.given_namespace:
                self.kube.kubectl("create", "namespace", self.namespace)
                self.created = True
                self.timer.note(f"created namespace {self.namespace} for this run")
        return self.kube

    def make_available(self, image: Image, *also: Image) -> str:
        """The image comes from the user's registry, as the cluster pulls it."""
        return image.tag

    def reach(self, url: str) -> str:
        return url

    def facts(self) -> dict[str, str]:
        return {"cluster": f"existing, context {self.kube.context or 'current'}"}

    def proxy_mode(self) -> str | None:
        return None  # kube-proxy answers only on its node's loopback, out of reach here

    def down(self) -> None:
        if not self.created:
            self.timer.note(f"namespace {self.namespace} was not created by this run: left")
            return
        if self.keep:
            self.timer.note(
                f"kept namespace {self.namespace}; delete it with: kubectl delete namespace "
                f"{self.namespace}"
            )
            return
        with self.timer.phase(f"delete namespace {self.namespace}"):
            self.kube.kubectl(
                "delete", "namespace", self.namespace, "--wait=true", timeout=DELETE_TIMEOUT
            )
