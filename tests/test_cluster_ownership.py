"""Which kind cluster a run deletes, driven through KindProjectCluster with stand-ins for the
`kind` and `docker` executables that keep a record of every command: a cluster that was there
before the run is never deleted, on any path; one the run created is deleted unless kept; the
`kind` Docker network goes only when the run brought it into being. No cluster, no Docker."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import yaml

from kubeverify.preflight import PreflightError
from kubeverify.providers.kind import cluster
from kubeverify.providers.kind.cluster import KindProjectCluster
from kubeverify.providers.kind.toolchain import Toolchain
from kubeverify.target import load
from kubeverify.timing import PhaseTimer
from tests.test_target import MINIMAL

NAME = "kv-test"

# One script plays both tools (by the name it is called as). Its state is a directory: the
# clusters there are, whether the network exists, how `kind create` behaves, the ports the
# control-plane container publishes; every call is appended to `log`.
STAND_IN = """\
#!{python}
import json, os, sys, time
from pathlib import Path

state = Path(os.environ["STAND_IN_STATE"])
tool, args = Path(sys.argv[0]).name, sys.argv[1:]
with (state / "log").open("a") as log:
    log.write(json.dumps([tool, *args]) + "\\n")
clusters_file, network = state / "clusters", state / "network"
clusters = clusters_file.read_text().split() if clusters_file.exists() else []


def option(name):
    for at, arg in enumerate(args):
        if arg == name:
            return args[at + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]


def say(line):
    print(line, flush=True)


def keep(names):
    clusters_file.write_text("\\n".join(names))


if tool == "kind" and args == ["version"]:
    say("kind v0.30.0 go1.24.6 linux/amd64")
elif tool == "kind" and args[:2] == ["get", "clusters"]:
    say("\\n".join(clusters))
elif tool == "kind" and args[:2] == ["get", "nodes"]:
    name = option("--name")
    if name in clusters:
        say(f"{{name}}-control-plane\\n{{name}}-worker\\n{{name}}-worker2")
elif tool == "kind" and args[:2] == ["get", "kubeconfig"]:
    say("apiVersion: v1\\nkind: Config")
elif tool == "kind" and args[:2] == ["create", "cluster"]:
    name = option("--name")
    behaviour = (state / "create").read_text() if (state / "create").exists() else "ok"
    network.touch()  # kind makes the network for its first cluster
    say(f'Creating cluster "{{name}}" ...')
    say(" * Ensuring node image")
    if behaviour == "hang before nodes":
        time.sleep(60)
    if behaviour == "fail while another makes it":
        keep([*clusters, name])
        say(f'ERROR: failed to create cluster: node(s) already exist for "{{name}}"')
        sys.exit(1)
    keep([*clusters, name])
    say(" * Preparing nodes")
    if behaviour == "hang after nodes":
        time.sleep(60)
    Path(option("--kubeconfig")).write_text("apiVersion: v1\\nkind: Config\\n")
    say(" * Writing configuration")
elif tool == "kind" and args[:2] == ["delete", "cluster"]:
    keep([c for c in clusters if c != option("--name")])
elif tool == "docker" and args[:1] == ["info"] and "CgroupVersion" in args[-1]:
    say((state / "cgroup").read_text() if (state / "cgroup").exists() else "2")
elif tool == "docker" and args[:1] == ["info"]:
    say(str(16 << 30) if "MemTotal" in args[-1] else "27.5.1")
elif tool == "docker" and args[:2] == ["network", "inspect"]:
    sys.exit(0 if network.exists() else 1)
elif tool == "docker" and args[:2] == ["network", "rm"]:
    if clusters:
        sys.exit("Error response from daemon: network kind has active endpoints")
    network.unlink()
elif tool == "docker" and args[:1] == ["inspect"]:
    template, node = args[2], args[3]
    if "Labels" in template:
        say("control-plane" if node.endswith("control-plane") else "worker")
    elif node.endswith("control-plane") and (state / "ports.json").exists():
        say((state / "ports.json").read_text())
    else:
        say("{{}}")
else:
    sys.exit(f"the stand-in {{tool}} does not know: {{args}}")
