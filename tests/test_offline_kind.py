"""Fast tests of ci.offline_kind's pure logic: no network, no root, no docker."""

from __future__ import annotations

import json
import re
import tarfile

import pytest

from ci.offline_kind import (
    apt,
    base_image,
    engine,
    fsutil,
    gomod,
    images,
    kubernetes,
    node_image,
    node_stack,
    phases,
    rootfs,
)
from ci.offline_kind.phases import Result

# ------------------------------------------------------------ cache keys / stamps


def test_cache_key_is_stable_and_order_independent():
    a = phases.cache_key("engine", 1, {"x": "1", "y": ["a", "b"]})
    b = phases.cache_key("engine", 1, {"y": ["a", "b"], "x": "1"})
    assert a == b
    assert len(a) == 64


@pytest.mark.parametrize(
    "change",
    [
        ("engine", 2, {"x": "1", "y": ["a", "b"]}),  # recipe bump
        ("kind", 1, {"x": "1", "y": ["a", "b"]}),  # other phase
        ("engine", 1, {"x": "2", "y": ["a", "b"]}),  # package version
        ("engine", 1, {"x": "1", "y": ["b", "a"]}),  # list order matters
    ],
)
def test_cache_key_changes_with_any_input(change):
    assert phases.cache_key(*change) != phases.cache_key("engine", 1, {"x": "1", "y": ["a", "b"]})


def test_read_stamp_requires_matching_key(tmp_path):
    stamp = tmp_path / "stamp.json"
    assert phases.read_stamp(stamp, "k") is None
    stamp.write_text(json.dumps({"key": "k", "outputs": {"tag": "t"}}))
    assert phases.read_stamp(stamp, "k") == {"tag": "t"}
    assert phases.read_stamp(stamp, "other") is None
    stamp.write_text("{not json")
    assert phases.read_stamp(stamp, "k") is None


def test_stale_entries_keeps_current_key_and_shared_dirs():
    names = [
        "0123456789ab",
        "ba9876543210",
        ".tmp-0123456789ab-42",
        "gocache",
        "build",
        "dockerd.log",
        "stamp.json",
    ]
    assert phases.stale_entries(names, keep="0123456789ab") == [
        ".tmp-0123456789ab-42",
        "ba9876543210",
    ]


