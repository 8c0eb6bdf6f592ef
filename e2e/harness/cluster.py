"""The cluster the suites run against, from creation (or reuse) to deletion.

Two kinds of cluster, one interface (`up`, `load_image`, `down`): a kind cluster that the
harness creates from kind-config.yaml through pytest-kind, and an existing cluster that it
only uses. Deploying and judging live elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml
from pytest_kind import KindCluster

from e2e.harness.kube import KubeTarget
from e2e.harness.timing import PhaseTimer
from e2e.harness.toolchain import Toolchain
from e2e.harness.waiting import Observation, wait_until

KIND_CONFIG = Path(__file__).resolve().parents[2] / "kind-config.yaml"
CLUSTER_NAME = "iris-e2e"
NODES_READY_TIMEOUT = 180


def _binary(preferred: str | None, name: str) -> Path | None:
    """The toolchain's binary, else one on PATH; None lets pytest-kind download its own."""
    found = preferred or shutil.which(name)
    return Path(found) if found else None


def wait_nodes_ready(target: KubeTarget, count: int, timeout: float = NODES_READY_TIMEOUT) -> None:
    def check() -> Observation:
        nodes = target.core.list_node().items
        ready = {
            n.metadata.name: any(
                c.type == "Ready" and c.status == "True" for c in n.status.conditions or []
            )
            for n in nodes
        }
        return Observation(len(ready) == count and all(ready.values()), f"nodes {ready}")

    wait_until(check, what=f"{count} nodes Ready", timeout=timeout, interval=1.0)


class KindProjectCluster:
    """A kind cluster named for the project; a kept one is reused, else created and deleted."""

    def __init__(
        self, toolchain: Toolchain, timer: PhaseTimer, name: str = CLUSTER_NAME, keep: bool = False
    ) -> None:
        self.name = name
        self.keep = keep
        self.timer = timer
        self.toolchain = toolchain
        self.cluster = KindCluster(
            name,
            image=toolchain.node_image,
            kind_path=_binary(toolchain.kind, "kind"),
            kubectl_path=_binary(toolchain.kubectl, "kubectl"),
        )
        self.created = False

    def exists(self) -> bool:
        self.cluster.ensure_kind()
        listed = subprocess.run(
            [str(self.cluster.kind_path), "get", "clusters"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return self.name in listed.split()

    def up(self) -> KubeTarget:
        reused = self.exists() and self.cluster.kubeconfig_path.exists()
        phase = f"reuse kept cluster {self.name}" if reused else f"create cluster {self.name}"
        with self.timer.phase(phase):
            try:
                self.cluster.create(config_file=KIND_CONFIG)
                self.created = not reused
                self.cluster.ensure_kubectl()
                target = KubeTarget(self.cluster.kubeconfig_path, str(self.cluster.kubectl_path))
                wait_nodes_ready(target, count=_node_count(KIND_CONFIG))
            except BaseException:
                # A half-created cluster is still a cluster left behind.
                if not reused and not self.keep:
                    self._delete()
                raise
        return target

    def load_image(self, tag: str) -> None:
        with self.timer.phase(f"load image {tag} into the nodes"):
            self.cluster.load_docker_image(tag)

    def down(self, say: Callable[[str], None]) -> None:
        if self.keep:
            say(
                f"[e2e] kept cluster {self.name} (kubeconfig {self.cluster.kubeconfig_path}); "
                f"the next run reuses it; delete it with: {self.cluster.kind_path} delete "
                f"cluster --name {self.name}"
            )
            return
        with self.timer.phase("teardown"):
            self._delete()

    def _delete(self) -> None:
        self.cluster.delete()


class ExistingCluster:
    """A cluster the user already has: used as it is, nothing created, loaded or deleted."""

    def __init__(
        self, kubeconfig: Path, context: str | None, timer: PhaseTimer, namespace: str = "default"
    ) -> None:
        kubectl = shutil.which("kubectl")
        if not kubectl:
            raise RuntimeError("existing-cluster mode needs kubectl on PATH")
        self.target = KubeTarget(kubeconfig, kubectl, context=context, namespace=namespace)
        self.timer = timer

    def up(self) -> KubeTarget:
        with self.timer.phase(f"connect to existing cluster ({self.target.context or 'current'})"):
            self.target.core.list_node()
        return self.target

    def load_image(self, tag: str) -> None:
        """The image comes from the user's registry."""

    def down(self, say: Callable[[str], None]) -> None:
        say("[e2e] existing cluster left as it was (the suites leave 3 replicas applied)")


def _node_count(config: Path) -> int:
    return len(yaml.safe_load(config.read_text())["nodes"])
