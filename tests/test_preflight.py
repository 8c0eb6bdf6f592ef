"""Checks before a cluster is made, the ownership rule for reusing one, and what a run records
of the cluster it ran on: pure logic, no cluster."""

import functools
import hashlib
import http.server
import re
import socket
import threading
from pathlib import Path

import pytest
import yaml

from kubeverify.kube import endpoint_slice_pods
from kubeverify.preflight import PreflightError, kubectl_skew
from kubeverify.providers.kind import preflight
from kubeverify.providers.kind.cluster import (
    config_mismatch,
    kind_config,
    port_taken,
    published_ports,
)
from kubeverify.target import load
from kubeverify.versions import proxy_mode, start_line, warnings
from tests.test_target import MINIMAL

ROOT = Path(__file__).resolve().parents[1]

GIB = 1 << 30


@pytest.mark.parametrize(
    ("said", "version"),
    [
        ("kind v0.27.0 go1.24.1 linux/amd64", (0, 27, 0)),
        ("kind version 0.30.0", (0, 30, 0)),
        ("v1.20.2", (1, 20, 2)),
        ("nothing", None),
    ],
)
def test_versions_are_read_from_what_the_tools_print(said, version):
    assert preflight.parse_version(said) == version


def _fake_kind(tmp_path, monkeypatch, said: str | None):
    if said is not None:
        kind = tmp_path / "kind"
        kind.write_text(f"#!/bin/sh\necho '{said}'\n")
        kind.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_kind_on_path_is_used_when_new_enough(tmp_path, monkeypatch):
    _fake_kind(tmp_path, monkeypatch, "kind v0.29.0 go1.24 linux/amd64")
    assert preflight.kind_binary() == (str(tmp_path / "kind"), False)


def test_a_given_kind_is_used_when_new_enough(tmp_path, monkeypatch):
    _fake_kind(tmp_path, monkeypatch, "kind v0.27.0 go1.24 linux/amd64")
    given = str(tmp_path / "kind")
    monkeypatch.setenv("PATH", "")  # not looked for on PATH
    assert preflight.kind_binary(given) == (given, False)


@pytest.mark.parametrize(
    ("said", "why"),
    [
        (
            "kind v0.17.0 go1.19 linux/amd64",
            "is kind v0.17.0 go1.19 linux/amd64, older than 0.27.0",
        ),
        (None, "cannot be run (No such file or directory)"),
    ],
)
def test_a_given_kind_that_is_too_old_or_missing_stops_the_run_in_one_line(
    tmp_path, monkeypatch, said, why
):
    _fake_kind(tmp_path, monkeypatch, said)
    given = tmp_path / "kind"
    with pytest.raises(PreflightError) as error:
        preflight.kind_binary(str(given), say=pytest.fail)  # never the pinned one instead
    assert str(error.value) == (
        f"{given} {why}: pass kind 0.27.0 or newer with --kind-bin PATH "
        "(https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
    )


