"""Phase 3: stand-in for the official python image, from a bookworm rootfs.

No python:* image can be pulled. The product's Dockerfile takes its base as a
build arg, so this image only has to look like the official one to it:
`python` on PATH, the venv module, pip. pip inside `docker build` goes through
the same TLS interception as this machine, so the image carries this machine's
CA bundle and pip settings. That belongs here, never in the product's Dockerfile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import engine, fsutil, rootfs
from .phases import Context, Phase, short
from .proc import Runner, warn

PACKAGES = ["python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"]
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_KEYS = {
    "index-url",
    "extra-index-url",
    "trusted-host",
    "timeout",
    "default-timeout",
    "retries",
    "disable-pip-version-check",
    "find-links",
    "proxy",
}
PATH_KEYS = {"index-url", "extra-index-url", "find-links"}
IMAGE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
]


def is_local_location(value: str) -> bool:
    return value.startswith(("file:", "/", "./", "../", "~"))


def parse_pip_config(listing: str) -> dict[str, str]:
    """`pip config list` output -> effective global settings (environment wins)."""
    found: dict[str, dict[str, str]] = {}
    for line in listing.splitlines():
        m = re.match(r"^(.+?)\.([A-Za-z0-9_-]+)='(.*)'$", line.strip())
        if not m:
            continue
        section, key, value = m.groups()
        if section in ("global", ":env:"):
            found.setdefault(key, {})[section] = value
    return {k: v.get(":env:", v.get("global", "")) for k, v in found.items()}


def container_pip_conf(listing: str, cert: str = CONTAINER_CA_BUNDLE) -> str:
    """pip.conf for the image: this machine's index settings, minus local paths.

    file:// indexes and local wheel dirs do not exist inside a build container.
    """
    settings = {}
    for key, value in parse_pip_config(listing).items():
        if key not in PIP_KEYS:
            continue
        if key in PATH_KEYS:
            value = " ".join(v for v in value.split() if not is_local_location(v))
            if not value:
                continue
        settings[key] = value
    settings["cert"] = cert
    lines = ["[global]"] + [f"{k} = {settings[k]}" for k in sorted(settings)]
    return "\n".join(lines) + "\n"


def python_series(debian_version: str) -> str:
    m = re.match(r"^(?:\d+:)?(\d+\.\d+)", debian_version)
    return m.group(1) if m else "3"


def host_pip_listing(run: Runner) -> str:
    for cmd in (["python3", "-m", "pip", "config", "list"], ["pip", "config", "list"]):
        proc = run.run(cmd, capture=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.decode()
    return ""


class BaseImagePhase(Phase):
    name = "base-image"
    what = "stand-in Python base image (bookworm rootfs, docker import)"
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        data = rootfs.inputs(ctx, run, PACKAGES)
        data["ca_bundle"] = fsutil.sha256_file(HOST_CA_BUNDLE)
        data["pip_conf"] = container_pip_conf(host_pip_listing(run))
        data["changes"] = IMAGE_CHANGES
        return data

    def _tag(self, ctx: Context, run: Runner) -> str:
        data = ctx.inputs[self.name]
        series = python_series(data["packages"]["python3"])
        return f"iris-offline/python-base:{series}-{short(ctx.keys[self.name])}"

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return Path(outputs.get("rootfs_tar", "")).is_file()

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        data = ctx.inputs[self.name]
        root = work / "rootfs"
        rootfs.debootstrap(ctx, run, root, PACKAGES)
        bundle = HOST_CA_BUNDLE.read_bytes()
        fsutil.atomic_write_bytes(root / CONTAINER_CA_BUNDLE.lstrip("/"), bundle, 0o644)
        # Also as a local CA, so an update-ca-certificates in a derived image keeps it.
        fsutil.atomic_write_bytes(
            root / "usr/local/share/ca-certificates/iris-offline-host-bundle.crt", bundle, 0o644
        )
        fsutil.atomic_write_text(root / "etc/pip.conf", data["pip_conf"], 0o644)
        run.run(["chroot", root, "python", "-c", "import venv, ssl, ensurepip, pip"])
        rootfs.tidy(root)
        rootfs.pack(run, root, work / "rootfs.tar")
        fsutil.safe_rmtree(root)
        return {"rootfs_tar": str(final / "rootfs.tar"), "tag": self._tag(ctx, run)}

    def activate(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> str | None:
        docker = engine.docker_client(ctx)
        tag = outputs["tag"]
        if not engine.needs_restoring(run, docker, tag):
            return f"image {tag} present"
        cmd = [docker, "import"]
        for change in IMAGE_CHANGES:
            cmd += ["--change", change]
        run.run([*cmd, outputs["rootfs_tar"], tag], timeout=600)
        run.run([docker, "run", "--rm", tag, "python", "-m", "venv", "--help"])
        self._check_pip(run, docker, tag)
        return f"imported {tag}"

    def _check_pip(self, run: Runner, docker: str, tag: str) -> None:
        # A warning, not a failure: PyPI being briefly unreachable should not
        # make the toolchain unusable, but a wrong CA setup should be visible now.
        if not run.ok(
            [
                docker,
                "run",
                "--rm",
                tag,
                "python",
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--dest",
                "/tmp/probe",
                "six",
            ],
            timeout=300,
        ):
            warn(f"pip in {tag} could not download from the package index; see {run.log_path}")
