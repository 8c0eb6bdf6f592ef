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
    images,
    kubernetes,
    node_image,
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
    # The key must change when the entrypoint patch or the manifests change.
    files = {
        p.relative_to(node_image.NODE_DIR).as_posix()
        for p in node_image.NODE_DIR.rglob("*")
        if p.is_file()
    }
    assert {
        "entrypoint-cgroup-v1.patch",
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

MADISON = """\
 docker.io | 26.1.5+dfsg1-9+deb13u1+b1 | http://deb.debian.org/debian trixie/main amd64 Packages
 docker.io | 20.10.24+dfsg1-1+deb12u1+b6 | http://deb.debian.org/debian bookworm/main amd64 Packages
      runc | 1.1.15+ds1-2+b4 | http://deb.debian.org/debian trixie/main amd64 Packages
      runc | 1.1.5+ds1-1+deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages
      runc | 1.1.5+ds1-1+deb12u1 | http://m.example/sec bookworm-security/main amd64 Packages
kubernetes | 1.20.5+really1.20.2-1.1+deb12u1 | http://deb.debian.org/debian bookworm/main Sources
kubernetes | 1.32.3+ds-2 | http://deb.debian.org/debian trixie/main Sources
N: Unable to locate package nothing
"""


def test_parse_madison_and_pick():
    offers = apt.parse_madison(MADISON)
    assert len(offers) == 7
    assert apt.pick(offers, "docker.io", "trixie") == "26.1.5+dfsg1-9+deb13u1+b1"
    assert apt.pick(offers, "runc", "bookworm") == "1.1.5+ds1-1+deb12u1"
    assert apt.pick(offers, "runc", "bookworm-security") == "1.1.5+ds1-1+deb12u1"
    assert (
        apt.pick(offers, "kubernetes", "bookworm", "Sources") == "1.20.5+really1.20.2-1.1+deb12u1"
    )
    with pytest.raises(KeyError):
        apt.pick(offers, "kubernetes", "bookworm")  # no binary package of that name
    with pytest.raises(KeyError):
        apt.pick(offers, "kind", "trixie")


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


def test_parse_print_uris():
    pool = "http://deb.debian.org/debian/pool/main/k/kind"
    dsc_sum = "d038049a57a721e137a1f9bcfcc440b9b8f24e2d944c56b6d858da721be186e8"
    orig_sum = "7150a9ea8b07f8a3b28dcca5090ad551a9a50be401fef9501aef1851be8a6dd6"
    text = (
        "Reading package lists...\n"
        "NOTICE: 'kind' packaging is maintained in the 'Git' version control system at:\n"
        f"'{pool}/kind_0.27.0-1.dsc' kind_0.27.0-1.dsc 2424 SHA256:{dsc_sum}\n"
        f"'{pool}/kind_0.27.0.orig.tar.gz' kind_0.27.0.orig.tar.gz 1938237 SHA256:{orig_sum}\n"
    )
    files = apt.parse_print_uris(text)
    assert [f.name for f in files] == ["kind_0.27.0-1.dsc", "kind_0.27.0.orig.tar.gz"]
    assert files[1].size == 1938237
    assert files[0].sha256.startswith("d038049a")


def test_series_patches():
    assert apt.series_patches("# comment\n0001-a.patch\n\nCVE-1.patch -p1\n") == [
        "0001-a.patch",
        "CVE-1.patch",
    ]


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
    assert [(p["types"], p["suites"]) for p in paragraphs] == [
        ("deb-src", "bookworm"),
        ("deb deb-src", "trixie"),
    ]
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
k8s.gcr.io/kube-apiserver:v1.20.2
k8s.gcr.io/kube-controller-manager:v1.20.2
k8s.gcr.io/kube-scheduler:v1.20.2
k8s.gcr.io/kube-proxy:v1.20.2
k8s.gcr.io/pause:3.2
k8s.gcr.io/etcd:3.4.13-0
k8s.gcr.io/coredns:1.7.0
"""


def test_parse_image_list_ignores_log_noise():
    noisy = "W0101 12:00:00.000000 1 version.go:102] could not fetch a Kubernetes version\n"
    assert (
        kubernetes.parse_image_list(noisy + KUBEADM_IMAGES)[0]
        == "k8s.gcr.io/kube-apiserver:v1.20.2"
    )
    assert len(kubernetes.parse_image_list(noisy + KUBEADM_IMAGES)) == 7


def test_plan_images():
    plan, skipped = node_image.plan_images(kubernetes.parse_image_list(KUBEADM_IMAGES))
    assert plan == {
        "k8s.gcr.io/kube-apiserver:v1.20.2": "static",
        "k8s.gcr.io/kube-controller-manager:v1.20.2": "static",
        "k8s.gcr.io/kube-scheduler:v1.20.2": "static",
        "k8s.gcr.io/kube-proxy:v1.20.2": "kube-proxy",
        "k8s.gcr.io/pause:3.2": "pause",
        "k8s.gcr.io/etcd:3.4.13-0": "etcd",
    }
    assert skipped == ["k8s.gcr.io/coredns:1.7.0"]


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
    out = node_image.configure_containerd(KIND_CONTAINERD, "k8s.gcr.io/pause:3.2")
    assert out.count("SystemdCgroup = false") == 2
    assert "SystemdCgroup = true" not in out
    assert 'sandbox_image = "k8s.gcr.io/pause:3.2"' in out
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


def test_entrypoint_patch_targets_kind_entrypoint():
    text = node_image.ENTRYPOINT_PATCH.read_text()
    assert "+++ b/usr/local/bin/entrypoint" in text
    # The self bind mount is dropped, the mkdir before it stays.
    assert '-  mount --bind "${subsystem}/${cgroup_root}" "${subsystem}/${cgroup_root}"' in text
    assert not [
        line for line in text.splitlines() if line.startswith("+") and "mount --bind" in line
    ]


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
