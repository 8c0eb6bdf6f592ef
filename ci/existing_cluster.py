"""Existing-cluster mode on a real cluster, the path every user beyond kind takes.

`python -m ci.existing_cluster --python PYTHON` makes a kind cluster by hand (kind itself, not
kubeverify: to kubeverify it is a cluster the user already had), puts objects of the "user's"
own in it (a namespace with a Deployment, a ConfigMap and a Service; a Secret and a ConfigMap
in `default`; a ClusterRole), loads the echo example's image as a user's registry would hold
it, and takes a snapshot of every object the API lists. Then the echo example is verified on it
with `PYTHON -m kubeverify ... --kubeconfig` (PYTHON: the clean venv the wheel went into), and a
second snapshot is compared with the first: the same namespaces, the same objects (by uid), and
the user's own objects unchanged down to their resourceVersion. The comparison is printed and
written to the reports directory; the cluster is deleted at the end, as it was made here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "examples/echo/verify.toml"
IMAGE = "echo:example"  # the tag examples/echo/verify.toml names
NODE_PORT = 30081  # the echo Service's nodePort
SEEDED = {"seeded-by": "ci-existing-cluster"}
# Kinds that change by themselves (heartbeats, leader election, the record of what happened):
# compared by identity only where they last, not at all where they are made anew.
NOT_COMPARED = {"Event", "Lease"}
CREATE_TIMEOUT = 600
RUN_TIMEOUT = 1200
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[existing-cluster {time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def run(command: list[str], **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return done.stdout


def tools(toolchain_env: str | None) -> dict[str, str]:
    """kind, kubectl and the node image: the offline toolchain's where it was built, else
    PATH's and kind's own default."""
    if toolchain_env and Path(toolchain_env).is_file():
        env = json.loads(Path(toolchain_env).read_text())
        return {"kind": env["kind"], "kubectl": env["kubectl"], "node_image": env["node_image"]}
    return {"kind": shutil.which("kind") or "kind", "kubectl": shutil.which("kubectl") or "kubectl",
            "node_image": ""}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed_objects() -> list[dict]:
    """What the user had in the cluster before kubeverify came."""
    meta = lambda name, namespace=None: {  # noqa: E731
        "name": name, "labels": dict(SEEDED), **({"namespace": namespace} if namespace else {})
    }  # fmt: skip
    tenant = "tenant-shop"
    labels = {"app": "shop"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(tenant)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("shop-settings", tenant),
         "data": {"currency": "EUR"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("shop", tenant),
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "shop", "image": IMAGE,
                                                        "imagePullPolicy": "IfNotPresent"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("shop", tenant),
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("team-settings", "default"),
         "data": {"owner": "platform"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("team-token", "default"),
         "stringData": {"token": "not-a-real-one"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": meta("shop-reader"),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
    ]  # fmt: skip


def snapshot(kubectl: list[str]) -> dict:
    """Every namespace, every object the API lists (by kind, namespace, name and uid), and the
    user's own objects whole, but for what the API itself keeps on them (managed fields)."""
    kinds = run([*kubectl, "api-resources", "--verbs=list", "-o", "name"]).split()
    objects, seeded = set(), {}
    for kind in kinds:
        listed = json.loads(run([*kubectl, "get", kind, "--all-namespaces", "-o", "json"]))
        for item in listed.get("items", []):
            meta = item["metadata"]
            if item.get("kind") in NOT_COMPARED:
                continue
            key = (item.get("kind"), meta.get("namespace", ""), meta["name"])
            objects.add((*key, meta.get("uid")))
            if meta.get("labels", {}).get("seeded-by") == SEEDED["seeded-by"]:
                meta.pop("managedFields", None)
                item.pop("status", None)  # the Deployment's status moves with its pods
                seeded["/".join(key)] = item
    namespaces = sorted(
        (item["metadata"]["name"], item["metadata"]["uid"])
        for item in json.loads(run([*kubectl, "get", "namespaces", "-o", "json"]))["items"]
    )
    return {"namespaces": namespaces, "objects": objects, "seeded": seeded}


def compare(before: dict, after: dict) -> dict:
    return {
        "namespaces_before": [name for name, _ in before["namespaces"]],
        "namespaces_after": [name for name, _ in after["namespaces"]],
        "objects_before": len(before["objects"]),
        "objects_after": len(after["objects"]),
        "objects_gone": sorted(map(list, before["objects"] - after["objects"])),
        "objects_new": sorted(map(list, after["objects"] - before["objects"])),
        "seeded_objects": sorted(before["seeded"]),
        "seeded_changed": sorted(
            key for key in before["seeded"] if before["seeded"][key] != after["seeded"].get(key)
        ),
    }