def test_hash_tree_sees_names_and_contents(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("2")
    first = fsutil.hash_tree(tmp_path)
    (tmp_path / "sub" / "b").write_text("3")
    second = fsutil.hash_tree(tmp_path)
    (tmp_path / "sub" / "b").rename(tmp_path / "sub" / "c")
    third = fsutil.hash_tree(tmp_path)
    assert len({first, second, third}) == 3


def test_node_image_key_covers_project_files():
    # The key must change when the rootfs script or the manifests change.
    files = {
        p.relative_to(node_image.NODE_DIR).as_posix()
        for p in node_image.NODE_DIR.rglob("*")
        if p.is_file()
    }
    assert {
        "default-cni.yaml",
        "default-storage.yaml",
        "customize-rootfs.sh",
        "cni/offline-cni.sh",
    } <= files


# ------------------------------------------------------------ phase table


def test_format_table():
    table = phases.format_table(
        [
            Result("apt", "cached", 1.04, "0123456789abcdef", 0.5),
            Result("kubernetes", "built", 272.5, "fedcba9876543210", 500.0),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["phase", "result", "time", "cpu", "key"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["apt", "cached", "1.0", "s", "0.5", "s", "0123456789ab"]
    assert lines[3].split() == [
        "kubernetes",
        "built",
        "4",
        "m",
        "32.5",
        "s",
        "8",
        "m",
        "20.0",
        "s",
        "fedcba987654",
    ]
    assert lines[-1].split() == ["total", "4", "m", "33.5", "s", "8", "m", "20.5", "s"]
    # Columns line up: the time and cpu cells end at the same columns on every row.
    ends = [[m.end() for m in re.finditer(r"\d s", row)] for row in (lines[2], lines[3], lines[-1])]
    assert ends[0] == ends[1] == ends[2]
    assert len(ends[0]) == 2


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (59.94, "59.9 s"), (60, "1 m 00.0 s"), (754.2, "12 m 34.2 s")],
)
def test_format_seconds(seconds, text):
    assert phases.format_seconds(seconds) == text


# ------------------------------------------------------------ apt parsing

POLICY = """\
docker.io:
  Installed: (none)
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
     26.1.5+dfsg1-9+deb13u1+b1 100
        100 http://deb.debian.org/debian trixie/main amd64 Packages
     20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
jq:
  Installed: 1.6-2.1+deb12u1
  Candidate: 1.6-2.1+deb12u1
  Version table:
     1.7.1-6+deb13u1 100
        100 http://deb.debian.org/debian trixie/main amd64 Packages
 *** 1.6-2.1+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        500 http://m.example/sec bookworm-security/main amd64 Packages
        100 /var/lib/dpkg/status
"""


def test_parse_policy():
    offers = apt.parse_policy(POLICY)
    assert apt.pick(offers, "docker.io", "trixie") == "26.1.5+dfsg1-9+deb13u1+b1"
    assert apt.pick(offers, "docker.io", "bookworm") == "20.10.24+dfsg1-1+deb12u1+b6"
    assert apt.pick(offers, "jq", "bookworm") == "1.6-2.1+deb12u1"
    assert apt.pick(offers, "jq", "bookworm-security") == "1.6-2.1+deb12u1"
    assert apt.pick(offers, "jq", "trixie") == "1.7.1-6+deb13u1"
    assert len(offers) == 5


def test_parse_dpkg_query_keeps_installed_only():
    text = (
        "golang-go ii 2:1.19~1\n"
        "libc6:amd64 ii 2.36-9+deb12u14\n"
        "debootstrap rc 1.0.128\n"
        "jq un <none>\n"
    )
    assert apt.parse_dpkg_query(text) == {"golang-go": "2:1.19~1", "libc6": "2.36-9+deb12u14"}


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_find_mirror_from_deb822():
    uri, keyring = apt.find_mirror(apt.parse_deb822(DEB822))
    assert uri == "http://mirror.example/debian"
    assert keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_find_mirror_from_one_line_format_and_default():
    entries = apt.parse_one_line(
        "deb [arch=amd64 signed-by=/etc/k.gpg] http://m.example/debian bookworm main\n"
        "deb-src http://m.example/debian bookworm main\n"
    )
    assert apt.find_mirror(entries) == ("http://m.example/debian", "/etc/k.gpg")
    assert apt.find_mirror([]) == (apt.DEFAULT_MIRROR, apt.DEFAULT_KEYRING)
    # An entry for another suite only is not a bookworm mirror.
    only_security = apt.parse_deb822(DEB822.split("\n\n")[1])
    assert apt.find_mirror(only_security)[0] == apt.DEFAULT_MIRROR


def test_render_sources_mirrors_uri_and_keyring():
    text = apt.render_sources("http://m.example/debian", "/k.gpg")
    paragraphs = apt.parse_deb822(text)
    assert [(p["types"], p["suites"]) for p in paragraphs] == [("deb", "trixie")]
    assert all(
        p["uris"] == "http://m.example/debian" and p["signed-by"] == "/k.gpg" for p in paragraphs
    )
    assert "Pin-Priority: 100" in apt.PREFERENCES
    assert "n=trixie" in apt.PREFERENCES


def test_release_date():
    assert (
        rootfs.release_date("Origin: Debian\nDate: Sat, 10 May 2025 09:05:05 UTC\n")
        == "Sat, 10 May 2025 09:05:05 UTC"
    )
    assert rootfs.release_date("Origin: Debian\n") == ""


# ------------------------------------------------------------ pip config

PIP_LIST = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.disable-pip-version-check='1'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
global.index-url='https://pypi.example/simple'
install.user='false'
"""


def test_container_pip_conf_drops_local_locations():
    conf = base_image.container_pip_conf(PIP_LIST, cert="/etc/ssl/certs/ca-certificates.crt")
    assert conf.splitlines() == [
        "[global]",
        "cert = /etc/ssl/certs/ca-certificates.crt",
        "default-timeout = 180",
        "disable-pip-version-check = 1",
        "index-url = https://pypi.example/simple",
    ]


def test_container_pip_conf_keeps_remote_extra_index_and_env_wins():
    listing = (
        "global.extra-index-url='file:///x https://extra.example/simple'\n"
        "global.default-timeout='15'\n:env:.default-timeout='60'\n"
    )
    conf = base_image.container_pip_conf(listing)
    assert "extra-index-url = https://extra.example/simple" in conf
    assert "default-timeout = 60" in conf
    assert base_image.container_pip_conf("").splitlines() == [
        "[global]",
        f"cert = {base_image.CONTAINER_CA_BUNDLE}",
    ]


def test_python_series():
    assert base_image.python_series("3.11.2-1+b1") == "3.11"
    assert base_image.python_series("1:3.12.1-1") == "3.12"


# ------------------------------------------------------------ kubernetes / node image

KUBEADM_IMAGES = """\
registry.k8s.io/kube-apiserver:v1.37.2
registry.k8s.io/kube-controller-manager:v1.37.2
registry.k8s.io/kube-scheduler:v1.37.2
registry.k8s.io/kube-proxy:v1.37.2
registry.k8s.io/coredns/coredns:v1.14.6
registry.k8s.io/pause:3.10.2
registry.k8s.io/etcd:3.7.0-0
"""


def test_parse_image_list_ignores_log_noise():
    noisy = "W0101 12:00:00.000000 1 version.go:102] could not fetch a Kubernetes version\n"
    assert (
        kubernetes.parse_image_list(noisy + KUBEADM_IMAGES)[0]
        == "registry.k8s.io/kube-apiserver:v1.37.2"
    )
    assert len(kubernetes.parse_image_list(noisy + KUBEADM_IMAGES)) == 7


def test_image_name_and_tag():
    assert kubernetes.image_name("registry.k8s.io/coredns/coredns:v1.14.6") == "coredns"
    assert kubernetes.image_tag("registry.k8s.io/coredns/coredns:v1.14.6") == "v1.14.6"
    assert kubernetes.image_name("registry.k8s.io/etcd:3.7.0-0") == "etcd"
    assert kubernetes.image_tag("registry.k8s.io/etcd:3.7.0-0") == "3.7.0-0"


def test_plan_images_builds_every_image_kubeadm_lists():
    plan, skipped = node_image.plan_images(kubernetes.parse_image_list(KUBEADM_IMAGES))
    assert plan == {
        "registry.k8s.io/kube-apiserver:v1.37.2": "static",
        "registry.k8s.io/kube-controller-manager:v1.37.2": "static",
        "registry.k8s.io/kube-scheduler:v1.37.2": "static",
        "registry.k8s.io/kube-proxy:v1.37.2": "kube-proxy",
        "registry.k8s.io/coredns/coredns:v1.14.6": "coredns",
        "registry.k8s.io/pause:3.10.2": "pause",
        "registry.k8s.io/etcd:3.7.0-0": "etcd",
    }
    assert skipped == []
    assert node_image.plan_images(["registry.k8s.io/other:v1"]) == (
        {},
        ["registry.k8s.io/other:v1"],
    )


def test_staging_modules_take_the_release_of_their_kubernetes():
    assert kubernetes.staging_version("v1.37.2") == "v0.37.2"
    with pytest.raises(ValueError, match=r"not a Kubernetes 1\.x release"):
        kubernetes.staging_version("v2.0.0")


def test_version_ldflags_stamp_both_version_packages():
    flags = kubernetes.version_ldflags("v1.37.2")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.37.2" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=37" in flags


KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/forked => github.com/example/fork v1.0.0
)

replace go.etcd.io/etcd/api/v3 => ../api
"""


def test_sibling_replaces_are_the_local_paths_only():
    assert gomod.sibling_replaces(KUBERNETES_GO_MOD) == [
        "k8s.io/api",
        "k8s.io/client-go",
        "go.etcd.io/etcd/api/v3",
    ]


def test_wrapper_go_mod_keeps_go_and_godebug_and_pins_the_siblings():
    text = gomod.wrapper_go_mod(
        "kubeverify.offline/k", KUBERNETES_GO_MOD, {"k8s.io/kubernetes": "v1.37.2"},
        {"k8s.io/api": "v0.37.2", "k8s.io/client-go": "v0.37.2"},
    )  # fmt: skip
    assert text.startswith("module kubeverify.offline/k\n\ngo 1.26.0\n\ngodebug default=go1.26\n")
    assert "\tk8s.io/kubernetes v1.37.2\n" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.37.2\n" in text
    plain = gomod.wrapper_go_mod("m", "module x\n\ngo 1.25.0\n", {"x": "v1.0.0"}, {})
    assert "replace" not in plain
    assert "godebug" not in plain
    assert "go 1.25.0" in plain


def test_tools_go_imports_each_package():
    text = gomod.tools_go(["b/cmd/two", "a/cmd/one"])
    assert text.startswith("//go:build tools\n")
    assert text.index('_ "a/cmd/one"') < text.index('_ "b/cmd/two"')


@pytest.mark.parametrize(
    ("said", "version"),
    [
        ("go1.26.8", (1, 26, 8)),
        ("go1.26", (1, 26, 0)),
        ("go1.27rc1", (1, 27, 0)),
        ("devel", None),
        ("", None),
    ],
)
def test_parse_go_version(said, version):
    assert gomod.parse_go_version(said) == version


def test_go_older_than_every_pinned_module_asks_for_is_refused():
    # containerd v2.3.4 says go 1.26.3: a Go 1.26.2 would compile Kubernetes, then stop.
    assert gomod.MIN_GO == (1, 26, 3)
    assert gomod.parse_go_version("go1.26.2") < gomod.MIN_GO <= gomod.parse_go_version("go1.26.8")


def test_the_node_stack_takes_etcd_and_coredns_from_kubeadms_list():
    programs = {
        p.module: p for p in node_stack.programs(kubernetes.parse_image_list(KUBEADM_IMAGES))
    }
    assert programs["go.etcd.io/etcd/server/v3"].version == "v3.7.0"
    assert programs["go.etcd.io/etcd/server/v3"].siblings == "v3.7.0"
    assert programs["github.com/coredns/coredns"].version == "v1.14.6"
    assert programs["github.com/opencontainers/runc"].cgo
    assert "no_btrfs" in programs["github.com/containerd/containerd/v2"].tags
    with pytest.raises(ValueError, match="coredns"):
        node_stack.programs(["registry.k8s.io/etcd:3.7.0-0"])


def test_the_node_stack_builds_what_the_node_image_installs():
    assert set(node_image.STACK_PATHS) | {"etcd", "coredns"} == node_stack.NEEDED
    plan, _ = node_image.plan_images(kubernetes.parse_image_list(KUBEADM_IMAGES))
    assert {"etcd", "coredns"} <= set(plan.values())  # the images that take those two


def test_module_version_of_an_image_tag():
    assert node_stack.module_version("3.7.0-0") == "v3.7.0"
    assert node_stack.module_version("v1.14.6") == "v1.14.6"


KIND_CONTAINERD = """\
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = false
"""


def test_configure_containerd():
    out = node_image.configure_containerd(KIND_CONTAINERD, "registry.k8s.io/pause:3.10.2")
    assert out.count("SystemdCgroup = true") == 2  # kind's driver for Kubernetes 1.24 and later
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.2"' in out
    assert "restrict_oom_score_adj = true" in out


def test_configure_containerd_refuses_unknown_layout():
    with pytest.raises(ValueError, match="restrict_oom_score_adj"):
        node_image.configure_containerd(KIND_CONTAINERD.replace("restrict_oom_score_adj", "x"), "p")


def test_cni_manifest_is_a_kind_template_using_a_local_image():
    text = node_image.CNI_MANIFEST.read_text()
    assert "would you kindly template this file" in text
    assert "would you kindly patch this file" in text
    assert node_image.manifest_images(text) == ["docker.io/iris-offline/kind-cni:v1"]
    assert "{{ .PodSubnet }}" in text


def test_storage_manifest_is_not_empty():
    text = node_image.STORAGE_MANIFEST.read_text()
    assert "kind: StorageClass" in text


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("k8s.gcr.io/pause:3.2", "k8s.gcr.io/pause:3.2"),
        ("docker.io/iris-offline/kind-cni:v1", "docker.io/iris-offline/kind-cni:v1"),
        ("iris-offline/kind-cni:v1", "docker.io/iris-offline/kind-cni:v1"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
    ],
)
def test_normalize_ref(ref, normal):
    assert node_image.normalize_ref(ref) == normal


def test_base_file_modes():
    assert node_image.base_file_mode("usr/local/bin/entrypoint") == 0o755
    assert node_image.base_file_mode("kind/bin/mount-product-files.sh") == 0o755
    assert node_image.base_file_mode("etc/containerd/config.toml") == 0o644


# ------------------------------------------------------------ image archives


def test_docker_archive_shares_layers(tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    base = images.layer_from_entries(
        tmp_path / "base.tar", [images.Entry("etc/os-release", b"x", 0o644)]
    )
    top = images.layer_from_entries(
        tmp_path / "top.tar", [images.Entry("usr/local/bin/tool", binary)]
    )
    again = images.layer_from_entries(
        tmp_path / "again.tar", [images.Entry("usr/local/bin/tool", binary)]
    )
    assert top.digest == again.digest  # deterministic layers
    out = tmp_path / "images.tar"
    images.write_archive(
        out,
        [
            images.Image("k8s.gcr.io/a:1", [base, top], entrypoint=["/usr/local/bin/tool"]),
            images.Image("k8s.gcr.io/b:1", [base]),
        ],
    )
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        with (
            tar.extractfile(f"{top.digest}/layer.tar") as fh,
            tarfile.open(fileobj=fh) as inner,
        ):
            member = inner.getmember("usr/local/bin/tool")
            assert member.mode == 0o755
            assert member.uid == 0
            assert "usr/local/bin" in inner.getnames()
    assert names.count(f"{base.digest}/layer.tar") == 1
    assert [m["RepoTags"] for m in manifest] == [["k8s.gcr.io/a:1"], ["k8s.gcr.io/b:1"]]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{base.digest}", f"sha256:{top.digest}"]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/tool"]


def test_parent_dirs():
    assert images.parent_dirs(["usr/local/bin/x", "pause"]) == ["usr", "usr/local", "usr/local/bin"]


# ------------------------------------------------------------ mounts


def test_mounts_under_deepest_first_and_unescaped():
    info = (
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "90 30 0:5 / /c/.tmp-x/rootfs/dev rw - devtmpfs udev rw\n"
        "91 90 0:6 / /c/.tmp-x/rootfs/dev/pts rw - devpts devpts rw\n"
        "92 30 0:7 / /c/.tmp-x/root\\040fs/proc rw - proc proc rw\n"
        "93 30 0:8 / /c/.tmp-xy/rootfs/proc rw - proc proc rw\n"
    )
    assert fsutil.mounts_under(info, "/c/.tmp-x") == [
        "/c/.tmp-x/rootfs/dev/pts",
        "/c/.tmp-x/rootfs/dev",
        "/c/.tmp-x/root fs/proc",
    ]
    assert fsutil.mounts_under(info, "/nowhere") == []


def test_safe_rmtree_missing_and_file(tmp_path):
    fsutil.safe_rmtree(tmp_path / "missing")
    f = tmp_path / "f"
    f.write_text("x")
    fsutil.safe_rmtree(f)
    assert not f.exists()
    d = tmp_path / "d" / "e"
    d.mkdir(parents=True)
    fsutil.safe_rmtree(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_atomic_write_text(tmp_path):
    target = tmp_path / "sub" / "env.json"
    fsutil.atomic_write_text(target, "{}\n", 0o600)
    assert target.read_text() == "{}\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["env.json"]


# ------------------------------------------------------------ engine helpers


def test_superseded_tags_only_same_repository():
    listing = (
        "iris-offline/kind-node:v1.20.2-aaaa\niris-offline/kind-node:v1.20.2-bbbb\n"
        "iris-offline/kind-node-build:x\niris-offline/python-base:3.11-cccc\n"
    )
    assert engine.superseded_tags(listing, "iris-offline/kind-node:v1.20.2-bbbb") == [
        "iris-offline/kind-node:v1.20.2-aaaa"
    ]
    assert engine.superseded_tags("", "iris-offline/kind-node:v1") == []


@pytest.mark.parametrize(("version", "expected"), [("26.1.5+dfsg1", 26), ("20.10.24", 20), ("", 0)])
def test_major(version, expected):
    assert engine.major(version) == expected


def test_the_toolchain_asks_what_kubeverify_asks_of_the_registry():
    """Built before any venv exists, the toolchain carries its own copy of kubeverify's choice:
    the same variable, the same address, the same answer."""
    from ci.offline_kind import registry
    from kubeverify.providers.kind import toolchain

    assert registry.CHOICE_VARIABLE == toolchain.CHOICE_VARIABLE
    assert registry.REGISTRY_PROBE_URL == toolchain.REGISTRY_PROBE_URL
    # Nothing listens on port 9 here: neither calls that an answer.
    closed = "http://127.0.0.1:9/v2/"
    assert (
        registry.registry_reachable(closed, 1) is toolchain.registry_reachable(closed, 1) is False
    )