@pytest.fixture
def release(tmp_path):
    """A stand-in for the release download on 127.0.0.1: the bytes it serves, and a URL."""
    served = tmp_path / "served"
    served.mkdir()
    (served / f"kind-{preflight.PINNED_KIND}-linux-amd64").write_bytes(b"#!/bin/sh\necho kind\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_port}/kind-{{version}}-{{platform}}"
    server.shutdown()


def test_the_pinned_kind_is_downloaded_once_and_kept_only_with_its_checksum(tmp_path, release):
    served, url = release
    body = (served / f"kind-{preflight.PINNED_KIND}-linux-amd64").read_bytes()
    checksums = {"linux-amd64": hashlib.sha256(body).hexdigest()}
    said = []
    path = preflight.pinned_kind(tmp_path / "cache", "linux", url, checksums, said.append)
    assert path.read_bytes() == body
    assert path.stat().st_mode & 0o111
    assert "SHA-256 checked" in said[0]
    assert preflight.pinned_kind(tmp_path / "cache", "linux", url, checksums, said.append) == path
    assert len(said) == 1  # the second time from the cache, not downloaded again


def test_a_download_with_another_checksum_is_refused_and_not_kept(tmp_path, release):
    _, url = release
    checksums = {"linux-amd64": "0" * 64}
    with pytest.raises(PreflightError, match="not the release's"):
        preflight.pinned_kind(tmp_path / "cache", "linux", url, checksums, lambda _: None)
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_old_kind_on_path_gives_way_to_the_pinned_release(tmp_path, monkeypatch):
    _fake_kind(tmp_path, monkeypatch, "kind v0.17.0 go1.19 linux/amd64")
    monkeypatch.setattr(preflight, "pinned_kind", lambda say: tmp_path / "pinned")
    said = []
    assert preflight.kind_binary(say=said.append) == (str(tmp_path / "pinned"), True)
    assert "older than 0.27.0" in said[0]


def test_every_pinned_platform_is_named_as_kind_names_it():
    assert preflight.platform_name("linux", "x86_64") == "linux-amd64"
    assert preflight.platform_name("darwin", "arm64") == "darwin-arm64"
    assert preflight.platform_name("linux", "aarch64") == "linux-arm64"
    assert set(preflight.PINNED_KIND_SHA256) == {
        "linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"
    }  # fmt: skip
    assert all(
        re.fullmatch(r"[0-9a-f]{64}", sum_) for sum_ in preflight.PINNED_KIND_SHA256.values()
    )
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", preflight.PINNED_NODE_IMAGE)


def test_no_pinned_kind_for_this_platform_says_how_to_install_one(tmp_path):
    with pytest.raises(PreflightError, match=r"no kind v.* is pinned for windows-amd64"):
        preflight.pinned_kind(tmp_path, "windows", say=lambda _: None)


def test_no_docker_engine_is_one_line_saying_how_to_start_one(tmp_path, monkeypatch):
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PreflightError) as error:
        preflight.docker_engine()
    assert "Cannot connect to the Docker daemon" in str(error.value)
    assert "start it" in str(error.value)
    assert "\n" not in str(error.value)


def test_memory_is_judged_per_node():
    preflight.memory_for(3, available=3 * GIB)
    with pytest.raises(PreflightError, match=r"has 2\.0 GiB .* of 3 nodes needs 3 GiB"):
        preflight.memory_for(3, available=2 * GIB)


def test_kubectl_more_than_one_minor_from_the_server_is_warned_about():
    assert kubectl_skew("v1.21.0", "v1.20.2") is None
    assert kubectl_skew("v1.20.2", "v1.20.2") is None
    warning = kubectl_skew("v1.33.1", "v1.20.2")
    assert "v1.33.1" in warning
    assert "v1.20.2" in warning
    assert warnings({"kubectl": "v1.33.1", "kubernetes": "v1.20.2"}) == [warning]


@pytest.fixture
def target(tmp_path):
    (tmp_path / "manifests").mkdir()
    path = tmp_path / "verify.toml"
    path.write_text(MINIMAL)
    return load(path)


def test_a_cluster_is_reused_only_when_its_nodes_and_ports_match(target):
    config = kind_config(target)
    roles = ["control-plane", "worker", "worker"]
    ports = {30099: ("127.0.0.1", 30099), 41234: ("127.0.0.1", 6443)}  # kind's API port too
    assert config_mismatch(config, roles, ports) == ""
    assert "nodes" in config_mismatch(config, ["control-plane", "worker"], ports)
    moved = {30080: ("127.0.0.1", 30080)}
    assert "host port 30099 publishes nothing, not 127.0.0.1 -> node port 30099" in (
        config_mismatch(config, roles, moved)
    )


def test_a_cgroup_v1_host_gets_a_kubelet_allowed_there_and_the_cgroupfs_driver_on_both_sides():
    from kubeverify.providers.kind.cgroup_v1 import CONTAINERD_CGROUPFS, fit, kubelet_fields

    fitted, added = fit({"nodes": []})
    assert kubelet_fields(fitted) == {
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
    }
    assert fitted["containerdConfigPatches"] == [CONTAINERD_CGROUPFS]
    assert "SystemdCgroup = false" in CONTAINERD_CGROUPFS
    assert [a.split(" ")[0] for a in added] == ["failCgroupV1:", "the"]