"""


class Machine:
    """The stand-ins' state, set up and read back by the tests."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.state.mkdir()
        self.bin = root / "bin"
        self.bin.mkdir()
        for tool in ("kind", "docker"):
            (self.bin / tool).write_text(STAND_IN.format(python=sys.executable))
            (self.bin / tool).chmod(0o755)

    def has_cluster(self, ports: dict[int, int]) -> None:
        """A cluster named NAME, made before the run, its control plane publishing
        host port -> node port on 127.0.0.1 (and kind's API server port)."""
        (self.state / "clusters").write_text(NAME)
        (self.state / "network").touch()
        bindings = {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}]}
        for host, node in ports.items():
            bindings[f"{node}/tcp"] = [{"HostIp": "127.0.0.1", "HostPort": str(host)}]
        (self.state / "ports.json").write_text(json.dumps(bindings))

    def has_network(self) -> None:
        (self.state / "network").touch()

    def runs_cgroup(self, version: str) -> None:
        (self.state / "cgroup").write_text(version)

    def creates(self, behaviour: str) -> None:
        (self.state / "create").write_text(behaviour)

    def clusters(self) -> list[str]:
        path = self.state / "clusters"
        return path.read_text().split() if path.exists() else []

    def network_exists(self) -> bool:
        return (self.state / "network").exists()

    def ran(self, *command: str) -> bool:
        """Whether any call began with these words (`kind delete cluster`, ...)."""
        log = self.state / "log"
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return any(call[: len(command)] == list(command) for call in calls)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def machine(tmp_path, monkeypatch) -> Machine:
    machine = Machine(tmp_path)
    monkeypatch.setenv("PATH", str(machine.bin))
    monkeypatch.setenv("STAND_IN_STATE", str(machine.state))
    monkeypatch.chdir(tmp_path)  # pytest-kind's .pytest-kind/ goes here
    return machine


@pytest.fixture
def port() -> int:
    """The port the target's url publishes: one that is free on this machine."""
    return _free_port()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def make(machine, tmp_path, port, said, monkeypatch):
    """A KindProjectCluster for a target publishing `port`; its nodes are Ready at once (or
    `ready` raises: nodes that never come up, or Ctrl-C while waiting for them)."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "verify.toml").write_text(MINIMAL.replace("30099", str(port)))
    target = load(tmp_path / "verify.toml")

    def make(keep=False, publish_port=None, ready=None, interrupt_at=None) -> KindProjectCluster:
        def say(line: str) -> None:
            said.append(line)
            if interrupt_at and interrupt_at in line:
                raise KeyboardInterrupt  # Ctrl-C while kind prints this step

        def wait_nodes_ready(kube, count):
            assert count == 3
            if ready is not None:
                raise ready

        monkeypatch.setattr(cluster, "wait_nodes_ready", wait_nodes_ready)
        timer = PhaseTimer(say=say, prefix="[test]")
        toolchain = Toolchain(offline=False, kubectl=str(machine.bin / "kubectl"))
        return KindProjectCluster(target, toolchain, timer, NAME, keep, publish_port)

    return make


def _up_and_down(kind_cluster: KindProjectCluster, trouble: BaseException | None) -> None:
    """up(), the wait for its nodes (which the provider does once its images are loaded), then
    down(), as the plugin's stage fixture runs them: down() on every path."""

    def up() -> None:
        kind_cluster.up()
        kind_cluster.wait_ready()

    try:
        if trouble is None:
            up()
        else:
            with pytest.raises(type(trouble)):
                up()
    finally:
        kind_cluster.down()


TROUBLES = [
    pytest.param(None, id="passes"),
    pytest.param(RuntimeError("nodes never Ready"), id="fails"),
    pytest.param(KeyboardInterrupt(), id="ctrl-c"),
]


@pytest.mark.parametrize("keep", [False, True], ids=["deleting", "keep"])
@pytest.mark.parametrize("trouble", TROUBLES)
def test_a_cluster_that_was_there_before_is_never_deleted(machine, make, port, said, keep, trouble):
    machine.has_cluster({port: port})
    _up_and_down(make(keep=keep, ready=trouble), trouble)
    assert machine.ran("kind", "get", "kubeconfig", "--name", NAME)  # fetched fresh
    assert not machine.ran("kind", "create")
    assert not machine.ran("kind", "delete")
    assert not machine.ran("docker", "network", "rm")
    assert machine.clusters() == [NAME]
    assert machine.network_exists()
    assert f"[test] cluster {NAME} was there before this run: left as it was" in said


