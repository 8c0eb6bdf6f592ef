"""Checks before a kind cluster is made, each failing with one line that says the way out.

kind comes from an option or the toolchain when it is at least MIN_KIND (an older one stops the
run), else from PATH when it is at least MIN_KIND, else it is the pinned release below,
downloaded once and checked against its SHA-256 (pytest-kind alone would fetch kind 0.17, whose
node image is Kubernetes 1.25, long out of support, unchecked). kubectl comes from the
toolchain, an option or PATH, and is never downloaded.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from kubeverify.preflight import PreflightError, parse_version

MIN_KIND = (0, 27, 0)
PINNED_KIND = "v0.33.0"
# The release's published checksums, per platform (each `kind-<platform>.sha256sum` beside the
# binary).
PINNED_KIND_SHA256 = {
    "linux-amd64": "aee6151561422756b764a4ae28e7f44cda5af5a9eead3cc9985112b1de8d8e0d",
    "linux-arm64": "20022bee6cfcd5086cb7234d218e3454e6090022f2a8f55d1fa7fcf42c3867a2",
    "darwin-amd64": "5a99f26f57246dc9319dd294803313197a0f34d33c525b3ea8b655db5916ece0",
    "darwin-arm64": "0c8c7dbe5e23594a198b786c4bc13dacc101fa6196b0cb0b23a1ca44e61f4b4f",
}
# The node image PINNED_KIND itself defaults to (pkg/apis/config/defaults/image.go), pinned by
# digest as kind pins it.
PINNED_NODE_IMAGE = (
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)
KIND_URL = "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{platform}"
DOWNLOAD_TIMEOUT = 120
MEMORY_PER_NODE = 1 << 30  # a kind node with a small workload; fewer bytes and pods get evicted
KIND_INSTALL = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"


def _kind_too_old(kind: str) -> str | None:
    """Why `kind` will not do (older than MIN_KIND, or silent about its version), else None."""
    said = subprocess.run([kind, "version"], capture_output=True, text=True, check=False)
    version = parse_version(said.stdout)
    if version is not None and version >= MIN_KIND:
        return None
    minimum = ".".join(map(str, MIN_KIND))
    return f"{kind} is {said.stdout.strip() or 'of unknown version'}, older than {minimum}"


def kind_binary(given: str | None = None, say=print) -> tuple[str, bool]:
    """The kind to run, and whether it is the pinned release: one given (toolchain or
    --kind-bin) if it is at least MIN_KIND, else the run stops; else kind on PATH if it is at
    least MIN_KIND; else PINNED_KIND."""
    minimum = ".".join(map(str, MIN_KIND))
    if given:
        try:
            too_old = _kind_too_old(given)
        except OSError as error:
            too_old = f"{given} cannot be run ({error.strerror})"
        if too_old:
            raise PreflightError(
                f"{too_old}: pass kind {minimum} or newer with --kind-bin PATH ({KIND_INSTALL})"
            )
        return given, False
    found = shutil.which("kind")
    if found:
        too_old = _kind_too_old(found)
        if too_old is None:
            return found, False
        say(too_old)
    return str(pinned_kind(say=say)), True


def platform_name(system: str | None = None, machine: str | None = None) -> str:
    """kind's name for this platform: linux-amd64, darwin-arm64, ..."""
    system = (system or sys.platform).lower()
    machine = (machine or platform.machine()).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    return f"{'darwin' if system.startswith('darwin') else system}-{arch}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kubeverify"


def pinned_kind(
    directory: Path | None = None,
    system: str | None = None,
    url: str = KIND_URL,
    checksums: dict[str, str] = PINNED_KIND_SHA256,
    say=print,
) -> Path:
    """PINNED_KIND for this platform, downloaded once into the cache and kept only when its
    SHA-256 is the release's."""
    name = platform_name(system)
    expected = checksums.get(name)
    if expected is None:
        raise PreflightError(
            f"no kind {PINNED_KIND} is pinned for {name}: install kind "
            f"{'.'.join(map(str, MIN_KIND))} or newer ({KIND_INSTALL}), or pass --kind-bin PATH"
        )
    path = (directory or cache_dir()) / f"kind-{PINNED_KIND}-{name}"
    if path.is_file() and _sha256(path) == expected:
        return path
    source = url.format(version=PINNED_KIND, platform=name)
    say(f"downloading kind {PINNED_KIND} for {name} from {source} (SHA-256 checked)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as partial:
        try:
            with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT) as answer:
                shutil.copyfileobj(answer, partial)
        except (urllib.error.URLError, OSError) as error:
            os.unlink(partial.name)
            raise PreflightError(
                f"could not download kind {PINNED_KIND} ({error}): install kind "
                f"{'.'.join(map(str, MIN_KIND))} or newer ({KIND_INSTALL}), or pass --kind-bin"
            ) from None
    got = _sha256(Path(partial.name))
    if got != expected:
        os.unlink(partial.name)
        raise PreflightError(
            f"kind {PINNED_KIND} from {source} has SHA-256 {got}, not the release's {expected}: "
            "not used"
        )
    os.chmod(partial.name, 0o755)
    os.replace(partial.name, path)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def cgroup_v1() -> bool:
    """Whether the Docker engine runs its containers, kind's nodes, on cgroup v1."""
    said = subprocess.run(
        ["docker", "info", "--format", "{{.CgroupVersion}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return said.stdout.strip() == "1"


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
