"""Locust inside the cluster: one master and N workers against the ClusterIP Service.

For loads one machine cannot generate. The master runs headless with the same locustfile and
thresholds, writes Locust's CSVs, HTML report and the verdict into a volume that a second
container keeps readable after the run; they are copied back, and everything is deleted.

A master or a worker that ends badly (killed for memory, evicted, stopped at its deadline,
crashed, killed by a signal) is reported in words from its pod's status, with each pod's state:
the load test did not finish, whatever exit code the master had. A worker that ends badly ends
the wait at once, since the run no longer applies the load it was asked for.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from kubeverify import KubeTarget, Observation, cluster_state, termination_text, wait_until

MANIFESTS = Path(__file__).resolve().parent / "manifests"
IMAGE = "iris-locust:poc"  # the manifests' own tag, loaded into the nodes, never pulled
MASTER_POD = "locust-master"
WORKER_JOB = "locust-worker"
SELECTOR = "app=locust"
WORKERS_SELECTOR = "app=locust,role=worker"
CONTAINER = "locust"  # the master's and each worker's Locust container
VERDICT_REPORT = "locust-in-cluster_verdict.json"  # the master writes it once it has judged
# The wait outlasts the pods' own deadline by this much, so that a master stopped at it is
# reported as such rather than as a wait that timed out.
PAST_DEADLINE_S = 30
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


@dataclass(frozen=True)
class Ending:
    """How an in-cluster run ended: the master's exit code (None: its Locust never ended by
    itself), what ended badly, in words, and the Locust pods' states when it was seen."""

    code: int | None
    problems: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """The load test ran as asked and the master judged it (its verdict may fail)."""
        return self.code is not None and not self.problems

    @property
    def exit_code(self) -> int:
        """The master's exit code; never 0 when the load test did not finish."""
        return self.code if self.finished else (self.code or 1)

    def judged(self, verdict_written: bool) -> Ending:
        """The same, knowing whether the master wrote its verdict: a master that ended by
        itself without one (it gives up waiting for its workers, say) did not finish either."""
        if self.code is None or self.problems or verdict_written:
            return self
        why = f"the Locust master ended (exit code {self.code}) without a verdict: see its log"
        return replace(self, problems=(why,))


def run_in_cluster(
    target: KubeTarget, run: InClusterRun, reports: Path, say: Callable[[str], None] = print
) -> Ending:
    """How the run ended: the master's exit code is 0 when its verdict passed."""
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
        ending = wait_until(
            lambda: _ended(target),
            what="the Locust master to finish its run",
            timeout=run.deadline_s + PAST_DEADLINE_S,
            interval=2,
        ).value
        collect(target, reports, say)
        ending = ending.judged((reports / VERDICT_REPORT).is_file())
        if not ending.finished:
            say("[load] the load test did not finish: " + "; ".join(ending.problems))
            say("[load] the Locust pods when it was seen:\n" + "\n".join(ending.states))
        if ending.exit_code != 0:
            say(cluster_state(target, SELECTOR))
        return ending
    except BaseException:
        say(cluster_state(target, SELECTOR))
        raise
    finally:
        delete(target)


def collect(target: KubeTarget, reports: Path, say: Callable[[str], None]) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    for earlier in reports.glob("locust-in-cluster*"):  # an earlier run's are not this one's
        earlier.unlink()
    # A master that never started, or an evicted one, may have neither: say so, and go on
    # (kubectl's failures are RuntimeErrors).
    try:
        log = target.kubectl("logs", MASTER_POD, "-c", CONTAINER)
    except RuntimeError as error:
        say(f"[load] no log of the Locust master: {error}")
    else:
        (reports / "locust-in-cluster-master.log").write_text(log)
        say(log.rstrip())
    try:
        # Into reports/ itself: kubectl cp puts the directory's contents at the destination.
        target.kubectl("cp", "-c", "reports", f"{MASTER_POD}:/reports", str(reports))
    except RuntimeError as error:
        say(f"[load] the master's reports could not be copied: {error}")
    copied = sorted(path.name for path in reports.glob("locust-in-cluster*"))
    say(f"[load] reports copied to {reports}: {', '.join(copied) or 'none'}")


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


def _ended(target: KubeTarget) -> Observation:
    master = target.core.read_namespaced_pod(MASTER_POD, target.namespace)
    workers = target.core.list_namespaced_pod(
        target.namespace, label_selector=WORKERS_SELECTOR
    ).items
    return observe(master, workers)


