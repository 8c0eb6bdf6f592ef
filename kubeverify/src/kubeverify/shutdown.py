"""How each removed pod shut down: from the deletion request to its containers' exit, against
its preStop hook and its grace period.

On deletion the kubelet runs the preStop hook, then sends SIGTERM to each container's PID 1,
and kills what still runs when the grace period ends (SIGKILL: exit code 137). A server that
exits on SIGTERM is gone a moment after its preStop hook; one whose PID 1 ignores the signal (a
shell that does not pass it on, a process with no handler: PID 1 gets no default action) lives
to the grace period, and every rollout, scale-down and drain waits for it.

The API's timestamps have whole seconds: the deletion request (deletion timestamp less the
grace period) and the exit (`finishedAt`) are each off by up to a second.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubeverify.kube import PodWatch, pre_stop_sleep
from kubeverify.verdict import Verdict

TIMESTAMP_SLACK = 2  # seconds: two whole-second timestamps differ by up to 2 s from the truth
SIGKILL_EXIT = 137  # 128 + 9, what a container killed at the end of its grace period exits with
WAY_OUT = (
    "make the server PID 1 or have PID 1 pass SIGTERM on: an exec-form CMD or `exec server` "
    "at the end of the entrypoint script, or an init such as tini (`tini --`); a handler that "
    "stops accepting and exits"
)


@dataclass(frozen=True)
class Shutdown:
    """One removed pod's shutdown. `seconds`: from the deletion request to the last container's
    exit (None when no exit was seen: the pod vanished with no terminated status)."""

    pod: str
    grace: float
    pre_stop: float | None
    seconds: float | None
    exit_code: int | None

    @property
    def ignored_sigterm(self) -> bool:
        """Killed when its grace period ran out, having run to it: SIGTERM did not stop it."""
        return (
            self.exit_code == SIGKILL_EXIT
            and self.seconds is not None
            and self.seconds >= self.grace - TIMESTAMP_SLACK
        )

    @property
    def after_sigterm(self) -> float | None:
        """Seconds from SIGTERM (the end of the preStop sleep) to the exit."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (self.pre_stop or 0))

    def line(self) -> str:
        pre_stop = f"preStop sleep {self.pre_stop:g} s" if self.pre_stop else "no preStop sleep"
        if self.seconds is None:
            return f"{self.pod}: deleted (grace {self.grace:g} s, {pre_stop}); no exit seen"
        said = (
            "ignored SIGTERM: killed when its grace period ran out"
            if self.ignored_sigterm
            else f"exited {self.after_sigterm:g} s after SIGTERM"
        )
        return (
            f"{self.pod}: gone {self.seconds:g} s after its deletion (grace {self.grace:g} s, "
            f"{pre_stop}; exit code {self.exit_code}): {said}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "grace": self.grace,
            "pre_stop": self.pre_stop,
            "seconds": self.seconds,
            "after_sigterm": self.after_sigterm,
            "exit_code": self.exit_code,
            "ignored_sigterm": self.ignored_sigterm,
        }


def of_pod(deleting: Mapping[str, Any], last: Mapping[str, Any] | None = None) -> Shutdown | None:
    """The shutdown a pod's states tell (the API's JSON, camelCase): the deletion request as the
    first state that shows it gave it (the kubelet's final deletion shortens the grace period
    to 0 and moves the deletion timestamp, so a later state would misdate it), the exits as the
    last state gave them. None when the pod was not deleted."""
    meta, spec = deleting["metadata"], deleting.get("spec") or {}
    deleted_by = meta.get("deletionTimestamp")
    if not deleted_by:
        return None
    grace = float(
        meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionGracePeriodSeconds") is not None
        else spec.get("terminationGracePeriodSeconds") or 0
    )
    requested = _time(deleted_by).timestamp() - grace
    status = (last or deleting).get("status") or {}
    exits = [
        (_time(terminated["finishedAt"]).timestamp(), terminated.get("exitCode"))
        for container in status.get("containerStatuses") or []
        if (terminated := (container.get("state") or {}).get("terminated"))
        and terminated.get("finishedAt")
    ]
    last_exit = max(exits, default=None)
    return Shutdown(
        pod=meta["name"],
        grace=grace,
        pre_stop=pre_stop_sleep(spec),
        seconds=max(0.0, last_exit[0] - requested) if last_exit else None,
        exit_code=last_exit[1] if last_exit else None,
    )


