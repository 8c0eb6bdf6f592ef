"""Every pod the checks removed exited on SIGTERM, and a pod that ignores it is seen to."""

from __future__ import annotations

import pytest

from kubeverify import shutdown
from kubeverify.shutdown import ShutdownWatch
from kubeverify.waiting import DeadlineExceeded, Observation, wait_until

CONTROL_GRACE = 3  # seconds: the control pod is killed this long after its deletion
CONTROL_LABEL = "kubeverify.io/control"
START_TIMEOUT = 60
EXIT_TIMEOUT = 60
CANNOT_START = ("CreateContainerError", "RunContainerError", "CrashLoopBackOff")


def _ended(watch: ShutdownWatch, pod: str) -> Observation:
    ended = {s.pod: s for s in watch.ended()}
    return Observation(pod in ended, f"shutdowns seen: {sorted(ended)}", ended.get(pod))


def _running(kube, pod: str) -> Observation:
    status = kube.core.read_namespaced_pod(pod, kube.namespace).status
    running = all(c.state.running for c in status.container_statuses or []) and bool(
        status.container_statuses
    )
    waiting = [c.state.waiting.reason for c in status.container_statuses or [] if c.state.waiting]
    return Observation(running, f"phase {status.phase}, waiting {waiting}", waiting)


def sigterm_ignoring_pod(name: str, image: str) -> dict:
    """A pod whose PID 1 is a shell running a child: the shell has no SIGTERM handler, so as
    PID 1 it gets no default action either, and nothing passes the signal to the child."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {CONTROL_LABEL: name}},
        "spec": {
            "terminationGracePeriodSeconds": CONTROL_GRACE,
            "containers": [
                {
                    "name": "ignores-sigterm",
                    "image": image,
                    "command": ["sh", "-c", "sleep 3600; true"],
                }
            ],
        },
    }


class Shutdown:
    """Every pod the checks removed exited on SIGTERM, within its grace period: the time from
    its deletion to its exit, against its preStop sleep and grace period. A pod that runs until
    it is killed is a finding (it fails the run where the target sets
    `shutdown.enforce_sigterm_exit`); a pod made to ignore SIGTERM is seen to."""

    def test_removed_pods_exit_on_sigterm(
        self, shutdowns, deployment, settled_pods, target, record, run
    ):
        ended = shutdowns.ended()
        if not ended:  # run on its own: no check removed a pod before, so remove one
            victim = settled_pods[0]
            deployment.delete_pod(victim)
            deployment.wait_settled(target.replicas)
            wait_until(
                lambda: _ended(shutdowns, victim), what=f"{victim}'s exit", timeout=EXIT_TIMEOUT
            )
            ended = shutdowns.ended()
        verdict = record(shutdown.verdict(ended, enforced=target.enforce_sigterm_exit))
        for line in verdict.details:
            run.timer.note(f"shutdown: {line}")
        assert verdict.as_it_must, verdict.explain()

    def test_a_pod_that_ignores_sigterm_is_seen_to(self, kube, image, record):
        name = "kubeverify-ignores-sigterm"
        watch = ShutdownWatch(kube, f"{CONTROL_LABEL}={name}")
        with watch.running():
            kube.core.create_namespaced_pod(kube.namespace, sigterm_ignoring_pod(name, image))
            try:
                try:
                    wait_until(
                        lambda: _running(kube, name), what=f"{name} running", timeout=START_TIMEOUT
                    )
                except DeadlineExceeded as error:
                    if any(reason in str(error) for reason in CANNOT_START):
                        pytest.skip(
                            f"the control runs `sh` from the target's image {image}: {error}"
                        )
                    raise
                kube.core.delete_namespaced_pod(name, kube.namespace)
                ended = wait_until(
                    lambda: _ended(watch, name), what=f"{name}'s exit", timeout=EXIT_TIMEOUT
                ).value
            finally:
                _delete_at_once(kube, name)
        verdict = record(shutdown.verdict([ended], enforced=True, control=True))
        assert not verdict.passed, f"a pod that ignores SIGTERM was not seen to: {verdict.line()}"


def _delete_at_once(kube, pod: str) -> None:
    """The control pod gone however the check ended (it has exited, or never ran as asked)."""
    from kubernetes.client.exceptions import ApiException

    try:
        kube.core.delete_namespaced_pod(pod, kube.namespace, grace_period_seconds=0)
    except ApiException as error:
        if error.status != 404:
            raise