def observe(master, workers: Sequence) -> Observation:
    """Whether the run is over, from the pods' status (kubernetes client V1Pods): done when
    the master's Locust has ended or its pod failed, or when a worker ended badly; the value
    is then an Ending."""
    status = _container(master, CONTAINER)
    terminated = status.state.terminated if status else None
    failed = master.status.phase == "Failed"
    problems = _stuck("the Locust master", master)
    if failed:
        problems.append(_pod_failure("the Locust master", master))
    elif terminated is not None and terminated.exit_code not in (0, 1):
        # 0 and 1 are its verdict's; anything else, Locust did not end as it ends a run.
        problems.append(_termination("the Locust master", master, terminated))
    for worker in sorted(workers, key=lambda pod: pod.metadata.name):
        problems += _worker_problems(worker)
    states = tuple(pod_state(pod) for pod in [master, *workers])
    if problems and not failed and terminated is None:
        problems.append(
            "the run was stopped there, its master still running: without that worker's users "
            "it no longer applied the load asked for"
        )
    if failed or terminated is not None or problems:
        code = terminated.exit_code if terminated is not None else None
        return Observation(True, "ended", Ending(code, tuple(problems), states))
    return Observation(False, "; ".join(states))


def _worker_problems(pod) -> list[str]:
    """What ended badly in a worker: its pod failed, or its Locust exited other than 0, now
    or before a restart (the Job restarts it in place)."""
    who = f"the Locust worker {pod.metadata.name}"
    if pod.status.phase == "Failed":
        return [_pod_failure(who, pod)]
    problems = _stuck(who, pod)
    status = _container(pod, CONTAINER)
    if status is None:
        return problems
    for terminated, when in ((status.last_state and status.last_state.terminated, "before"),
                             (status.state.terminated, "now")):  # fmt: skip
        if terminated is not None and terminated.exit_code != 0:
            problem = _termination(who, pod, terminated)
            if when == "before":
                restarts = status.restart_count or 0
                problem += f", and was restarted ({restarts} restart{'s' * (restarts != 1)})"
            problems.append(problem)
    return problems


def _stuck(who: str, pod) -> list[str]:
    """Containers of the pod stuck in a state they never leave: they will never run."""
    return [
        f"{who} cannot start its {status.name} container: {waiting.reason}: {waiting.message}"
        for status in pod.status.container_statuses or []
        if (waiting := status.state.waiting) is not None and waiting.reason in STUCK
    ]


def _pod_failure(who: str, pod) -> str:
    """A pod that failed as a whole: evicted, past its deadline, or otherwise."""
    reason, message = pod.status.reason, (pod.status.message or "").strip()
    if reason == "Evicted":
        return f"{who} was evicted" + (f": {message}" if message else "")
    if reason == "DeadlineExceeded":
        return f"{who} was stopped at its deadline ({pod.spec.active_deadline_seconds} s)"
    status = _container(pod, CONTAINER)
    if status is not None and status.state.terminated is not None:
        return _termination(who, pod, status.state.terminated)
    return f"{who}'s pod failed ({reason or 'no reason given'})" + (
        f": {message}" if message else ""
    )


def _termination(who: str, pod, terminated) -> str:
    """How a container that did not end well ended, in words."""
    code, reason = terminated.exit_code, terminated.reason
    if reason == "OOMKilled":
        limit = memory_limit(pod)
        if limit is None:
            return f"{who} was killed for memory (OOMKilled; no memory limit: the node ran short)"
        return f"{who} was killed for memory at its {limit} limit (OOMKilled)"
    number = terminated.signal or (code - 128 if code > 128 else None)
    if number:
        name = signal_name(number)
        return f"{who} was killed by {name} (exit code {code}{f', {reason}' if reason else ''})"
    return f"{who} ended with exit code {code}" + (f" ({reason})" if reason else "")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def memory_limit(pod, container: str = CONTAINER) -> str | None:
    """The memory limit of a pod's container, as its spec writes it (512Mi)."""
    for spec in pod.spec.containers:
        if spec.name == container:
            limits = (spec.resources.limits if spec.resources else None) or {}
            return limits.get("memory")
    return None


def _container(pod, name: str):
    return next((s for s in pod.status.container_statuses or [] if s.name == name), None)


def pod_state(pod) -> str:
    """One line: the pod's phase (and why it failed), each container's state and restarts."""
    phase = pod.status.phase or "Unknown"
    if pod.status.reason:
        phase += f" ({pod.status.reason})"
    containers = [
        f"{status.name} {_state(status)}" for status in pod.status.container_statuses or []
    ]
    return f"{pod.metadata.name}: {phase}" + "".join(f"; {c}" for c in containers)


def _state(status) -> str:
    state = status.state
    if state.running is not None:
        text = "running"
    elif state.terminated is not None:
        text = f"terminated ({termination_text(state.terminated)})"
    elif state.waiting is not None:
        text = f"waiting ({state.waiting.reason})"
    else:
        text = "unknown"
    if status.restart_count:
        text += f", {status.restart_count} restart{'s' * (status.restart_count != 1)}"
        last = status.last_state.terminated if status.last_state else None
        if last is not None:
            text += f", last ended ({termination_text(last)})"
    return text


def _none_left(target: KubeTarget) -> Observation:
    left = [pod.name for pod in target.pods(SELECTOR)]
    return Observation(not left, f"still there: {left}")


def _load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]
