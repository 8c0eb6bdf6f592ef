"""Which kind, kubectl, node image and Python base image this machine should use.

Two paths are first class. On a machine with Docker and internet, kind pulls its published node
image and the Dockerfile pulls its default base image. On a machine that reaches no registry,
`python3 -m ci.offline_kind ensure` builds stand-ins from Debian's packages and records them in
an env.json; this module finds that file and says which path it took.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"
_CHOICES = ("auto", "online", "offline")


def offline_env_path() -> Path:
    cache = os.environ.get("IRIS_OFFLINE_CACHE") or str(Path.home() / ".cache/iris-offline-kind")
    return Path(cache) / "env.json"


@dataclass(frozen=True)
class Toolchain:
    offline: bool
    kind: str | None = None  # None: whatever `kind` is on PATH (or pytest-kind's download)
    kubectl: str | None = None
    node_image: str | None = None  # None: kind's published default
    base_image: str | None = None  # None: the Dockerfile's default
    reason: str = ""

    def describe(self) -> str:
        path = "offline" if self.offline else "online"
        node = self.node_image or "kind's published node image"
        base = self.base_image or "the Dockerfile's default base image"
        return f"{path} path ({self.reason}): node image {node}, base image {base}"


def registry_reachable(url: str = REGISTRY_PROBE_URL, timeout: float = 5.0) -> bool:
    """True when the public registry answers at all; a 401 is an answer."""
    try:
        urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def load_offline_env(path: Path) -> dict[str, str]:
    env = json.loads(path.read_text())
    missing = {"kind", "kubectl", "node_image", "base_image"} - env.keys()
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}; rerun `nox -s offline-kind`")
    return env


def detect(choice: str | None = None) -> Toolchain:
    """Pick the path: IRIS_TOOLCHAIN=online|offline forces one, `auto` asks the registry."""
    choice = (choice or os.environ.get("IRIS_TOOLCHAIN") or "auto").lower()
    if choice not in _CHOICES:
        raise ValueError(f"IRIS_TOOLCHAIN must be one of {_CHOICES}, not {choice!r}")
    env_path = offline_env_path()
    if choice == "online":
        return Toolchain(offline=False, reason="IRIS_TOOLCHAIN=online")
    if choice == "auto" and registry_reachable():
        return Toolchain(offline=False, reason="the public registry answers")
    if not env_path.exists():
        raise RuntimeError(
            f"no container registry is reachable and {env_path} does not exist: "
            "run `nox -s offline-kind` to build the offline toolchain"
        )
    env = load_offline_env(env_path)
    reason = "IRIS_TOOLCHAIN=offline" if choice == "offline" else "no registry reachable"
    return Toolchain(
        offline=True,
        kind=env["kind"],
        kubectl=env["kubectl"],
        node_image=env["node_image"],
        base_image=env["base_image"],
        reason=f"{reason}, using {env_path}",
    )
