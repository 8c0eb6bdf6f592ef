"""Phase: the kind node image, following kind's images/base and pkg/build/nodeimage.

images/base: a bookworm rootfs (its systemd 252 still boots on cgroup v1, which these machines
run; trixie's 257 needs a forcing flag and 258 refuses) with kind's files/ (entrypoint, units,
containerd config) from its module, the node stack built from Go modules, and the RUN steps of
its Dockerfile (node/customize-rootfs.sh). nodeimage: kubeadm/kubelet/kubectl in /usr/bin,
/kind/version, the containerd settings, the CNI and storage manifests, and the images kubeadm
needs imported into the node's containerd in a running build container, then `docker commit`.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from . import apt, engine, fsutil, gomod, images, kind_binary, kubernetes, rootfs
from .kubernetes import image_name
from .phases import Context, Phase, short
from .proc import PhaseError, Runner, warn

NODE_DIR = Path(__file__).parent / "node"
CUSTOMIZE = NODE_DIR / "customize-rootfs.sh"
CNI_MANIFEST = NODE_DIR / "default-cni.yaml"
STORAGE_MANIFEST = NODE_DIR / "default-storage.yaml"
CNI_SCRIPT = NODE_DIR / "cni" / "offline-cni.sh"

# kind's images/base package list, minus network storage clients (nfs, iscsi, e2fsprogs); what
# kind compiles itself comes from the node-stack phase.
NODE_PACKAGES = [
    "systemd",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "fuse-overlayfs",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
]
# Base of the kube-proxy, etcd and CNI images (one shared layer); kube-proxy's nftables mode
# runs `nft`.
TOOLS_PACKAGES = ["iptables", "nftables", "conntrack", "iproute2", "curl", "jq"]
STATIC_COMPONENTS = {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
NODE_BINARIES = ["kubeadm", "kubelet", "kubectl"]
# Where kind's base image puts what it builds (its units and config name these paths).
STACK_PATHS = {
    "containerd": "usr/local/bin",
    "ctr": "usr/local/bin",
    "containerd-shim-runc-v2": "usr/local/bin",
    "crictl": "usr/local/bin",
    "runc": "usr/local/sbin",
    "host-local": "opt/cni/bin",
    "loopback": "opt/cni/bin",
    "ptp": "opt/cni/bin",
    "portmap": "opt/cni/bin",
}
BUILD_LABEL = "iris-offline-kind.build=1"
COMMIT_CHANGES = [
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
    "CMD []",
    "ENV container=docker",
    "STOPSIGNAL SIGRTMIN+3",
]
CONTAINERD_READY_SECONDS = 60


# ---------------------------------------------------------------- pure logic


def plan_images(refs: list[str]) -> tuple[dict[str, str], list[str]]:
    """Which recipe builds each image kubeadm lists; the rest cannot be built here."""
    plan, skipped = {}, []
    for ref in refs:
        name = image_name(ref)
        if name in STATIC_COMPONENTS:
            plan[ref] = "static"
        elif name in ("kube-proxy", "etcd", "pause", "coredns"):
            plan[ref] = name
        else:
            skipped.append(ref)
    return plan, skipped


def configure_containerd(config: str, sandbox_image: str) -> str:
    """kind's containerd config, adjusted the way nodeimage does for this cluster.

    sandbox_image: the pause image kubeadm lists, imported into the node.
    restrict_oom_score_adj: without CAP_SYS_RESOURCE every pod sandbox fails
    with "can't get final child's PID from pipe: EOF".
    """
    edits = [
        (r'sandbox_image = "[^"\n]*"', f'sandbox_image = "{sandbox_image}"', 1),
        (r"restrict_oom_score_adj = false", "restrict_oom_score_adj = true", 1),
    ]
    for pattern, replacement, expected in edits:
        config, count = re.subn(pattern, replacement, config)
        if count != expected:
            raise ValueError(f"containerd config: expected {expected} x {pattern!r}, found {count}")
    return config


def manifest_images(manifest: str) -> list[str]:
    return re.findall(r"^\s*image:\s*[\"']?([^\s\"']+)", manifest, re.M)


def base_file_mode(rel: str) -> int:
    """Modes kind's Dockerfile gives its files (COPY --chmod)."""
    return 0o755 if rel.startswith(("usr/local/bin/", "kind/bin/")) else 0o644


