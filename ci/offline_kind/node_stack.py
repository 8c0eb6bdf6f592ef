"""Phase: what a kind node runs beside Kubernetes, built from Go modules as kind's base image
builds it: containerd, runc, crictl and the CNI plugins at the versions kind pins, and the etcd and
CoreDNS that kubeadm asks for (their tags read from `kubeadm config images list`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import gomod
from .kubernetes import image_name, image_tag
from .node_image import STACK_PATHS
from .phases import Context, Phase
from .proc import PhaseError, Runner

# kind v0.33.0's images/base/Dockerfile: what its published node image runs.
CONTAINERD = "v2.3.4"
RUNC = "v1.4.3"
CRICTL = "v1.36.0"
CNI_PLUGINS = "v1.9.1"
# containerd's optional snapshotters, which kind leaves out too (its BUILDTAGS).
CONTAINERD_TAGS = ("no_aufs", "no_zfs", "no_btrfs", "no_devmapper")
# What the node image installs from here: the node's programs, and the etcd and CoreDNS images'.
NEEDED = frozenset(STACK_PATHS) | {"etcd", "coredns"}


@dataclass(frozen=True)
class Program:
    """One Go module's binaries: the packages to build from it, and how (a wrapper module
    replaces the module's local siblings with `siblings`' release)."""

    module: str
    version: str
    packages: tuple[str, ...]
    ldflags: str = ""
    cgo: bool = False
    tags: tuple[str, ...] = ()
    siblings: str | None = None  # the release of the siblings, for a module that has some
    rename: tuple[tuple[str, str], ...] = ()  # binary as go names it -> as the node needs it


def module_version(tag: str) -> str:
    """An image tag as kubeadm lists it -> the module version: 3.7.0-0 -> v3.7.0, v1.14.6."""
    return "v" + tag.lstrip("v").split("-", 1)[0]


def programs(images: list[str]) -> list[Program]:
    """Every program of the node, etcd's and CoreDNS's versions from kubeadm's image list."""
    tags = {image_name(ref): image_tag(ref) for ref in images}
    missing = {"etcd", "coredns"} - tags.keys()
    if missing:
        raise ValueError(f"kubeadm's image list names no {sorted(missing)}: {images}")
    etcd, coredns = module_version(tags["etcd"]), module_version(tags["coredns"])
    containerd = "github.com/containerd/containerd/v2"
    cni = "github.com/containernetworking/plugins/plugins"
    return [
        Program(
            containerd,
            CONTAINERD,
            tuple(
                f"{containerd}/cmd/{c}" for c in ("containerd", "ctr", "containerd-shim-runc-v2")
            ),
            f"-X {containerd}/version.Version={CONTAINERD} "
            f"-X {containerd}/version.Package=github.com/containerd/containerd",
            tags=CONTAINERD_TAGS,
        ),
        # runc's nsenter is C, and seccomp filters come from libseccomp: cgo, as runc's Makefile.
        Program(
            "github.com/opencontainers/runc",
            RUNC,
            ("github.com/opencontainers/runc",),
            cgo=True,
            tags=("seccomp", "urfave_cli_no_docs"),
        ),
        Program(
            "sigs.k8s.io/cri-tools",
            CRICTL,
            ("sigs.k8s.io/cri-tools/cmd/crictl",),
            f"-X sigs.k8s.io/cri-tools/pkg/version.Version={CRICTL}",
        ),
        Program(
            "github.com/containernetworking/plugins",
            CNI_PLUGINS,
            tuple(
                f"{cni}/{p}"
                for p in ("ipam/host-local", "main/loopback", "main/ptp", "meta/portmap")
            ),
        ),
        Program(
            "go.etcd.io/etcd/server/v3",
            etcd,
            ("go.etcd.io/etcd/server/v3",),
            siblings=etcd,
            rename=(("server", "etcd"),),
        ),
        Program("github.com/coredns/coredns", coredns, ("github.com/coredns/coredns",)),
    ]


class NodeStackPhase(Phase):
    name = "node-stack"
    what = (
        f"containerd {CONTAINERD}, runc {RUNC}, crictl {CRICTL}, CNI plugins {CNI_PLUGINS}, "
        "etcd and CoreDNS from their Go modules"
    )
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        if "kubernetes" not in ctx.outputs:
            raise PhaseError(self.name, "the kubernetes phase comes first (its image list)")
        try:
            wanted = programs(ctx.outputs["kubernetes"]["images"])
        except ValueError as error:
            raise PhaseError(self.name, str(error)) from None
        env = gomod.go_env(ctx)
        return {
            "go": gomod.check_go(run, env),
            # Every field: a tag, a flag or a package changed must rebuild.
            "programs": [dataclasses.asdict(p) for p in wanted],
            "installed": sorted(STACK_PATHS),
            # runc links the host's libseccomp and libc: the node's rootfs must match them.
            "libseccomp": run.out(["pkg-config", "--modversion", "libseccomp"]).strip(),
            "cc": run.out(["gcc", "-dumpfullversion"]).strip(),
        }

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return all(os.access(Path(path), os.X_OK) for path in outputs.get("binaries", {}).values())

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        env = gomod.go_env(ctx)
        bin_dir = work / "bin"
        built = {}
        for program in programs(ctx.outputs["kubernetes"]["images"]):
            run.note(f"building {program.module} {program.version}")
            module = work / "modules" / program.module.replace("/", "_")
            gomod.wrapper(
                run, env, module, program.module, program.version, program.packages,
                program.siblings or program.version,
            )  # fmt: skip
            out = work / "out"
            gomod.build(
                run, env, program.packages, out, cwd=module, cgo=program.cgo, tags=program.tags,
                ldflags=f"-s -w {program.ldflags}".strip(),
            )  # fmt: skip
            renamed = dict(program.rename)
            for produced in sorted(out.iterdir()):
                name = renamed.get(produced.name, produced.name)
                bin_dir.mkdir(exist_ok=True)
                os.rename(produced, bin_dir / name)
                built[name] = str(final / "bin" / name)
        missing = NEEDED - built.keys()
        if missing:
            raise PhaseError(self.name, f"not built: {sorted(missing)} (built: {sorted(built)})")
        for command in (["containerd", "--version"], ["runc", "--version"], ["etcd", "--version"]):
            run.run([bin_dir / command[0], *command[1:]])
        return {"binaries": built}