def test_a_cluster_that_does_not_match_is_refused_in_one_line_and_left(machine, make, port):
    machine.has_cluster({})  # publishes nothing of the target's
    kind_cluster = make()
    with pytest.raises(PreflightError) as error:
        _up_and_down(kind_cluster, None)
    assert str(error.value) == (
        f"a kind cluster named {NAME} exists but does not match the kind config this run needs "
        f"(host port {port} publishes nothing, not 127.0.0.1 -> node port {port}); it is left "
        f"as it is: choose another name with --cluster-name, or delete it by hand: "
        f"{machine.bin / 'kind'} delete cluster --name {NAME}"
    )
    assert not machine.ran("kind", "delete")
    assert machine.clusters() == [NAME]


@pytest.mark.parametrize("network_before", [False, True], ids=["new-network", "network-there"])
@pytest.mark.parametrize("trouble", TROUBLES)
def test_a_cluster_this_run_created_is_deleted_on_every_path(
    machine, make, said, trouble, network_before
):
    if network_before:
        machine.has_network()
    _up_and_down(make(ready=trouble), trouble)
    assert machine.ran("kind", "create", "cluster", "--name", NAME)
    assert machine.ran("kind", "delete", "cluster", f"--name={NAME}")
    assert machine.clusters() == []
    # The network goes only when this run brought it into being.
    assert machine.ran("docker", "network", "rm") is not network_before
    assert machine.network_exists() is network_before
    assert any("teardown done" in line for line in said)


@pytest.mark.parametrize("trouble", TROUBLES)
def test_a_kept_cluster_stays_with_its_network_and_says_how_to_delete_it(
    machine, make, said, trouble
):
    _up_and_down(make(keep=True, ready=trouble), trouble)
    assert not machine.ran("kind", "delete")
    assert not machine.ran("docker", "network", "rm")
    assert machine.clusters() == [NAME]
    assert machine.network_exists()
    (note,) = [line for line in said if line.startswith(f"[test] kept cluster {NAME}")]
    assert note.endswith(f"delete it with: {machine.bin / 'kind'} delete cluster --name {NAME}")


def test_ctrl_c_after_kind_made_the_nodes_deletes_them_and_the_network(machine, make):
    machine.creates("hang after nodes")
    _up_and_down(make(interrupt_at="Preparing nodes"), KeyboardInterrupt())
    assert machine.ran("kind", "delete", "cluster", f"--name={NAME}")
    assert machine.clusters() == []
    assert not machine.network_exists()


def test_ctrl_c_before_kind_made_any_node_deletes_no_cluster(machine, make):
    machine.creates("hang before nodes")
    _up_and_down(make(interrupt_at="Ensuring node image"), KeyboardInterrupt())
    assert not machine.ran("kind", "delete")
    assert machine.clusters() == []
    assert not machine.network_exists()  # the create made it; nothing else uses it


def test_a_failed_create_leaves_a_cluster_someone_else_made_meanwhile(machine, make):
    machine.creates("fail while another makes it")
    _up_and_down(make(), RuntimeError())
    assert not machine.ran("kind", "delete")
    assert machine.clusters() == [NAME]
    assert machine.network_exists()  # theirs now: docker refuses to remove it