# ---------------------------------------------------------------- phase


class NodeImagePhase(Phase):
    name = "node-image"
    what = f"kind node image for Kubernetes {kubernetes.VERSION} (rootfs, images, commit)"
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        if not {"kubernetes", "node-stack"} <= ctx.keys.keys():
            raise PhaseError(self.name, "the kubernetes and node-stack phases come first")
        return {
            "kind": kind_binary.VERSION,
            "node_rootfs": rootfs.inputs(ctx, run, NODE_PACKAGES),
            "tools_rootfs": apt.versions(run, TOOLS_PACKAGES, rootfs.SUITE),
            "kubernetes": ctx.keys["kubernetes"],
            "node_stack": ctx.keys["node-stack"],
            "project_files": fsutil.hash_tree(NODE_DIR),
        }

    def tag(self, ctx: Context) -> str:
        return f"iris-offline/kind-node:{kubernetes.VERSION}-{short(ctx.keys[self.name])}"

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return Path(outputs.get("image_tar", "")).is_file()

    def activate(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> str | None:
        docker = engine.docker_client(ctx)
        tag = outputs["tag"]
        if not engine.needs_restoring(run, docker, tag):
            return f"image {tag} present"
        run.note(f"{tag} missing from the engine; loading {outputs['image_tar']}")
        run.run([docker, "load", "-i", outputs["image_tar"]], timeout=1200)
        if not engine.image_present(run, docker, tag):
            raise PhaseError(self.name, f"{outputs['image_tar']} did not provide {tag}")
        return f"loaded {tag} from the cache"

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        k8s = ctx.outputs["kubernetes"]
        stack = ctx.outputs["node-stack"]["binaries"]
        docker = engine.docker_client(ctx)
        engine.remove_labelled_containers(run, docker, BUILD_LABEL)

        plan, skipped = plan_images(k8s["images"])
        for ref in skipped:
            warn(f"no recipe builds {ref}; the cluster runs without it")
        pause = next(ref for ref, recipe in plan.items() if recipe == "pause")

        # kind's own files/ for its base image, from the module `go install` built kind from.
        kind_source = gomod.module_dir(
            run, gomod.go_env(ctx), kind_binary.MODULE, kind_binary.VERSION
        )
        run.note("debootstrap of the node rootfs")
        node_root = work / "node-rootfs"
        rootfs.debootstrap(ctx, run, node_root, NODE_PACKAGES)
        self._install_base_files(kind_source / "images/base/files", node_root)
        self._install_stack(stack, node_root)
        self._customize(run, node_root)
        self._install_kubernetes(k8s, node_root, pause)
        rootfs.tidy(node_root)
        rootfs.pack(run, node_root, work / "node-rootfs.tar")
        fsutil.safe_rmtree(node_root)

        run.note("debootstrap of the tools rootfs (kube-proxy, etcd, CNI images)")
        tools_root = work / "tools-rootfs"
        rootfs.debootstrap(ctx, run, tools_root, TOOLS_PACKAGES)
        rootfs.tidy(tools_root)
        image_dir = work / "images"
        image_dir.mkdir()
        rootfs.pack(run, tools_root, image_dir / "tools-layer.tar")
        fsutil.safe_rmtree(tools_root)
        archived = self._write_images(plan, k8s, stack, image_dir)

        tag = self.tag(ctx)
        self._assemble(run, docker, work, image_dir, archived, tag)
        engine.prune_superseded(run, docker, tag)
        run.note(f"saving {tag} to the cache")
        run.run([docker, "save", "-o", work / "node-image.tar", tag], timeout=1200)
        for leftover in ("node-rootfs.tar", "images"):
            fsutil.safe_rmtree(work / leftover)
        return {
            "tag": tag,
            "image_tar": str(final / "node-image.tar"),
            "images": sorted(archived),
            "skipped": skipped,
        }

    # -- rootfs --------------------------------------------------------

    def _install_base_files(self, base_files: Path, root: Path) -> None:
        for src in sorted(base_files.rglob("*")):
            rel = src.relative_to(base_files).as_posix()
            dest = root / rel
            if src.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                os.chmod(dest, 0o755)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            os.chmod(dest, base_file_mode(rel))

    def _install_stack(self, stack: dict[str, str], root: Path) -> None:
        for name, where in STACK_PATHS.items():
            dest = root / where / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stack[name], dest)
            os.chmod(dest, 0o755)

    def _customize(self, run: Runner, root: Path) -> None:
        script = root / "tmp/customize-rootfs.sh"
        shutil.copyfile(CUSTOMIZE, script)
        try:
            run.run(["chroot", root, "/bin/bash", "/tmp/customize-rootfs.sh"])
        finally:
            script.unlink()
            fsutil.unmount_all_under(root)

    def _install_kubernetes(self, k8s: dict[str, Any], root: Path, pause: str) -> None:
        for binary in NODE_BINARIES:
            dest = root / "usr/bin" / binary
            shutil.copyfile(Path(k8s["bin"]) / binary, dest)
            os.chmod(dest, 0o755)
        (root / "kind/version").write_text(k8s["version"])
        config = root / "etc/containerd/config.toml"
        config.write_text(configure_containerd(config.read_text(), pause))
        manifests = root / "kind/manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        for src in (CNI_MANIFEST, STORAGE_MANIFEST):
            shutil.copyfile(src, manifests / src.name)
            os.chmod(manifests / src.name, 0o644)

    # -- images --------------------------------------------------------

    def _write_images(
        self, plan: dict[str, str], k8s: dict[str, Any], stack: dict[str, str], image_dir: Path
    ) -> list[str]:
        bins = Path(k8s["bin"])
        tools = images.layer_from_tar(image_dir / "tools-layer.tar")
        tmp_dir = images.Entry("tmp", None, 0o1777)
        built: list[images.Image] = []
        for n, (ref, recipe) in enumerate(sorted(plan.items())):
            layer_path = image_dir / f"layer-{n}.tar"
            name = image_name(ref)
            if recipe == "static":
                layer = images.layer_from_entries(
                    layer_path, [images.Entry(f"usr/local/bin/{name}", bins / name), tmp_dir]
                )
                built.append(images.Image(ref, [layer], entrypoint=[f"/usr/local/bin/{name}"]))
            elif recipe == "kube-proxy":
                layer = images.layer_from_entries(
                    layer_path, [images.Entry("usr/local/bin/kube-proxy", bins / "kube-proxy")]
                )
                built.append(
                    images.Image(ref, [tools, layer], entrypoint=["/usr/local/bin/kube-proxy"])
                )
            elif recipe == "etcd":
                layer = images.layer_from_entries(
                    layer_path,
                    [
                        images.Entry("usr/local/bin/etcd", Path(stack["etcd"])),
                        images.Entry("var/lib/etcd", None, 0o700),
                    ],
                )
                built.append(
                    images.Image(ref, [tools, layer], entrypoint=None, cmd=["/usr/local/bin/etcd"])
                )
            elif recipe == "pause":
                layer = images.layer_from_entries(
                    layer_path, [images.Entry("pause", bins / "pause")]
                )
                built.append(images.Image(ref, [layer], entrypoint=["/pause"]))
            elif recipe == "coredns":
                layer = images.layer_from_entries(
                    layer_path, [images.Entry("coredns", Path(stack["coredns"])), tmp_dir]
                )
                built.append(images.Image(ref, [layer], entrypoint=["/coredns"]))
        for ref in manifest_images(CNI_MANIFEST.read_text()):
            layer = images.layer_from_entries(
                image_dir / "layer-cni.tar", [images.Entry("usr/local/bin/offline-cni", CNI_SCRIPT)]
            )
            built.append(
                images.Image(ref, [tools, layer], entrypoint=["/usr/local/bin/offline-cni"])
            )
        images.write_archive(image_dir / "images.tar", built)
        for p in image_dir.glob("layer*.tar"):
            p.unlink()
        (image_dir / "tools-layer.tar").unlink()
        return [img.tag for img in built]

    # -- docker --------------------------------------------------------

    def _assemble(
        self, run: Runner, docker: str, work: Path, image_dir: Path, expected: list[str], tag: str
    ) -> None:
        build_tag = f"iris-offline/kind-node-build:{uuid.uuid4().hex[:12]}"
        container = f"iris-offline-node-build-{uuid.uuid4().hex[:12]}"
        import_cmd = [docker, "import"]
        for change in COMMIT_CHANGES:
            import_cmd += ["--change", change]
        run.note("importing the node rootfs and loading images into its containerd")
        try:
            run.run([*import_cmd, work / "node-rootfs.tar", build_tag], timeout=1200)
            run.run(
                [
                    docker,
                    "run",
                    "-d",
                    "--name",
                    container,
                    "--label",
                    BUILD_LABEL,
                    "--entrypoint",
                    "sleep",
                    "--security-opt",
                    "seccomp=unconfined",
                    "-v",
                    f"{image_dir}:/images:ro",
                    build_tag,
                    "infinity",
                ]
            )
            self._import_images(run, docker, container, expected)
            commit = [docker, "commit"]
            for change in COMMIT_CHANGES:
                commit += ["--change", change]
            run.run([*commit, container, tag], timeout=1200)
        finally:
            run.run([docker, "rm", "-f", "-v", container], check=False)
            run.run([docker, "rmi", build_tag], check=False)

    def _import_images(self, run: Runner, docker: str, container: str, expected: list[str]) -> None:
        def sh(script: str, **kw) -> str:
            return run.out([docker, "exec", container, "bash", "-c", script], **kw)

        sh("nohup containerd > /tmp/containerd.log 2>&1 & echo $! > /tmp/containerd.pid")
        # Poll with a deadline; ctr itself hangs while the socket is missing.
        sh(f"""deadline=$((SECONDS + {CONTAINERD_READY_SECONDS}))
            until [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1; do
              if [ $SECONDS -ge $deadline ]; then cat /tmp/containerd.log; exit 1; fi
              sleep 0.2
            done""")
        sh(
            "ctr --namespace=k8s.io images import --all-platforms --no-unpack /images/images.tar",
            timeout=1200,
        )
        listed = set(sh("ctr --namespace=k8s.io images list -q").split())
        missing = [ref for ref in expected if normalize_ref(ref) not in listed]
        if missing:
            raise PhaseError(
                self.name,
                f"images missing from the node's containerd: {missing}; it has: {sorted(listed)}",
            )
        # Wait until containerd has exited (its bolt database must be closed
        # before the commit). Nothing in this container reaps it, so "exited"
        # means a zombie, which kill -0 cannot tell apart from running.
        sh("""pid=$(cat /tmp/containerd.pid); kill "$pid"
            deadline=$((SECONDS + 30))
            state() { awk '{print $3}' "/proc/$pid/stat" 2>/dev/null; }
            while [ -n "$(state)" ] && [ "$(state)" != Z ]; do
              if [ $SECONDS -ge $deadline ]; then cat /tmp/containerd.log; exit 1; fi
              sleep 0.2
            done
            rm -f /tmp/containerd.pid /tmp/containerd.log""")


def normalize_ref(ref: str) -> str:
    """Image reference as containerd stores it (docker.io/library defaults)."""
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:
        name, tag = ref, "latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}:{tag}"