def verify(python: str, kubeconfig: Path, port: int, reports: Path, workdir: Path) -> int:
    """The echo example, from the clean venv, on the cluster as an existing one."""
    command = [
        python, "-m", "kubeverify", str(TARGET), "--kubeconfig", str(kubeconfig),
        "--image", IMAGE, "--base-url", f"http://127.0.0.1:{port}",
        "--reports-dir", str(reports), "-p", "no:cacheprovider",
    ]  # fmt: skip
    say(f"verifying: {' '.join(command)}")
    return subprocess.run(command, cwd=workdir, timeout=RUN_TIMEOUT, check=False).returncode


def cgroup_v1() -> bool:
    said = subprocess.run(["docker", "info", "--format", "{{.CgroupVersion}}"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return said.stdout.strip() == "1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ci.existing_cluster", description=__doc__)
    parser.add_argument("--python", required=True, help="the python whose kubeverify to run")
    parser.add_argument("--toolchain-env", default=None, help="the offline toolchain's env file")
    parser.add_argument("--reports-dir", default="reports/echo/existing")
    args = parser.parse_args(argv)
    found = tools(args.toolchain_env)
    name = f"kv-existing-{uuid.uuid4().hex[:6]}"
    reports = Path(args.reports_dir).resolve()
    network_existed = subprocess.run(["docker", "network", "inspect", "kind"],
                                     capture_output=True, check=False).returncode == 0  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kv-existing-") as tmp:
        workdir = Path(tmp)
        kubeconfig = workdir / "kubeconfig"
        kubectl = [found["kubectl"], "--kubeconfig", str(kubeconfig)]
        port = free_port()
        config = {
            "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
            "nodes": [{"role": "control-plane", "extraPortMappings": [
                {"containerPort": NODE_PORT, "hostPort": port, "listenAddress": "127.0.0.1"}]},
                {"role": "worker"}, {"role": "worker"}],
        }  # fmt: skip
        if cgroup_v1():
            # What a user who makes a cluster by hand on such a host writes, as the README says.
            config["kubeadmConfigPatches"] = [
                "kind: KubeletConfiguration\nfailCgroupV1: false\ncgroupDriver: cgroupfs\n"
            ]
            config["containerdConfigPatches"] = [
                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
                "  SystemdCgroup = false\n"
            ]
        (workdir / "kind.yaml").write_text(yaml.safe_dump(config))
        create = [found["kind"], "create", "cluster", "--name", name, "--config",
                  str(workdir / "kind.yaml"), "--kubeconfig", str(kubeconfig)]  # fmt: skip
        if found["node_image"]:
            create += ["--image", found["node_image"]]
        created = False
        try:
            say(f"creating kind cluster {name} by hand (127.0.0.1:{port} -> node port "
                f"{NODE_PORT})")  # fmt: skip
            created = True  # from here, what kind made is this run's to delete
            run(create, timeout=CREATE_TIMEOUT)
            run([*kubectl, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"])
            say(f"building and loading {IMAGE}, as the user's registry would hold it")
            build = [args.python, "-m", "kubeverify.providers.kind.image", str(TARGET)]
            if args.toolchain_env:
                build += ["--toolchain-env", args.toolchain_env]
            run(build)
            run([found["kind"], "load", "docker-image", IMAGE, "--name", name])
            run([*kubectl, "apply", "-f", "-"], input=yaml.safe_dump_all(seed_objects()))
            run([*kubectl, "-n", "tenant-shop", "rollout", "status", "deployment/shop",
                 "--timeout=120s"])  # fmt: skip
            before = snapshot(kubectl)
            say(f"before: {len(before['namespaces'])} namespaces, {len(before['objects'])} "
                f"objects, {len(before['seeded'])} of them the user's own")  # fmt: skip
            code = verify(args.python, kubeconfig, port, reports, workdir)
            after = snapshot(kubectl)
            result = compare(before, after)
            reports.mkdir(parents=True, exist_ok=True)
            (reports / "cluster-before-after.json").write_text(json.dumps(result, indent=2))
            say(f"kubeverify exited {code}; the cluster before and after: "
                f"{json.dumps(result, indent=2)}")  # fmt: skip
            unchanged = (
                result["namespaces_before"] == result["namespaces_after"]
                and not result["objects_gone"]
                and not result["objects_new"]
                and not result["seeded_changed"]
            )
            say("the cluster is as it was before the run" if unchanged
                else "the cluster is NOT as it was before the run")  # fmt: skip
            return 0 if code == 0 and unchanged else 1
        finally:
            if created:
                say(f"deleting kind cluster {name}, made here")
                subprocess.run([found["kind"], "delete", "cluster", "--name", name],
                               capture_output=True, check=False)  # fmt: skip
                if not network_existed:
                    subprocess.run(["docker", "network", "rm", "kind"], capture_output=True,
                                   check=False)  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