def test_a_port_taken_stops_the_run_in_one_line_before_anything_is_made(machine, make, port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with pytest.raises(PreflightError) as error:
            _up_and_down(make(), None)
    assert str(error.value) == (
        f"127.0.0.1:{port}, which the kind config publishes, is taken: free it, or publish the "
        "Service elsewhere with --publish-port N"
    )
    assert not machine.ran("kind", "create")
    assert not machine.ran("kind", "delete")
    assert not machine.ran("docker", "network")


def test_a_taken_port_given_with_publish_port_says_choose_another(machine, make):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        given = listener.getsockname()[1]
        with pytest.raises(PreflightError) as error:
            _up_and_down(make(publish_port=given), None)
    assert str(error.value) == (
        f"127.0.0.1:{given}, given with --publish-port, is taken: free it, or choose another port"
    )
    assert not machine.ran("kind", "create")


def _kind_config_written(kind_cluster: KindProjectCluster) -> dict:
    return yaml.safe_load((kind_cluster.cluster.path / "kind-config.yaml").read_text())


@pytest.mark.parametrize("version", ["1", "2"])
def test_on_cgroup_v1_the_generated_kind_config_gets_what_the_host_needs_and_says_so(
    machine, make, said, version
):
    machine.runs_cgroup(version)
    kind_cluster = make()
    _up_and_down(kind_cluster, None)
    written = _kind_config_written(kind_cluster)
    told = [line for line in said if "cgroup v1" in line]
    if version == "1":
        assert written["kubeadmConfigPatches"] == [
            "kind: KubeletConfiguration\nfailCgroupV1: false\ncgroupDriver: cgroupfs\n"
        ]
        assert "SystemdCgroup = false" in written["containerdConfigPatches"][0]
        (note,) = told
        assert note.startswith(
            "[test] this machine's Docker runs cgroup v1: the kind config gets failCgroupV1: "
            "false (kubelet 1.35 and later refuse cgroup v1 without it); and the cgroupfs driver"
        )
        assert "unable to freeze" in note
    else:
        assert "kubeadmConfigPatches" not in written
        assert "containerdConfigPatches" not in written
        assert told == []


def test_on_cgroup_v1_a_kind_config_of_the_targets_own_gets_what_it_does_not_say(
    machine, make, said, tmp_path, port
):
    machine.runs_cgroup("1")
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [
            {"role": "control-plane", "extraPortMappings": [
                {"containerPort": port, "hostPort": port, "listenAddress": "127.0.0.1"}]},
            {"role": "worker"}, {"role": "worker"},
        ],
        "kubeadmConfigPatches": ["kind: KubeletConfiguration\ncgroupDriver: systemd\n"],
    }  # fmt: skip
    (tmp_path / "kind.yaml").write_text(yaml.safe_dump(config))
    target = tmp_path / "verify.toml"
    kind_cluster = make()
    target.write_text(target.read_text() + '\n[cluster]\nkind_config = "kind.yaml"\n')
    kind_cluster.target = load(target)
    kind_cluster.config = config
    _up_and_down(kind_cluster, None)
    written = _kind_config_written(kind_cluster)
    assert written["kubeadmConfigPatches"] == [
        *config["kubeadmConfigPatches"],
        "kind: KubeletConfiguration\nfailCgroupV1: false\n",
    ]
    assert "containerdConfigPatches" not in written  # its driver is its own choice
    (note,) = [line for line in said if "cgroup v1" in line]
    assert "failCgroupV1: false" in note
    assert "cgroupfs" not in note


@pytest.mark.parametrize(("running", "refused"), [("nftables", False), ("", True)])
def test_a_cluster_reused_for_a_kube_proxy_mode_must_run_it(
    machine, make, port, monkeypatch, tmp_path, running, refused
):
    machine.has_cluster({port: port})
    target = tmp_path / "verify.toml"
    kind_cluster = make()
    target.write_text(target.read_text() + '\n[cluster]\nkube_proxy_mode = "nftables"\n')
    kind_cluster.target = load(target)

    class Kube:  # what the API says of kube-proxy: its ConfigMap's config.conf
        def __init__(self, *args, **kwargs):
            data = {"config.conf": f"kind: KubeProxyConfiguration\nmode: {running}\n"}
            config_map = type("ConfigMap", (), {"data": data})
            self.core = type("Core", (), {"read_namespaced_config_map": lambda *a: config_map})

    monkeypatch.setattr(cluster, "KubeTarget", Kube)
    if refused:  # an empty mode is the default, iptables
        with pytest.raises(PreflightError, match="runs kube-proxy in iptables mode, not nftables"):
            _up_and_down(kind_cluster, None)
    else:
        _up_and_down(kind_cluster, None)
    assert not machine.ran("kind", "delete")
    assert machine.clusters() == [NAME]


def test_nodes_are_waited_ready_after_the_images_are_loaded_and_once(make, monkeypatch):
    from kubeverify.providers.kind import KindProvider
    from kubeverify.target import Image

    calls = []
    kind_cluster = make()
    monkeypatch.setattr(kind_cluster, "load_images", lambda tags: calls.append(("load", *tags)))
    monkeypatch.setattr(cluster, "wait_nodes_ready", lambda kube, count: calls.append(("ready",)))
    provider = KindProvider(kind_cluster.target, kind_cluster.timer)
    provider.cluster = kind_cluster
    assert provider.make_available(Image("iris:1"), Image("client:1")) == "iris:1"
    assert provider.make_available(Image("route:1")) == "route:1"
    assert calls == [("load", "iris:1", "client:1"), ("ready",), ("load", "route:1")]
