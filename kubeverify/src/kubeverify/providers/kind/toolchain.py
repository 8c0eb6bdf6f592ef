"""Which kind, kubectl, node image and base image this machine should use.

Two paths are first class. On a machine with Docker and internet, kind pulls its published node
image and a Dockerfile pulls its default base image. On a machine that reaches no registry, a
toolchain built elsewhere (this repository's `ci/offline_kind`, say) records stand-ins in a JSON
env file, which the plugin is given (`--toolchain-env`, or KUBEVERIFY_TOOLCHAIN_ENV); this
module reads that file and says which path it took.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kubeverify.preflight import PreflightError

REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"
CHOICE_VARIABLE = "KUBEVERIFY_TOOLCHAIN"
ENV_FILE_VARIABLE = "KUBEVERIFY_TOOLCHAIN_ENV"
_CHOICES = ("auto", "online", "offline")
ENV_KEYS = frozenset({"kind", "kubectl", "node_image", "base_image"})


@dataclass(frozen=True)
class Toolchain:
    offline: bool
    kind: str | None = None  # None: whatever `kind` is on PATH
    kubectl: str | None = None
    node_image: str | None = None  # None: kind's published default
    base_image: str | None = None  # None: the Dockerfile's default
    reason: str = ""

    def describe(self) -> str:
        path = "offline" if self.offline else "online"
        node = self.node_image or "kind's published node image"
        base = self.base_image or "the Dockerfile's default base image"
        return f"{path} path ({self.reason}): node image {node}, base image {base}"

    def build_args(self) -> dict[str, str]:
        """What an image build is handed: the offline stand-in for BASE_IMAGE, if any."""
        return {"BASE_IMAGE": self.base_image} if self.offline and self.base_image else {}


def registry_reachable(url: str = REGISTRY_PROBE_URL, timeout: float = 5.0) -> bool:
    """True when the public registry answers at all; a 401 is an answer."""
    try:
        urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def load_env_file(path: Path) -> dict[str, str]:
    """The offline toolchain's record: a JSON object naming every one of ENV_KEYS."""
    way_out = (
        f"rebuild the offline toolchain, or name another file with --toolchain-env or "
        f"{ENV_FILE_VARIABLE}"
    )
    try:
        env = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
        raise PreflightError(
            f"offline toolchain env file {path} cannot be read as JSON ({error}): {way_out}"
        ) from None
    if not isinstance(env, dict):
        raise PreflightError(
            f"offline toolchain env file {path} holds a JSON {type(env).__name__}, not an "
            f"object naming {sorted(ENV_KEYS)}: {way_out}"
        )
    missing = ENV_KEYS - env.keys()
    if missing:
        raise PreflightError(
            f"offline toolchain env file {path} lacks {sorted(missing)}: {way_out}"
        )
    return env


def detect(env_file: str | Path | None = None, choice: str | None = None) -> Toolchain:
    """Pick the path: KUBEVERIFY_TOOLCHAIN=online|offline forces one, `auto` asks the registry.

    `env_file` (else KUBEVERIFY_TOOLCHAIN_ENV) is the offline toolchain's record.
    """
    choice = (choice or os.environ.get(CHOICE_VARIABLE) or "auto").lower()
    if choice not in _CHOICES:
        raise PreflightError(
            f"{CHOICE_VARIABLE} is {choice!r}: set it to {', '.join(_CHOICES)}, or unset it "
            "(auto: offline only when no registry answers)"
        )
    if choice == "online":
        return Toolchain(offline=False, reason=f"{CHOICE_VARIABLE}=online")
    if choice == "auto" and registry_reachable():
        return Toolchain(offline=False, reason="the public registry answers")
    env_file = env_file or os.environ.get(ENV_FILE_VARIABLE)
    if not env_file or not Path(env_file).is_file():
        raise PreflightError(
            "no container registry is reachable and no offline toolchain env file "
            f"{'exists at ' + str(env_file) if env_file else 'is given'} "
            f"(--toolchain-env or {ENV_FILE_VARIABLE})"
        )
    path = Path(env_file)
    env = load_env_file(path)
    reason = f"{CHOICE_VARIABLE}=offline" if choice == "offline" else "no registry reachable"
    return Toolchain(
        offline=True,
        kind=env["kind"],
        kubectl=env["kubectl"],
        node_image=env["node_image"],
        base_image=env["base_image"],
        reason=f"{reason}, using {path}",
    )
