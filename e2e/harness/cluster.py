"""The cluster the suites run against, from creation (or reuse) to deletion.

Two kinds of cluster, one interface (`up`, `load_image`, `down`): a kind cluster that the
harness creates from kind-config.yaml through pytest-kind, and an existing cluster that it
only uses. Deploying and judging live elsewhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml
from pytest_kind import KindCluster

from e2e.harness.image import containerd_reference
from e2e.harness.kube import KubeTarget
from e2e.harness.timing import PhaseTimer
from e2e.harness.toolchain import Toolchain
from e2e.harness.waiting import Observation, wait_until

KIND_CONFIG = Path(__file__).resolve().parents[2] / "kind-config.yaml"
# kind-config.yaml publishes the NodePort Service here, on the host's loopback only.
NODE_PORT_URL = "http://127.0.0.1:30080"
CLUSTER_NAME = "iris-e2e"
NODES_READY_TIMEOUT = 180
KIND_NETWORK = "kind"  # kind creates it for its first cluster and never removes it


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
        self.network_existed = True

    def exists(self) -> bool:
        self.cluster.ensure_kind()
        listed = _run([str(self.cluster.kind_path), "get", "clusters"])
        return self.name in listed.split()

    def up(self) -> KubeTarget:
        reused = self.exists() and self.cluster.kubeconfig_path.exists()
        self.network_existed = _docker_network_exists(KIND_NETWORK)
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
        image_id = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).strip()
        nodes = _run([str(self.cluster.kind_path), "get", "nodes", "--name", self.name]).split()
        if nodes and all(_node_has_image(node, tag, image_id) for node in nodes):
            self.timer.note(f"every node already has {tag} ({image_id[:19]}): not loaded")
            return
        with self.timer.phase(f"load image {tag} into the nodes"):
            self.cluster.load_docker_image(tag)

    def down(self) -> None:
        if self.keep:
            self.timer.note(
                f"kept cluster {self.name} (kubeconfig {self.cluster.kubeconfig_path}); "
                f"the next run reuses it; delete it with: {self.cluster.kind_path} delete "
                f"cluster --name {self.name}"
            )
            return
        with self.timer.phase("teardown"):
            self._delete()

    def _delete(self) -> None:
        self.cluster.delete()
        # Only a network this run brought into being goes, and only when nothing else uses it:
        # another kind cluster on the machine keeps it (docker refuses to remove it then).
        if not self.network_existed:
            subprocess.run(
                ["docker", "network", "rm", KIND_NETWORK], capture_output=True, check=False
            )


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

    def down(self) -> None:
        self.timer.note("existing cluster left as it was (the suites leave 3 replicas applied)")


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _node_has_image(node: str, tag: str, image_id: str) -> bool:
    """Whether the node's containerd holds `tag` built from the same config as `image_id`.

    kind's own check for this needs crictl, which the offline node image does not have.
    """
    ctr = ["docker", "exec", node, "ctr", "--namespace", "k8s.io"]
    listed = subprocess.run(
        [*ctr, "images", "ls", f"name=={containerd_reference(tag)}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    if len(listed) < 2:  # a header line, then REF TYPE DIGEST ... for the image if it is there
        return False
    manifest = subprocess.run(
        [*ctr, "content", "get", listed[1].split()[2]], capture_output=True, text=True, check=False
    )
    try:
        return json.loads(manifest.stdout)["config"]["digest"] == image_id
    except (ValueError, KeyError, IndexError):
        return False


def _docker_network_exists(name: str) -> bool:
    inspect = subprocess.run(
        ["docker", "network", "inspect", name], capture_output=True, check=False
    )
    return inspect.returncode == 0


def _node_count(config: Path) -> int:
    return len(yaml.safe_load(config.read_text())["nodes"])
