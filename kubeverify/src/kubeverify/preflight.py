"""Checks before a run touches a cluster, each failing with one line that says the way out:
what every provider needs (kubectl), and the versions it reads (kubectl's skew from the server).
A provider adds its own (kind's: a Docker engine, kind's version, memory, free ports)."""

from __future__ import annotations

import re
import shutil

KUBECTL_INSTALL = "https://kubernetes.io/docs/tasks/tools/#kubectl"


class PreflightError(RuntimeError):
    """One line: what is missing, and how to provide it."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first version in `text`: `kind v0.27.0 go1.24.1 linux/amd64` -> (0, 27, 0)."""
    match = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def kubectl_binary(given: str | None = None) -> str:
    found = given or shutil.which("kubectl")
    if not found:
        raise PreflightError(
            f"no kubectl on PATH: install it ({KUBECTL_INSTALL}), or pass --kind-kubectl-bin PATH"
        )
    return found


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
