"""bookworm root file systems with debootstrap (no image registry to start FROM)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import apt, fsutil
from .phases import Context
from .proc import Runner

SUITE = "bookworm"


def release_date(in_release: str) -> str:
    m = re.search(r"^Date:\s*(.+)$", in_release, re.M)
    return m.group(1).strip() if m else ""


def suite_date(suite: str = SUITE) -> str:
    """Date of the suite's Release file apt last fetched.

    debootstrap installs whatever the suite holds now, not only the packages we
    name, so the Release date stands in for the versions of everything else.
    """
    for f in sorted(apt.LISTS_DIR.glob(f"*_dists_{suite}_InRelease")):
        return release_date(f.read_text(errors="replace"))
    return ""


def inputs(ctx: Context, run: Runner, packages: list[str]) -> dict[str, Any]:
    return {
        "suite": SUITE,
        "suite_date": suite_date(),
        "debootstrap": apt.installed(run, ["debootstrap"]).get("debootstrap", ""),
        "packages": apt.versions(run, packages, SUITE),
    }


def debootstrap(ctx: Context, run: Runner, target: Path, packages: list[str]) -> None:
    uri, keyring = apt.find_mirror(apt.read_host_sources())
    # Shared .deb cache: the node image's two root file systems and the base
    # image overlap a lot, and a re-build after a recipe change is offline-fast.
    debs = ctx.cache / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    run.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            f"--keyring={keyring}",
            f"--cache-dir={debs}",
            SUITE,
            target,
            uri,
        ],
        timeout=1800,
    )
    # debootstrap leaves its bind mounts only on failure, but be sure.
    fsutil.unmount_all_under(target)


def tidy(rootfs: Path) -> None:
    """Drop what docker manages itself and what only wastes image space."""
    for rel in ["etc/resolv.conf", "etc/hostname"]:
        p = rootfs / rel
        if p.is_symlink() or p.exists():
            p.unlink()
    (rootfs / "etc/resolv.conf").write_text("")
    for rel in ["var/cache/apt/archives", "var/lib/apt/lists"]:
        d = rootfs / rel
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file() and p.name not in ("lock",):
                    p.unlink()
    for p in (rootfs / "var/cache/debconf").glob("*-old"):
        p.unlink()
    log = rootfs / "debootstrap"
    if log.exists():
        fsutil.safe_rmtree(log)


def pack(run: Runner, rootfs: Path, tarball: Path) -> None:
    run.run(["tar", "--numeric-owner", "-C", rootfs, "-cf", tarball, "."])
