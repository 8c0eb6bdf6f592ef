"""Phase 5: Kubernetes 1.20.2 binaries built from bookworm's source package.

Only Debian 12's source package `kubernetes` (1.20.2, with vendor/) has the
server binaries. It is built the way its debian/rules does, with Debian 12's
Go 1.19 -- plus one fix: the vendored reflect2 1.0.1 makes kubeadm panic
under Go >= 1.18, so it is swapped for Debian's reflect2 1.0.2.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import apt, fsutil
from .phases import Context, Phase
from .proc import PhaseError, Runner

VERSION = "v1.20.2"
COMMANDS = [
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
]
TOOLCHAIN = ["golang-go", "golang-github-modern-go-reflect2-dev", "gcc", "libc6-dev"]
REFLECT2_SRC = Path("/usr/share/gocode/src/github.com/modern-go/reflect2")
REFLECT2_VENDOR = "vendor/github.com/modern-go/reflect2"
GO_BIN = "/usr/lib/go/bin"
GO_CACHE_IN_TREE = "_output/local/go/cache"
PAUSE_VERSION = "3.2"


def replace_reflect2(tree: Path) -> None:
    vendored = tree / REFLECT2_VENDOR
    shutil.rmtree(vendored)
    shutil.copytree(REFLECT2_SRC, vendored, symlinks=False)
    # A go.mod would turn the vendored copy into a separate module.
    for name in ("go.mod", "go.sum"):
        (vendored / name).unlink(missing_ok=True)


def parse_image_list(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and "/" in line and ":" in line and " " not in line.strip()
    ]


class KubernetesPhase(Phase):
    name = "kubernetes"
    # Measured cold on machines of this project's kind (2 cores): 3 min 56 s to 15 min.
    what = (
        f"Kubernetes {VERSION} binaries from bookworm's source package (the long phase: 4 to 15 "
        "min on 2 cores, cold)"
    )
    recipe = 2

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        toolchain = apt.installed(run, TOOLCHAIN)
        missing = set(TOOLCHAIN) - set(toolchain)
        if missing:
            raise PhaseError(self.name, f"build tools not installed: {sorted(missing)}")
        return {
            "source": apt.versions(run, ["kubernetes"], "bookworm", "Sources")["kubernetes"],
            "toolchain": toolchain,
            "commands": COMMANDS,
            "pause": PAUSE_VERSION,
        }

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        bins = outputs.get("bin", "")
        return all(os.access(Path(bins) / c, os.X_OK) for c in [*COMMANDS, "pause"])

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        build_dir = ctx.phase_dir(self.name) / "build"
        fsutil.safe_rmtree(build_dir)
        build_dir.mkdir(parents=True)
        source = ctx.inputs[self.name]["source"]
        run.note(f"fetching source package kubernetes {source}")
        tree = apt.fetch_source(run, "kubernetes", source, build_dir)
        replace_reflect2(tree)
        (build_dir / "home").mkdir()
        # Kubernetes' build sets its own GOPATH and GOCACHE under _output, so
        # the Go build cache is parked beside the tree between builds; with the
        # tree at a fixed path (it is trimmed into the compile flags) a rebuild
        # after a recipe or toolchain change is incremental.
        go_cache = tree / GO_CACHE_IN_TREE
        parked = ctx.phase_dir(self.name) / "gocache"
        if parked.is_dir():
            go_cache.parent.mkdir(parents=True, exist_ok=True)
            os.rename(parked, go_cache)
        # KUBE_STATIC_OVERRIDES: kubelet is the one command Kubernetes' build
        # links dynamically, in a separate `go install`; with CGO off (as in
        # debian/rules) it is static anyway, so build it with the others.
        env = {
            "HOME": str(build_dir / "home"),
            "CGO_ENABLED": "0",
            "KUBE_STATIC_OVERRIDES": "kubelet",
            "PATH": f"{GO_BIN}:{ctx.env['PATH']}",
            "GOFLAGS": "",
        }
        run.note(f"building {' '.join(COMMANDS)} (log {run.log_path})")
        try:
            run.run(
                ["make", "WHAT=" + " ".join(f"cmd/{c}" for c in COMMANDS)],
                cwd=tree,
                env=env,
                timeout=3600,
            )
        finally:
            if go_cache.is_dir() and not parked.exists():
                os.rename(go_cache, parked)
        bin_dir = work / "bin"
        bin_dir.mkdir()
        for command in COMMANDS:
            shutil.copy2(tree / "_output/bin" / command, bin_dir / command)
        run.run(
            [
                "gcc",
                "-Os",
                "-Wall",
                "-Werror",
                "-static",
                f"-DVERSION=v{PAUSE_VERSION}-iris-offline",
                "-o",
                bin_dir / "pause",
                tree / "build/pause/linux/pause.c",
            ]
        )
        fsutil.safe_rmtree(build_dir)

        got = run.out([bin_dir / "kubeadm", "version", "-o", "short"]).strip()
        if got != VERSION:
            raise PhaseError(self.name, f"built kubeadm reports {got!r}, expected {VERSION}")
        images = parse_image_list(
            run.out(
                [bin_dir / "kubeadm", "config", "images", "list", "--kubernetes-version", VERSION]
            )
        )
        if not images:
            raise PhaseError(self.name, "kubeadm config images list printed no images")
        return {
            "bin": str(final / "bin"),
            "kubectl": str(final / "bin/kubectl"),
            "version": VERSION,
            "images": images,
        }
