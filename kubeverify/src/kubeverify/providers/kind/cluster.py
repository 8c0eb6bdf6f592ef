"""A kind cluster, from creation (or reuse) to deletion: created from the target's kind config,
or one generated from its worker count and published ports.

A run deletes only what it created. A kind cluster of the same name that was there before is
reused when it matches the config (node roles, published ports, and kube-proxy's mode where the
target names one), with a kubeconfig fetched fresh from kind, and left as it was; when it does
not match, the run stops with one line naming the way out. The same holds for the `kind`
Docker network.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import yaml
from pytest_kind import KindCluster

from kubeverify.kube import KubeTarget
from kubeverify.preflight import PreflightError, kubectl_binary
from kubeverify.processes import stream
from kubeverify.providers.kind import cgroup_v1, preflight
from kubeverify.providers.kind.image import containerd_reference
from kubeverify.providers.kind.toolchain import Toolchain
from kubeverify.target import Target
from kubeverify.timing import PhaseTimer
from kubeverify.versions import proxy_mode
from kubeverify.waiting import Observation, wait_until

NODES_READY_TIMEOUT = 180
CREATE_TIMEOUT = 600
KIND_NETWORK = "kind"  # kind creates it for its first cluster and never removes it
ROLE_LABEL = "io.x-k8s.kind.role"


def kind_config(target: Target, publish_port: int | None = None) -> dict:
    """The target's kind config: its own file, or one control plane and `workers` workers, the
    control plane publishing every loopback service URL's port from the same NodePort, and
    kube-proxy in the target's mode. `publish_port` moves the first service URL's host port
    there."""
    if target.kind_config:
        config = yaml.safe_load(target.kind_config.read_text())
    else:
        control_plane: dict = {"role": "control-plane"}
        published = [*target.services, *target.splits]
        ports = sorted({entry.host_port for entry in published if entry.host_port})
        if ports:
            control_plane["extraPortMappings"] = [
                {"containerPort": p, "hostPort": p, "listenAddress": "127.0.0.1", "protocol": "TCP"}
                for p in ports
            ]
        config = {
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
            "nodes": [control_plane] + [{"role": "worker"}] * target.workers,
        }
        if target.kube_proxy_mode:
            config["networking"] = {"kubeProxyMode": target.kube_proxy_mode}
    if publish_port is not None:
        moved = next(s.host_port for s in target.services if s.url)
        mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
        for mapping in mappings:
            if mapping.get("hostPort") == moved:
                mapping["hostPort"] = publish_port
    return config


def published_ports(config: dict) -> dict[int, tuple[str, int]]:
    """hostPort -> (listen address, containerPort) for every extraPortMapping."""
    return {
        m["hostPort"]: (m.get("listenAddress", "0.0.0.0"), m["containerPort"])
        for node in config["nodes"]
        for m in node.get("extraPortMappings", [])
    }


def config_mismatch(config: dict, roles: list[str], ports: dict[int, tuple[str, int]]) -> str:
    """What differs between a kind config and a running cluster ('' when nothing does)."""
    wanted_roles = sorted(node["role"] for node in config["nodes"])
    problems = []
    if sorted(roles) != wanted_roles:
        problems.append(f"nodes {sorted(roles)}, not {wanted_roles}")
    for host_port, mapping in sorted(published_ports(config).items()):
        if ports.get(host_port) != mapping:
            found = ports.get(host_port)
            problems.append(
                f"host port {host_port} publishes "
                f"{f'{found[0]} -> node port {found[1]}' if found else 'nothing'}, "
                f"not {mapping[0]} -> node port {mapping[1]}"
            )
    return "; ".join(problems)


def port_taken(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something listens on the port. Connections closed moments ago (TIME_WAIT, as
    a run that just ended leaves on its published port) do not count: Docker binds despite
    them, and so does this probe."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


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

    wait_until(check, what=f"{count} nodes Ready", timeout=timeout)


class KindProjectCluster:
    """A kind cluster named by the target: reused when one that matches exists (and then never
    deleted), else created, and deleted at the end unless kept."""

    def __init__(
        self,
        target: Target,
        toolchain: Toolchain,
        timer: PhaseTimer,
        name: str | None = None,
        keep: bool = False,
        publish_port: int | None = None,
    ) -> None:
        self.name = name or target.cluster_name
        self.target = target
        self.keep = keep
        self.timer = timer
        self.toolchain = toolchain
        self.kind, pinned = preflight.kind_binary(toolchain.kind, say=timer.note)
        self.kubectl = kubectl_binary(toolchain.kubectl)
        # The pinned kind gets the node image it pins; any other kind its own default.
        self.node_image = toolchain.node_image or (preflight.PINNED_NODE_IMAGE if pinned else None)
        self.cluster = KindCluster(
            self.name,
            image=self.node_image,
            kind_path=Path(self.kind),
            kubectl_path=Path(self.kubectl),
        )
        self.publish_port = publish_port
        self.config = kind_config(target, publish_port)
        self.created = False  # this run made the cluster: it deletes it, unless kept
        self.reused = False  # the cluster was there before this run: never deleted
        self.network_existed = True
        self.kube: KubeTarget | None = None
        self.ready = False  # every node seen Ready

    @property
    def control_plane(self) -> str:
        """The control-plane node's container (kind names it so)."""
        return f"{self.name}-control-plane"

    def exists(self) -> bool:
        return self.name in read([self.kind, "get", "clusters"]).split()

    def up(self) -> KubeTarget:
        preflight.docker_engine()
        self.reused = self.exists()
        if self.reused:
            self._check_reusable()
        else:
            preflight.memory_for(len(self.config["nodes"]))
            if preflight.cgroup_v1():
                self._fit_cgroup_v1()
            for port, (address, _) in published_ports(self.config).items():
                if port_taken(port, "127.0.0.1" if address == "0.0.0.0" else address):
                    raise PreflightError(self._port_taken_message(address, port))
        self.network_existed = _docker_network_exists(KIND_NETWORK)
        kubeconfig = self.cluster.kubeconfig_path
        phase = f"reuse cluster {self.name}" if self.reused else f"create cluster {self.name}"
        with self.timer.phase(phase):
            if self.reused:
                # Fresh from kind: a kubeconfig file left by an earlier run may point elsewhere.
                kubeconfig.write_text(read([self.kind, "get", "kubeconfig", "--name", self.name]))
                kubeconfig.chmod(0o600)
            else:
                self._create(kubeconfig)
            self.kube = KubeTarget(kubeconfig, self.kubectl, namespace=self.target.namespace)
        if self.reused and self.target.kube_proxy_mode:
            config_map = self.kube.core.read_namespaced_config_map("kube-proxy", "kube-system")
            running = proxy_mode((config_map.data or {}).get("config.conf")).split()[0]
            if running != self.target.kube_proxy_mode:
                raise PreflightError(
                    f"a kind cluster named {self.name} exists but runs kube-proxy in {running} "
                    f"mode, not {self.target.kube_proxy_mode} as the target asks; it is left as "
                    "it is: choose another name with --cluster-name, or delete it by hand: "
                    f"{self.kind} delete cluster --name {self.name}"
                )
        return self.kube

    def wait_ready(self) -> None:
        """Every node Ready. Apart from up(): a new node is Ready some seconds after kind is
        done (its pod network written, its kubelet's next status), which loading the images
        into the nodes spans (4 to 7 s of the iris run waited for it alone). Once seen, not
        asked again."""
        if not self.ready:
            with self.timer.phase("nodes Ready"):
                wait_nodes_ready(self.kube, count=len(self.config["nodes"]))
            self.ready = True

    def _fit_cgroup_v1(self) -> None:
        """Add to the kind config what a cgroup v1 host needs and it does not say, and say so."""
        self.config, added = cgroup_v1.fit(self.config)
        if added:
            self.timer.note(
                "this machine's Docker runs cgroup v1: the kind config gets " + "; and ".join(added)
            )

    def _port_taken_message(self, address: str, port: int) -> str:
        if port == self.publish_port:
            return (
                f"{address}:{port}, given with --publish-port, is taken: free it, or choose "
                "another port"
            )
        return (
            f"{address}:{port}, which the kind config publishes, is taken: free it, or publish "
            "the Service elsewhere with --publish-port N"
        )

    def _create(self, kubeconfig: Path) -> None:
        config_file = self.cluster.path / "kind-config.yaml"
        config_file.write_text(yaml.safe_dump(self.config))
        command = [
            self.kind, "create", "cluster", "--name", self.name, "--config", str(config_file),
            "--kubeconfig", str(kubeconfig),
        ]  # fmt: skip
        if self.node_image:
            command += ["--image", self.node_image]
        try:
            code, output = stream(command, self.timer.say, timeout=CREATE_TIMEOUT)
        except BaseException:
            # Interrupted or hung: kind may have made nodes of a cluster that is this run's.
            self.created = self.exists()
            raise
        if code != 0:
            # kind removes the nodes of a create that failed; a cluster of this name that is
            # there now was made by someone else meanwhile, and is left alone.
            raise RuntimeError(f"kind create cluster {self.name} failed ({code}): {output[-5:]}")
        self.created = True

    def _check_reusable(self) -> None:
        nodes = read([self.kind, "get", "nodes", "--name", self.name]).split()
        roles = [_inspect(node, f'{{{{index .Config.Labels "{ROLE_LABEL}"}}}}') for node in nodes]
        ports: dict[int, tuple[str, int]] = {}
        for node in nodes:
            bindings = json.loads(_inspect(node, "{{json .HostConfig.PortBindings}}") or "{}")
            for container_port, binds in (bindings or {}).items():
                for bind in binds or []:
                    if bind.get("HostPort"):
                        ports[int(bind["HostPort"])] = (
                            bind.get("HostIp") or "0.0.0.0",
                            int(container_port.split("/")[0]),
                        )
        mismatch = config_mismatch(self.config, roles, ports)
        if mismatch:
            raise PreflightError(
                f"a kind cluster named {self.name} exists but does not match the kind config "
                f"this run needs ({mismatch}); it is left as it is: choose another name with "
                f"--cluster-name, or delete it by hand: {self.kind} delete cluster --name "
                f"{self.name}"
            )

    def scheduling_nodes(self) -> list[str]:
        """The nodes pods run on: the workers, or the control plane of a cluster without any
        (kind lifts its taint then). Loading an image into a control plane that runs no pods
        costs a third of the load time of a two-worker cluster."""
        nodes = read([self.kind, "get", "nodes", "--name", self.name]).split()
        roles = {
            node: _inspect(node, f'{{{{index .Config.Labels "{ROLE_LABEL}"}}}}') for node in nodes
        }
        workers = [node for node in nodes if roles[node] == "worker"]
        return workers or nodes

    def load_images(self, tags: list[str]) -> None:
        """The images into every node that runs pods, those some node lacks in one `kind load`
        (one saved archive: the layers the images share go once)."""
        nodes = self.scheduling_nodes()
        missing = []
        for tag in tags:
            image_id = read(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).strip()
            if nodes and all(_node_has_image(node, tag, image_id) for node in nodes):
                self.timer.note(f"every node already has {tag} ({image_id[:19]}): not loaded")
            else:
                missing.append(tag)
        if not missing:
            return
        with self.timer.phase(f"load image {', '.join(missing)} into the nodes"):
            code, output = stream(
                [self.kind, "load", "docker-image", "--name", self.name, "--nodes",
                 ",".join(nodes), *missing],
                self.timer.say,
            )  # fmt: skip
            if code != 0:
                raise RuntimeError(
                    f"kind load docker-image {' '.join(missing)} failed ({code}): {output[-5:]}"
                )

    def down(self) -> None:
        delete = f"{self.kind} delete cluster --name {self.name}"
        if self.reused:
            self.timer.note(f"cluster {self.name} was there before this run: left as it was")
        elif self.created and self.keep:
            self.timer.note(
                f"kept cluster {self.name} (kubeconfig {self.cluster.kubeconfig_path}); the next "
                f"run reuses it and leaves it; delete it with: {delete}"
            )
        elif self.created:
            with self.timer.phase("teardown"):
                self.cluster.delete()
                self._remove_network()
        else:
            self._remove_network()  # a create that failed may have made it

    def _remove_network(self) -> None:
        """Only a network this run brought into being goes, and only when nothing else uses it:
        another kind cluster on the machine keeps it (docker refuses to remove it then)."""
        if not self.network_existed:
            subprocess.run(
                ["docker", "network", "rm", KIND_NETWORK], capture_output=True, check=False
            )


def read(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _inspect(container: str, template: str) -> str:
    return read(["docker", "inspect", "--format", template, container]).strip()


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
