"""Write container images as a `docker save` archive, without a daemon or registry.

The node image's containerd imports these with `ctr images import`, the same
way kind's node-image build imports the archives Kubernetes' own build makes.
Layers are plain tars; one shared base layer is stored once.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .fsutil import sha256_file

# Fixed timestamp: identical inputs give identical layer digests.
EPOCH = 1_600_000_000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Layer:
    path: Path
    digest: str  # sha256 hex of the uncompressed tar (= its diff_id)


@dataclass(frozen=True)
class Entry:
    """A file (source path or bytes) or, with source None, a directory."""

    name: str
    source: Path | bytes | None
    mode: int = 0o755


@dataclass
class Image:
    tag: str
    layers: list[Layer]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def parent_dirs(names: list[str]) -> list[str]:
    """Every ancestor directory of the given paths, shallowest first."""
    dirs = set()
    for name in names:
        for parent in PurePosixPath(name).parents:
            if str(parent) != ".":
                dirs.add(str(parent))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def layer_from_entries(out: Path, entries: list[Entry]) -> Layer:
    explicit_dirs = {e.name.strip("/") for e in entries if e.source is None}
    names = [e.name.strip("/") for e in entries]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in parent_dirs(names):
            if d not in explicit_dirs:
                tar.addfile(_tarinfo(d + "/", tarfile.DIRTYPE, 0o755))
        for e in sorted(entries, key=lambda e: e.name):
            name = e.name.strip("/")
            if e.source is None:
                tar.addfile(_tarinfo(name + "/", tarfile.DIRTYPE, e.mode))
                continue
            data = e.source if isinstance(e.source, bytes) else None
            if data is not None:
                tar.addfile(_tarinfo(name, tarfile.REGTYPE, e.mode, len(data)), io.BytesIO(data))
            else:
                size = e.source.stat().st_size
                with open(e.source, "rb") as fh:
                    tar.addfile(_tarinfo(name, tarfile.REGTYPE, e.mode, size), fh)
    return Layer(out, sha256_file(out))


def layer_from_tar(path: Path) -> Layer:
    return Layer(path, sha256_file(path))


def image_config(image: Image) -> bytes:
    config: dict = {"Env": image.env, "WorkingDir": "/"}
    if image.entrypoint is not None:
        config["Entrypoint"] = image.entrypoint
    if image.cmd is not None:
        config["Cmd"] = image.cmd
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-09-13T12:26:40Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{x.digest}" for x in image.layers]},
        "history": [
            {"created": "2020-09-13T12:26:40Z", "created_by": "ci/offline_kind"}
            for _ in image.layers
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def archive_manifest(images: list[Image]) -> tuple[list[dict], dict[str, bytes]]:
    """manifest.json entries and the config blobs they name."""
    manifest, configs = [], {}
    for image in images:
        blob = image_config(image)
        name = hashlib.sha256(blob).hexdigest() + ".json"
        configs[name] = blob
        manifest.append(
            {
                "Config": name,
                "RepoTags": [image.tag],
                "Layers": [f"{layer.digest}/layer.tar" for layer in image.layers],
            }
        )
    return manifest, configs


def write_archive(out: Path, images: list[Image]) -> None:
    manifest, configs = archive_manifest(images)
    written = set()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for image in images:
            for layer in image.layers:
                if layer.digest in written:
                    continue
                written.add(layer.digest)
                tar.addfile(_tarinfo(layer.digest + "/", tarfile.DIRTYPE, 0o755))
                size = layer.path.stat().st_size
                with open(layer.path, "rb") as fh:
                    info = _tarinfo(f"{layer.digest}/layer.tar", tarfile.REGTYPE, 0o644, size)
                    tar.addfile(info, fh)
        for name, blob in configs.items():
            tar.addfile(_tarinfo(name, tarfile.REGTYPE, 0o644, len(blob)), io.BytesIO(blob))
        data = json.dumps(manifest).encode()
        tar.addfile(_tarinfo("manifest.json", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
