"""File-system helpers that are safe around chroots and interrupted runs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path


def unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(mountinfo: str, root: str) -> list[str]:
    """Mount points at or below root, deepest first (the order to unmount)."""
    root = root.rstrip("/") or "/"
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = unescape_mountinfo(fields[4])
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (p.count("/"), p), reverse=True)


def unmount_all_under(path: Path) -> None:
    # debootstrap bind-mounts the host's /dev, /proc and /sys into its target
    # when it runs inside a container (as it does here); an interrupted run
    # leaves them mounted, and a plain rm -rf would then delete host devices.
    with open("/proc/self/mountinfo") as fh:
        info = fh.read()
    for point in mounts_under(info, str(path.resolve())):
        subprocess.run(
            ["umount", "-l", point],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def safe_rmtree(path: Path) -> None:
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        unmount_all_under(path)
        # --one-file-system: belt and braces if an unmount above failed.
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)
    else:
        path.unlink()


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode(), mode)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: Path, paths: Iterable[Path] | None = None) -> str:
    """Content hash of files under root (names relative to root included)."""
    files = (
        sorted(paths)
        if paths is not None
        else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    )
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
