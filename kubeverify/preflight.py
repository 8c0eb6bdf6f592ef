"""Checks before a kind cluster is made, each failing with one line that says the way out.

kind and kubectl come from the toolchain, an option, or PATH, never from a silent download:
pytest-kind alone would fetch kind 0.17 (whose node image is Kubernetes 1.25, long out of
support) and kubectl 1.25.
"""

from __future__ import annotations

import re
import shutil
import subprocess

MIN_KIND = (0, 27, 0)
MEMORY_PER_NODE = 1 << 30  # a kind node with a small workload; fewer bytes and pods get evicted
KIND_INSTALL = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
KUBECTL_INSTALL = "https://kubernetes.io/docs/tasks/tools/#kubectl"


class PreflightError(RuntimeError):
    """One line: what is missing, and how to provide it."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first version in `text`: `kind v0.27.0 go1.24.1 linux/amd64` -> (0, 27, 0)."""
    match = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def kind_binary(given: str | None = None) -> str:
    """The kind to run: one given (toolchain or --kind-bin) as it is, else kind on PATH if it
    is at least MIN_KIND."""
    if given:
        return given
    found = shutil.which("kind")
    minimum = ".".join(map(str, MIN_KIND))
    if not found:
        raise PreflightError(
            f"no kind on PATH: install kind {minimum} or newer ({KIND_INSTALL}), or pass "
            "--kind-bin PATH"
        )
    said = subprocess.run([found, "version"], capture_output=True, text=True, check=False)
    version = parse_version(said.stdout)
    if version is None or version < MIN_KIND:
        raise PreflightError(
            f"{found} is kind {said.stdout.strip() or 'of unknown version'}; kubeverify needs "
            f"{minimum} or newer ({KIND_INSTALL}), or pass --kind-bin PATH"
        )
    return found


def kubectl_binary(given: str | None = None) -> str:
    found = given or shutil.which("kubectl")
    if not found:
        raise PreflightError(
            f"no kubectl on PATH: install it ({KUBECTL_INSTALL}), or pass --kind-kubectl-bin PATH"
        )
    return found


def docker_engine() -> None:
    """A Docker engine must answer: kind's nodes are its containers."""
    try:
        said = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise PreflightError(
            "no docker client on PATH: install Docker (kind runs its nodes as containers)"
        ) from None
    except subprocess.TimeoutExpired:
        raise PreflightError("`docker info` did not answer in 30 s: is the engine hung?") from None
    if said.returncode != 0 or not said.stdout.strip():
        why = (said.stderr.strip().splitlines() or ["no answer"])[-1]
        raise PreflightError(
            f"no Docker engine answers ({why}): start it (Docker Desktop, or `sudo systemctl "
            "start docker`) and run again"
        )


def memory_for(nodes: int, available: int | None = None) -> None:
    """The engine needs MEMORY_PER_NODE for each node of the cluster."""
    if available is None:
        said = subprocess.run(
            ["docker", "info", "--format", "{{.MemTotal}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            available = int(said.stdout.strip())
        except ValueError:
            return  # the engine does not say: nothing to judge by
    needed = nodes * MEMORY_PER_NODE
    if available < needed:
        raise PreflightError(
            f"the Docker engine has {available / (1 << 30):.1f} GiB of memory; a kind cluster "
            f"of {nodes} nodes needs {needed / (1 << 30):.0f} GiB: give the engine more memory, "
            "or ask for fewer workers in the target's [cluster]"
        )


def kubectl_skew(client: str, server: str) -> str | None:
    """A warning when kubectl is more than one minor version from the server (kubectl's own
    support policy), else None. Versions as `v1.20.2`."""
    client_version, server_version = parse_version(client), parse_version(server)
    if client_version is None or server_version is None:
        return None
    if client_version[0] == server_version[0] and abs(client_version[1] - server_version[1]) <= 1:
        return None
    return (
        f"kubectl {client} is more than one minor version from the server's {server}: "
        "kubectl supports one minor version either way; its answers may differ"
    )
