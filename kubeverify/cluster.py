"""The cluster the checks run against, from creation (or reuse) to deletion.

Two kinds of cluster, one interface (`up`, `load_image`, `down`): a kind cluster, created
through pytest-kind from the target's kind config (or one generated from its worker count and
published ports), and an existing cluster that is only used, in a namespace of the run's own.
A run deletes only what it created: a kind cluster that was there before it is reused and left.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml
from pytest_kind import KindCluster

from kubeverify.image import containerd_reference
from kubeverify.kube import KubeTarget
from kubeverify.target import Target
from kubeverify.timing import PhaseTimer
from kubeverify.toolchain import Toolchain
from kubeverify.waiting import Observation, wait_until

NODES_READY_TIMEOUT = 180
KIND_NETWORK = "kind"  # kind creates it for its first cluster and never removes it


def kind_config(target: Target) -> dict:
    """The target's kind config: its own file, or one control plane and `workers` workers, the
    control plane publishing every loopback service URL's port from the same NodePort."""
    if target.kind_config:
        return yaml.safe_load(target.kind_config.read_text())
    control_plane: dict = {"role": "control-plane"}
    ports = sorted({s.host_port for s in target.services if s.host_port})
    if ports:
        control_plane["extraPortMappings"] = [
            {"containerPort": p, "hostPort": p, "listenAddress": "127.0.0.1", "protocol": "TCP"}
            for p in ports
        ]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [control_plane] + [{"role": "worker"}] * target.workers,
    }


def _binary(preferred: str | None, name: str) -> Path | None:
    """The toolchain's binary, else one on PATH; None lets pytest-kind download its own."""
    found = preferred or shutil.which(name)
    return Path(found) if found else None


def wait_nodes_ready(kube: KubeTarget, count: int, timeout: float = NODES_READY_TIMEOUT) -> None:
    def check() -> Observation:
        nodes = kube.core.list_node().items
        ready = {
            n.metadata.name: any(
                c.type == "Ready" and c.status == "True" for c in n.status.conditions or []
            )
            for n in nodes
        }
        return Observation(len(ready) == count and all(ready.values()), f"nodes {ready}")

    wait_until(check, what=f"{count} nodes Ready", timeout=timeout, interval=1.0)


class KindProjectCluster:
    """A kind cluster named by the target: reused when it exists (and then never deleted),
    else created, and deleted at the end unless kept."""

    def __init__(
        self,
        target: Target,
        toolchain: Toolchain,
        timer: PhaseTimer,
        name: str | None = None,
        keep: bool = False,
    ) -> None:
        self.name = name or target.cluster_name
        self.target = target
        self.keep = keep
        self.timer = timer
        self.toolchain = toolchain
        self.cluster = KindCluster(
            self.name,
            image=toolchain.node_image,
            kind_path=_binary(toolchain.kind, "kind"),
            kubectl_path=_binary(toolchain.kubectl, "kubectl"),
        )
        self.config = kind_config(target)
        self.created = False
        self.network_existed = True

    @property
    def kind(self) -> str:
        return str(self.cluster.kind_path)

    def exists(self) -> bool:
        self.cluster.ensure_kind()
        return self.name in _run([self.kind, "get", "clusters"]).split()

    def up(self) -> KubeTarget:
        reused = self.exists()
        self.network_existed = _docker_network_exists(KIND_NETWORK)
        phase = f"reuse cluster {self.name}" if reused else f"create cluster {self.name}"
        with self.timer.phase(phase):
            if reused:
                # Fresh from kind: a kubeconfig file left by an earlier run may point elsewhere.
                self.cluster.kubeconfig_path.write_text(
                    _run([self.kind, "get", "kubeconfig", "--name", self.name])
                )
            try:
                config_file = self.cluster.path / "kind-config.yaml"
                config_file.write_text(yaml.safe_dump(self.config))
                self.cluster.create(config_file=config_file)
                self.created = not reused
                self.cluster.ensure_kubectl()
                kube = KubeTarget(
                    self.cluster.kubeconfig_path,
                    str(self.cluster.kubectl_path),
                    namespace=self.target.namespace,
                )
                wait_nodes_ready(kube, count=len(self.config["nodes"]))
            except BaseException:
                # A half-created cluster is still a cluster left behind.
                if not reused and not self.keep:
                    self._delete()
                raise
        return kube

    def load_image(self, tag: str) -> None:
        image_id = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).strip()
        nodes = _run([self.kind, "get", "nodes", "--name", self.name]).split()
        if nodes and all(_node_has_image(node, tag, image_id) for node in nodes):
            self.timer.note(f"every node already has {tag} ({image_id[:19]}): not loaded")
            return
        with self.timer.phase(f"load image {tag} into the nodes"):
            self.cluster.load_docker_image(tag)

    def down(self) -> None:
        delete = f"{self.kind} delete cluster --name {self.name}"
        if not self.created:
            self.timer.note(f"cluster {self.name} was there before this run: left as it was")
        elif self.keep:
            self.timer.note(
                f"kept cluster {self.name} (kubeconfig {self.cluster.kubeconfig_path}); the next "
                f"run reuses it and leaves it; delete it with: {delete}"
            )
        else:
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
    """A cluster the user already has: nothing loaded; the run works in a namespace it creates
    and deletes (unless kept), so nothing of it is left afterwards."""

    def __init__(
        self,
        kubeconfig: Path,
        context: str | None,
        timer: PhaseTimer,
        namespace: str | None = None,
        keep: bool = False,
    ) -> None:
        kubectl = shutil.which("kubectl")
        if not kubectl:
            raise RuntimeError("existing-cluster mode needs kubectl on PATH")
        self.namespace = namespace or f"kubeverify-{uuid.uuid4().hex[:8]}"
        self.kube = KubeTarget(kubeconfig, kubectl, context=context, namespace=self.namespace)
        self.timer = timer
        self.keep = keep
        self.created = False

    def up(self) -> KubeTarget:
        with self.timer.phase(f"connect to existing cluster ({self.kube.context or 'current'})"):
            self.kube.core.list_node()
            self.kube.kubectl("create", "namespace", self.namespace)
            self.created = True
        self.timer.note(f"created namespace {self.namespace} for this run")
        return self.kube

    def load_image(self, tag: str) -> None:
        """The image comes from the user's registry."""

    def down(self) -> None:
        if not self.created:
            return
        if self.keep:
            self.timer.note(
                f"kept namespace {self.namespace}; delete it with: kubectl delete namespace "
                f"{self.namespace}"
            )
            return
        with self.timer.phase(f"delete namespace {self.namespace}"):
            self.kube.kubectl("delete", "namespace", self.namespace, "--wait=true", timeout=300)


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _node_has_image(node: str, tag: str, image_id: str) -> bool:
    """Whether the node's containerd holds `tag` built from the same config as `image_id`.

    kind's own check for this needs crictl, which some node images do not have.
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
