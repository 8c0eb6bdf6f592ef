"""What the verdicts were obtained on: Kubernetes, kube-proxy mode, runtime, kubectl (and what
the provider adds: kind, the node image).

Read once the cluster is up, said in the run's start line and kept in the JSON summary, since a
balance verdict means something else under another proxy mode or Kubernetes version.
"""

from __future__ import annotations

import json
import subprocess

import yaml

from kubeverify.kube import KubeTarget
from kubeverify.preflight import kubectl_skew

UNKNOWN = "unknown"


def proxy_mode(config_conf: str | None) -> str:
    """kube-proxy's mode from its configuration file (the kube-proxy ConfigMap's config.conf);
    an empty mode is the platform default, iptables on Linux."""
    if config_conf is None:
        return UNKNOWN
    try:
        mode = (yaml.safe_load(config_conf) or {}).get("mode") or ""
    except yaml.YAMLError:
        return UNKNOWN
    return mode or "iptables (the default)"


def collect(kube: KubeTarget) -> dict:
    """What the API and kubectl tell, on any cluster (the provider adds what only it knows).
    Every field is read on its own: one that cannot be read is `unknown`, never an error."""
    found: dict[str, str] = {}

    def read(name: str, how) -> None:
        try:
            found[name] = how() or UNKNOWN
        except Exception as error:  # a managed cluster may hide any of these
            found[name] = f"{UNKNOWN} ({type(error).__name__})"

    read("kubernetes", lambda: kube.version().git_version)
    read(
        "container_runtime",
        lambda: kube.core.list_node().items[0].status.node_info.container_runtime_version,
    )
    read("kube_proxy_mode", lambda: proxy_mode(_proxy_config(kube)))
    read("kubectl", lambda: _kubectl_version(kube.kubectl_path))
    return found


def warnings(found: dict[str, str]) -> list[str]:
    skew = kubectl_skew(found.get("kubectl", ""), found.get("kubernetes", ""))
    return [skew] if skew else []


def start_line(found: dict[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in found.items())


def _proxy_config(kube: KubeTarget) -> str | None:
    config_map = kube.core.read_namespaced_config_map("kube-proxy", "kube-system")
    return (config_map.data or {}).get("config.conf")


def _kubectl_version(kubectl: str) -> str:
    said = json.loads(_out([kubectl, "version", "--client", "--output", "json"]))
    return said["clientVersion"]["gitVersion"]


def _out(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