def test_what_a_kind_config_says_of_cgroups_itself_is_kept():
    from kubeverify.providers.kind.cgroup_v1 import fit, kubelet_fields

    iris = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    fitted, added = fit(iris)
    assert fitted["kubeadmConfigPatches"][:-1] == iris["kubeadmConfigPatches"]  # added to
    assert kubelet_fields(fitted)["cgroupDriver"] == "cgroupfs"
    assert len(added) == 1
    assert "cgroupfs" in added[0]
    # A driver named on either side keeps the pair as the config chose it.
    systemd = {"kubeadmConfigPatches": ["kind: KubeletConfiguration\ncgroupDriver: systemd\n"]}
    fitted, _ = fit(systemd)
    assert kubelet_fields(fitted)["cgroupDriver"] == "systemd"
    assert "containerdConfigPatches" not in fitted
    containerd = {"containerdConfigPatches": ["[x]\n  SystemdCgroup = true\n"]}
    fitted, _ = fit(containerd)
    assert "cgroupDriver" not in kubelet_fields(fitted)
    assert fitted["containerdConfigPatches"] == containerd["containerdConfigPatches"]
    # One that says everything is returned as it is; a patch that is not YAML is passed over.
    complete = {
        "kubeadmConfigPatches": [
            "kind: [unclosed",
            "kind: KubeletConfiguration\nfailCgroupV1: true\ncgroupDriver: systemd\n",
        ]
    }
    assert fit(complete) == (complete, [])
    assert kubelet_fields(complete)["failCgroupV1"] is True
    # A kubelet that names cgroupfs alone gets containerd's to match; a patch that is not a
    # string (kind refuses it itself) is passed over.
    cgroupfs = "kind: KubeletConfiguration\ncgroupDriver: cgroupfs\n"
    kubelet_only = {"kubeadmConfigPatches": [{"kind": "KubeletConfiguration"}, cgroupfs]}
    fitted, added = fit(kubelet_only)
    assert "SystemdCgroup = false" in fitted["containerdConfigPatches"][0]
    assert added[-1] == "containerd's cgroupfs driver, as the kubelet's names it"


def test_publish_port_moves_the_first_url_port_in_the_kind_config(target):
    config = kind_config(target, publish_port=31000)
    assert published_ports(config) == {31000: ("127.0.0.1", 30099)}


def test_endpoint_slices_give_ready_and_not_ready_pods():
    slices = [
        {
            "endpoints": [
                {"conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": "a"}},
                {"conditions": {}, "targetRef": {"kind": "Pod", "name": "b"}},  # unset: ready
                {"conditions": {"ready": False}, "targetRef": {"kind": "Pod", "name": "c"}},
            ]
        },
        {"endpoints": None},  # a slice with no endpoints yet
        {"endpoints": [{"conditions": {"ready": True}}]},  # no pod behind it: not counted
    ]
    assert endpoint_slice_pods(slices) == ({"a", "b"}, {"c"})


@pytest.mark.parametrize(
    ("config_conf", "mode"),
    [
        ("mode: ipvs\n", "ipvs"),
        ('mode: ""\n', "iptables (the default)"),
        ("kind: KubeProxyConfiguration\n", "iptables (the default)"),
        (None, "unknown"),
    ],
)
def test_kube_proxy_mode_is_read_from_its_configuration(config_conf, mode):
    assert proxy_mode(config_conf) == mode


def test_the_start_line_names_every_field():
    assert start_line({"kind": "kind v0.27.0", "kubernetes": "v1.20.2"}) == (
        "kind kind v0.27.0, kubernetes v1.20.2"
    )


def test_a_port_is_taken_by_a_listener_not_by_connections_that_just_closed():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as docker-proxy does
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_taken(port)
        # The server closes first, as under `Connection: close`: TIME_WAIT on its port.
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()
            client.recv(1)
    assert not port_taken(port)