def _exited(pod: Mapping[str, Any]) -> bool:
    return any(
        (container.get("state") or {}).get("terminated")
        for container in (pod.get("status") or {}).get("containerStatuses") or []
    )


def _all_exited(pod: Mapping[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all((c.get("state") or {}).get("terminated") for c in statuses)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def verdict(shutdowns: list[Shutdown], *, enforced: bool, control: bool = False) -> Verdict:
    """Every removed pod exits on SIGTERM. A measurement, not a statistic: each pod's exit is
    seen, so no error rate is claimed. A pod that ran to its grace period is a finding; it
    fails the run only where the target asks (`enforced`)."""
    ignored = [s for s in shutdowns if s.ignored_sigterm]
    seen = [s.seconds for s in shutdowns if s.seconds is not None]
    if ignored:
        summary = (
            f"{len(ignored)} of {len(shutdowns)} removed pods ignored SIGTERM and were killed "
            f"when their grace period ran out ({', '.join(s.pod for s in ignored)}): every "
            f"rollout, scale-down and drain waits {max(s.grace for s in ignored):g} s for such "
            f"a pod; the way out: {WAY_OUT}"
        )
    elif seen:
        summary = (
            f"{len(shutdowns)} removed pods were gone {min(seen):g} to {max(seen):g} s after "
            "their deletion, each exiting on SIGTERM before its grace period ran out"
        )
    else:
        summary = f"{len(shutdowns)} removed pods, no exit seen"
    return Verdict(
        "removed pods exit on SIGTERM",
        not ignored,
        summary,
        figures={"pods": [s.to_json() for s in shutdowns], "enforced": enforced},
        details=tuple(s.line() for s in shutdowns),
        advisory=not enforced,
        control=control,
    )


class ShutdownWatch(PodWatch):
    """Watches the pods a selector selects and keeps the shutdown of each one deleted while
    it watches (the last state the API showed of it, which holds its containers' exits)."""

    replays_start = False  # a pod already going when it starts (a kept cluster's) is not one

    def __init__(self, kube, selector: str) -> None:
        super().__init__(kube, selector)
        self._lock = threading.Lock()
        self._deleting: dict[str, dict] = {}  # the first state showing the deletion
        self._last: dict[str, dict] = {}  # the last state with a container's exit in it
        self._ended: dict[str, Shutdown] = {}
        self._taken: set[str] = set()

    def _seen(self, kind: str, pod: dict) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            if pod["metadata"].get("deletionTimestamp"):
                self._deleting.setdefault(name, pod)
            if _exited(pod):
                self._last[name] = pod
            if name in self._deleting and _all_exited(pod):
                # Gone in all but name: the kubelet removes it from the API seconds later.
                self._ended[name] = of_pod(self._deleting[name], pod)
            if kind == "DELETED":
                deleting = self._deleting.pop(name, pod)
                ended = of_pod(deleting, self._last.pop(name, pod))
                if ended is not None:
                    self._ended[name] = ended

    def ended(self) -> list[Shutdown]:
        """Every shutdown seen so far, in the order the pods went."""
        self._raise_if_stopped()
        with self._lock:
            return list(self._ended.values())

    def take(self) -> list[Shutdown]:
        """The shutdowns seen since the last `take`."""
        fresh = [s for s in self.ended() if s.pod not in self._taken]
        self._taken.update(s.pod for s in fresh)
        return fresh
