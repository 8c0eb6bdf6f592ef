"""What a kind node needs on a host whose Docker runs cgroup v1, added to a kind config that
does not say it itself.

- kubelet 1.35 and later refuse to start on cgroup v1 unless their KubeletConfiguration sets
  `failCgroupV1: false` (a field since 1.31).
- The cgroupfs driver, for the kubelet and containerd together. Under systemd's (kind's from
  Kubernetes 1.24), runc freezes each new container's cgroup while it sets its devices up, and
  cgroup v1's freezer gives up ("unable to freeze") when a task cannot be scheduled within its
  few hundred milliseconds of retries, as on a busy two-core machine: the container never
  starts, and a pod that does not restart ends Failed (StartError). cgroupfs, kind's own driver
  before 1.24, does not freeze. The two must agree: a config that names a driver keeps its own
  choice, and one whose kubelet alone names cgroupfs gets containerd's to match.

Only the cluster-wide strategic-merge patches are read; per-node and JSON 6902 ones are not.
"""

from __future__ import annotations

import yaml

# kind's own patch for node images before 1.24 (pkg/build/nodeimage/containerd.go): the runtime
# every pod uses and the one of Kubernetes' RuntimeClass tests; its node images' containerd
# config is of version 2.
CONTAINERD_CGROUPFS = """\
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
  SystemdCgroup = false
"""


def kubelet_fields(config: dict) -> dict:
    """The fields the config's kubeadm patches give the KubeletConfiguration."""
    fields: dict = {}
    for patch in config.get("kubeadmConfigPatches") or []:
        if not isinstance(patch, str):
            continue  # not a patch kind can read either; kind says so when it is given it
        try:
            documents = list(yaml.safe_load_all(patch))
        except yaml.YAMLError:
            continue
        for document in documents:
            if isinstance(document, dict) and document.get("kind") == "KubeletConfiguration":
                fields.update(document)
    return fields


def names_containerd_driver(config: dict) -> bool:
    patches = config.get("containerdConfigPatches") or []
    return any("SystemdCgroup" in patch for patch in patches if isinstance(patch, str))


def fit(config: dict) -> tuple[dict, list[str]]:
    """The config with what a cgroup v1 host needs and it does not say, and what was added."""
    kubelet = kubelet_fields(config)
    wanted: dict = {}
    added = []
    if "failCgroupV1" not in kubelet:
        wanted["failCgroupV1"] = False
        added.append("failCgroupV1: false (kubelet 1.35 and later refuse cgroup v1 without it)")
    containerd_named = names_containerd_driver(config)
    if "cgroupDriver" not in kubelet and not containerd_named:
        wanted["cgroupDriver"] = "cgroupfs"
        added.append(
            "the cgroupfs driver for the kubelet and containerd (under systemd's, runc freezes "
            "each new container's cgroup v1, which on a busy machine fails: 'unable to freeze')"
        )
    cgroupfs = kubelet.get("cgroupDriver", wanted.get("cgroupDriver")) == "cgroupfs"
    containerd = cgroupfs and not containerd_named
    if containerd and "cgroupDriver" in kubelet:
        added.append("containerd's cgroupfs driver, as the kubelet's names it")
    if not added:
        return config, []
    fitted = dict(config)
    if wanted:
        patch = yaml.safe_dump({"kind": "KubeletConfiguration", **wanted}, sort_keys=False)
        fitted["kubeadmConfigPatches"] = [*(config.get("kubeadmConfigPatches") or []), patch]
    if containerd:
        fitted["containerdConfigPatches"] = [
            *(config.get("containerdConfigPatches") or []),
            CONTAINERD_CGROUPFS,
        ]
    return fitted, added
