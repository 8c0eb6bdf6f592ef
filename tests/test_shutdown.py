"""Shutdown timings from the pod states the API shows: the deletion request, the exit, the rule
that names a pod that ignored SIGTERM, and the watch's bookkeeping over a pod's last events (as
the API sends them, no cluster)."""

from __future__ import annotations

import pytest

from kubeverify import shutdown
from kubeverify.shutdown import Shutdown, ShutdownWatch, of_pod


def pod_state(
    name="web-1",
    *,
    deleted_at=None,
    grace=30,
    exited_at=None,
    exit_code=0,
    pre_stop=("sleep", "5"),
):
    """A pod as the API's JSON gives it. `deleted_at` is when the deletion was asked for (the
    API shows deletion timestamp = asked + grace); times are seconds past 12:00:00."""
    container = {"name": "app", "image": "web"}
    if pre_stop:
        container["lifecycle"] = {"preStop": {"exec": {"command": list(pre_stop)}}}
    meta = {"name": name, "resourceVersion": "1"}
    if deleted_at is not None:
        meta["deletionTimestamp"] = _at(deleted_at + grace)
        meta["deletionGracePeriodSeconds"] = grace
    state = {"running": {"startedAt": _at(0)}}
    if exited_at is not None:
        state = {"terminated": {"exitCode": exit_code, "finishedAt": _at(exited_at)}}
    return {
        "metadata": meta,
        "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]},
        "status": {"containerStatuses": [{"name": "app", "state": state}]},
    }


def _at(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"2026-12-06T12:{minutes:02d}:{seconds:02d}Z"


def test_a_pod_that_exits_on_sigterm_is_timed_from_its_deletion_to_its_exit():
    ended = of_pod(pod_state(deleted_at=10, exited_at=16, exit_code=0))
    assert ended == Shutdown("web-1", grace=30, pre_stop=5, seconds=6, exit_code=0)
    assert not ended.ignored_sigterm
    assert ended.after_sigterm == 1
    assert "exited 1 s after SIGTERM" in ended.line()


def test_a_pod_killed_when_its_grace_period_ran_out_ignored_sigterm():
    ended = of_pod(pod_state(deleted_at=10, exited_at=40, exit_code=137))
    assert ended.ignored_sigterm
    assert "ignored SIGTERM" in ended.line()


@pytest.mark.parametrize(
    ("exited_at", "exit_code", "ignored"),
    [
        (38, 137, True),  # whole-second timestamps: 2 s short of the grace period still counts
        (37, 137, False),  # killed well before its grace period ran out: not by the kubelet's clock
        (40, 143, False),  # died of SIGTERM's default action, late: it did not ignore it
        (40, 0, False),  # exited cleanly just in time
    ],
)
def test_the_rule_needs_both_the_kill_and_the_full_grace_period(exited_at, exit_code, ignored):
    assert (
        of_pod(pod_state(deleted_at=10, exited_at=exited_at, exit_code=exit_code)).ignored_sigterm
        is ignored
    )


def test_a_pod_not_deleted_has_no_shutdown_and_one_without_an_exit_has_no_time():
    assert of_pod(pod_state()) is None
    vanished = of_pod(pod_state(deleted_at=10))
    assert vanished.seconds is None
    assert not vanished.ignored_sigterm
    assert "no exit seen" in vanished.line()


def test_the_deletion_is_dated_by_the_first_state_that_shows_it():
    # The kubelet's final deletion sets the grace period to 0 and the timestamp to then: dated
    # by that state, a pod killed at 30 s would seem to have gone at once.
    asked = pod_state(deleted_at=10)
    final = pod_state(deleted_at=40, grace=0, exited_at=40, exit_code=137)
    assert of_pod(final).seconds == 0
    assert of_pod(asked, final).seconds == 30
    assert of_pod(asked, final).ignored_sigterm


def _watch_seeing(*events) -> ShutdownWatch:
    watch = ShutdownWatch(kube=None, selector="app=web")
    for kind, pod in events:
        watch._seen(kind, pod)
    return watch


def test_the_watch_keeps_each_deleted_pods_shutdown_once():
    watch = _watch_seeing(
        ("ADDED", pod_state("web-1")),
        ("ADDED", pod_state("web-2")),
        ("MODIFIED", pod_state("web-1", deleted_at=10)),
        ("MODIFIED", pod_state("web-1", deleted_at=10, exited_at=16)),
        # The final deletion: grace 0, and (in some versions) statuses no longer terminated.
        ("DELETED", pod_state("web-1", deleted_at=16, grace=0)),
    )
    assert [s.pod for s in watch.ended()] == ["web-1"]
    assert watch.ended()[0].seconds == 6
    assert [s.pod for s in watch.take()] == ["web-1"]
    assert watch.take() == []
    watch._seen("MODIFIED", pod_state("web-2", deleted_at=20))
    watch._seen("DELETED", pod_state("web-2", deleted_at=50, grace=0, exited_at=50, exit_code=137))
    assert [(s.pod, s.ignored_sigterm) for s in watch.take()] == [("web-2", True)]


def test_a_watch_that_died_says_so_rather_than_reporting_nothing():
    watch = _watch_seeing()
    watch.error = ConnectionError("the API server went away")
    with pytest.raises(RuntimeError, match="stopped: the API server went away"):
        watch.ended()


def test_the_verdict_is_a_finding_unless_the_target_enforces_it():
    sound = of_pod(pod_state(deleted_at=10, exited_at=16))
    deaf = of_pod(pod_state("web-2", deleted_at=10, exited_at=40, exit_code=137))

    passed = shutdown.verdict([sound], enforced=False)
    assert passed.passed
    assert passed.as_it_must
    assert "gone 6 to 6 s after their deletion" in passed.summary

    finding = shutdown.verdict([sound, deaf], enforced=False)
    assert not finding.passed
    assert finding.as_it_must
    assert finding.line().startswith("removed pods exit on SIGTERM: FINDING")
    assert "web-2" in finding.summary
    assert "tini" in finding.summary
    assert finding.figures["pods"][1]["ignored_sigterm"] is True

    enforced = shutdown.verdict([sound, deaf], enforced=True)
    assert not enforced.as_it_must
    assert enforced.line().startswith("removed pods exit on SIGTERM: FAILED")

    control = shutdown.verdict([deaf], enforced=True, control=True)
    assert control.as_it_must
    assert "as its negative control must" in control.line()


def test_an_unenforced_finding_survives_the_json_round_trip():
    from kubeverify.verdict import from_json

    finding = shutdown.verdict(
        [of_pod(pod_state(deleted_at=10, exited_at=40, exit_code=137))], enforced=False
    )
    assert from_json(finding.to_json()) == finding
