"""Locust inside the cluster: one master and N workers against the ClusterIP Service.

For loads one machine cannot generate. The master runs headless with the same locustfile and
thresholds, writes Locust's CSVs, HTML report and the verdict into a volume that a second
container keeps readable after the run; they are copied back, and everything is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubeverify import KubeTarget, Observation, cluster_state, wait_until

MANIFESTS = Path(__file__).resolve().parent / "manifests"
IMAGE = "iris-locust:poc"  # the manifests' own tag, loaded into the nodes, never pulled
MASTER_POD = "locust-master"
WORKER_JOB = "locust-worker"
SELECTOR = "app=locust"
EXPECT_WORKERS_MAX_WAIT_S = 120
# Past the run and the wait for workers: the master's start-up, stop and report writing.
MARGIN_S = 90
# A container stuck in one of these states never runs; no point waiting out the deadline.
STUCK = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
}


@dataclass(frozen=True)
class InClusterRun:
    image: str
    workers: int
    users: int
    spawn_rate: float
    seconds: int
    locust_args: Sequence[str] = ()

    @property
    def deadline_s(self) -> int:
        return self.seconds + EXPECT_WORKERS_MAX_WAIT_S + MARGIN_S


def render(run: InClusterRun) -> tuple[list[dict], list[dict]]:
    """The objects of master.yaml and workers.yaml, set for this run."""
    master = _load("master.yaml")
    workers = _load("workers.yaml")
    for document in master + workers:
        if document["kind"] == "Pod":
            spec = document["spec"]
        elif document["kind"] == "Job":
            spec = document["spec"]["template"]["spec"]
            document["spec"]["parallelism"] = document["spec"]["completions"] = run.workers
            document["spec"]["activeDeadlineSeconds"] = run.deadline_s
        else:
            continue
        for container in spec["containers"]:
            container["image"] = run.image
        if document["kind"] == "Pod":
            spec["activeDeadlineSeconds"] = run.deadline_s
            spec["containers"][0]["args"] = [
                f"--users={run.users}",
                f"--spawn-rate={run.spawn_rate:g}",
                f"--run-time={run.seconds}s",
                f"--expect-workers={run.workers}",
                f"--expect-workers-max-wait={EXPECT_WORKERS_MAX_WAIT_S}",
                *run.locust_args,
            ]
    return master, workers


def run_in_cluster(
    target: KubeTarget, run: InClusterRun, reports: Path, say: Callable[[str], None] = print
) -> int:
    """Locust's exit code: 0 when the master's verdict passed."""
    master, workers = render(run)
    delete(target)  # what an interrupted earlier run may have left
    try:
        # The Service first: the workers find the master through the variables Kubernetes
        # injects into pods created after it.
        target.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(master))
        target.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(workers))
        say(
            f"[load] in-cluster: 1 master, {run.workers} workers, {run.users} users for "
            f"{run.seconds} s (deadline {run.deadline_s} s)"
        )
        code = wait_until(
            lambda: _master_ended(target),
            what="the Locust master to finish its run",
            timeout=run.deadline_s,
            interval=2,
        ).value
        collect(target, reports, say)
        if code != 0:
            say(cluster_state(target, SELECTOR))
        return code
    except BaseException:
        say(cluster_state(target, SELECTOR))
        raise
    finally:
        delete(target)


def collect(target: KubeTarget, reports: Path, say: Callable[[str], None]) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    log = target.kubectl("logs", MASTER_POD, "-c", "locust")
    (reports / "locust-in-cluster-master.log").write_text(log)
    say(log.rstrip())
    # Into reports/ itself: kubectl cp puts the directory's contents at the destination.
    target.kubectl("cp", "-c", "reports", f"{MASTER_POD}:/reports", str(reports))
    copied = sorted(path.name for path in reports.glob("locust-in-cluster*"))
    say(f"[load] reports copied to {reports}: {', '.join(copied)}")


def delete(target: KubeTarget, timeout: float = 90) -> None:
    for name in ("workers.yaml", "master.yaml"):
        target.kubectl("delete", "-f", str(MANIFESTS / name), "--ignore-not-found", "--wait=false")
    # The Job's pods go in the background; a next run must not meet them.
    wait_until(
        lambda: _none_left(target),
        what=f"Locust pods ({SELECTOR}) gone",
        timeout=timeout,
        interval=1,
    )


def _master_ended(target: KubeTarget) -> Observation:
    pod = target.core.read_namespaced_pod(MASTER_POD, target.namespace)
    statuses = {s.name: s for s in pod.status.container_statuses or []}
    master = statuses.get("locust")
    if pod.status.phase == "Failed" and (master is None or master.state.terminated is None):
        raise RuntimeError(f"{MASTER_POD} failed: {pod.status.reason}: {pod.status.message}")
    if master is None:
        return Observation(False, f"phase {pod.status.phase}, no container status yet")
    if master.state.terminated is not None:
        return Observation(True, "ended", master.state.terminated.exit_code)
    for status in statuses.values():
        waiting = status.state.waiting
        if waiting is not None and waiting.reason in STUCK:
            raise RuntimeError(f"{MASTER_POD}/{status.name}: {waiting.reason}: {waiting.message}")
    return Observation(False, f"phase {pod.status.phase}, master {_state(master)}")


def _state(status) -> str:
    state = status.state
    if state.running is not None:
        return "running"
    return f"waiting ({state.waiting.reason})" if state.waiting else "unknown"


def _none_left(target: KubeTarget) -> Observation:
    left = [pod.name for pod in target.pods(SELECTOR)]
    return Observation(not left, f"still there: {left}")


def _load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]
