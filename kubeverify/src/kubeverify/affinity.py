"""Judging ClientIP affinity through a rollout from what several clients were answered: no
request failed, each client stayed on one pod while that pod lived (it moved only once its pod
had been deleted, and never back), and ended on one of the pods the rollout brought.

Under affinity, kube-proxy sends a client's every connection to the pod it first reached while
that pod is an endpoint: a sound Service never fails the rule (false alarms 0, up to clock
skew between the clients' nodes and this machine, within `SLACK`). Without affinity, a client
with r answers before the rollout, over p pods, keeps to one of them with chance p^-(r-1): the
power against a Service that picks a pod per connection is 1 less the product of those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

from kubeverify.clients import Answer
from kubeverify.verdict import ErrorRates, Verdict

SLACK = 1.0  # seconds: a deletion is seen by a watch here, a move by a client in the cluster


def runs(answers: Sequence[Answer]) -> list[tuple[str, float]]:
    """A client's successive pods: (pod, when it first answered), one per run of answers."""
    found: list[tuple[str, float]] = []
    for answer in sorted((a for a in answers if a.ok), key=lambda a: a.t):
        if not found or found[-1][0] != answer.pod:
            found.append((answer.pod, answer.t))
    return found


def problems(
    client: str,
    answers: Sequence[Answer],
    deleted: Mapping[str, float],
    new_pods: set[str],
    origin: float = 0.0,
) -> list[str]:
    """What breaks the rule in one client's answers (nothing: it held); times are told in
    seconds from `origin` (the rollout's start)."""
    found = []
    sequence = runs(answers)
    for (left, _), (reached, at) in pairwise(sequence):
        if left not in deleted or at < deleted[left] - SLACK:
            when = (
                f"deleted at {deleted[left] - origin:+.1f} s"
                if left in deleted
                else ("never deleted")
            )
            found.append(
                f"{client} left {left} for {reached} at {at - origin:+.1f} s while it lived "
                f"({when})"
            )
    seen = [pod for pod, _ in sequence]
    returned = sorted({pod for number, pod in enumerate(seen) if pod in seen[:number]})
    if returned:
        found.append(f"{client} came back to {returned} after leaving")
    if sequence and sequence[-1][0] not in new_pods:
        found.append(f"{client} ended on {sequence[-1][0]}, not on a pod the rollout brought")
    if not sequence:
        found.append(f"{client} was never answered")
    return found


def power(answers: Mapping[str, Sequence[Answer]], started: float, pods: int) -> float:
    """The chance a Service with no affinity fails the rule on these clients' answers before
    the rollout began (each would have to keep to one of `pods` by chance)."""
    kept = sum(
        (sum(a.ok and a.t < started for a in client) - 1) * math.log(pods)
        for client in answers.values()
        if any(a.ok and a.t < started for a in client)
    )
    return 1 - math.exp(-kept)


def verdict(
    answers: Mapping[str, Sequence[Answer]],
    deleted: Mapping[str, float],
    new_pods: set[str],
    *,
    started: float,
    ended: float,
    pods: int,
    label: str = "ClientIP affinity holds through a rollout",
    control: bool = False,
) -> Verdict:
    """The verdict on the clients' answers: `started` and `ended` (wall clock) bound the
    rollout; `deleted`: when each deleted pod's deletion was seen; `new_pods`: the pods it
    brought; `pods`: how many a client could pick from."""
    during = [a for client in answers.values() for a in client if started <= a.t <= ended]
    failed = [a for client in answers.values() for a in client if not a.ok]
    broken = [
        line
        for client, sequence in answers.items()
        for line in problems(client, sequence, deleted, new_pods, started)
    ]
    moves = sum(len(runs(sequence)) - 1 for sequence in answers.values())
    ends = {client: (runs(seq)[-1][0] if runs(seq) else None) for client, seq in answers.items()}
    requests = len(during)
    bound = 3 / requests if requests else 1.0
    summary = (
        f"{len(answers)} clients, {requests} requests during the {ended - started:.1f} s "
        f"rollout, {len(failed)} failed in all; "
    )
    if broken:
        summary += f"{len(broken)} breaks of affinity: {broken[0]}"
    else:
        summary += (
            f"each stayed on its pod until that pod was deleted ({moves} moves, every one after "
            f"the deletion) and ended on one new pod: {sorted(set(ends.values()))}"
        )
    return Verdict(
        label,
        not failed and not broken and requests > 0,
        summary,
        ErrorRates(
            0.0,
            power(answers, started, pods),
            f"a Service that picks a pod per connection; 0 failures bound the failure rate "
            f"below {bound:.2%} with 95% confidence",
        ),
        {
            "clients": len(answers),
            "requests": requests,
            "failed": len(failed),
            "bound_95": bound,
            "moves": moves,
            "ends": ends,
            "breaks": broken,
        },
        details=tuple(broken[:10])
        + tuple(f"{a.error} (at {a.t - started:+.1f} s)" for a in failed[:5]),
        control=control,
    )
