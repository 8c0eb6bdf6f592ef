"""Phase: Kubernetes binaries built from the k8s.io/kubernetes module, and the pause binary.

k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with paths in
its repository, so it builds from a wrapper module that takes each at its published release
(v0.37.2 for v1.37.2). The version the binaries report goes in by -ldflags, as Kubernetes' own
build stamps it (else kubeadm reads v0.0.0 and asks for images of that version).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import gomod
from .phases import Context, Phase
from .proc import PhaseError, Runner

# The newest Kubernetes minor served by the module proxy, at its newest patch.
VERSION = "v1.37.2"
MODULE = "k8s.io/kubernetes"
COMMANDS = [
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
]
# Where Kubernetes' build stamps its version (hack/lib/version.sh).
VERSION_PACKAGES = ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
PAUSE_SOURCE = "build/pause/linux/pause.c"
BUILD_DATE = "2026-12-07T00:00:00Z"  # fixed: the same inputs give the same binaries
COLD = "7 to 15 min"


def staging_version(version: str) -> str:
    """The staging modules' release for a Kubernetes release: v1.37.2 -> v0.37.2."""
    major, minor, patch = version.lstrip("v").split(".")
    if major != "1":
        raise ValueError(f"not a Kubernetes 1.x release: {version}")
    return f"v0.{minor}.{patch}"


def version_ldflags(version: str) -> str:
    """-X flags that make the binaries report `version` (gitVersion, gitMajor, gitMinor), as
    Kubernetes' release build does; the commit is unknown to a module zip."""
    major, minor, _ = version.lstrip("v").split(".")
    fields = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "0" * 40,
        "gitTreeState": "archive",
        "buildDate": BUILD_DATE,
    }
    return " ".join(
        f"-X {package}.{name}={value}"
        for package in VERSION_PACKAGES
        for name, value in fields.items()
    )


def parse_image_list(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and "/" in line and ":" in line and " " not in line.strip()
    ]


def image_name(ref: str) -> str:
    """registry.k8s.io/coredns/coredns:v1.14.6 -> coredns"""
    return ref.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def image_tag(ref: str) -> str:
    """registry.k8s.io/etcd:3.7.0-0 -> 3.7.0-0"""
    return ref.rsplit("/", 1)[-1].partition(":")[2]


class KubernetesPhase(Phase):
    name = "kubernetes"
    # Measured cold on machines of this project's kind (2 cores), modules downloaded.
    what = (
        f"Kubernetes {VERSION} binaries from the {MODULE} module (the long phase: {COLD} on 2 "
        "cores, cold)"
    )
    recipe = 3

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        env = gomod.go_env(ctx)
        return {
            "version": VERSION,
            "go": gomod.check_go(run, env),
            "commands": COMMANDS,
            "ldflags": version_ldflags(VERSION),
            "cc": run.out(["gcc", "-dumpfullversion"]).strip(),
        }

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        bins = outputs.get("bin", "")
        return all(os.access(Path(bins) / c, os.X_OK) for c in [*COMMANDS, "pause"])

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        env = gomod.go_env(ctx)
        module = work / "module"
        run.note(f"wrapper module for {MODULE} {VERSION} (staging at {staging_version(VERSION)})")
        packages = [f"{MODULE}/cmd/{c}" for c in COMMANDS]
        source = gomod.wrapper(
            run, env, module, MODULE, VERSION, packages, staging_version(VERSION)
        )
        bin_dir = work / "bin"
        run.note(f"building {' '.join(COMMANDS)} (log {run.log_path})")
        gomod.build(
            run, env, packages, bin_dir, cwd=module, ldflags=f"-s -w {version_ldflags(VERSION)}"
        )
        shutil.copy2(source / PAUSE_SOURCE, work / "pause.c")
        shutil.rmtree(module)

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
        # The pause container's one C file, as Kubernetes' build/pause Makefile compiles it,
        # stamped with the tag kubeadm asks for.
        pause = next((image_tag(ref) for ref in images if image_name(ref) == "pause"), None)
        if pause is None:
            raise PhaseError(self.name, f"kubeadm lists no pause image: {images}")
        run.run(
            [
                "gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{pause}-kubeverify",
                "-o", bin_dir / "pause", work / "pause.c",
            ]
        )  # fmt: skip
        (work / "pause.c").unlink()
        return {
            "bin": str(final / "bin"),
            "kubectl": str(final / "bin/kubectl"),
            "version": VERSION,
            "images": images,
        }
