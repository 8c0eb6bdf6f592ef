"""Whether a load test run met its thresholds: pods reached, balance, errors, p95 latency.

Pure functions of the run's figures, so that CI's gate is tested without running Locust. The
balance statistics are the e2e harness's own (kubeverify.balance), not a second version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from kubeverify import health, splits
from kubeverify.balance import (
    ALPHA,
    SKEW,
    Transport,
    claimed_rates,
    fixed_sample,
    judge_balance,
    required_requests,
)
from kubeverify.locust.memory import PeakMemory
from kubeverify.verdict import ErrorRates, Verdict, no_failures

# Kubernetes balances connections, not requests: kube-proxy picks a pod when a connection
# opens. A new connection per request makes every request a fresh draw, so the per-pod counts
# judge the Service's balancing (and the connections the pods name prove each request had
# its own); keep-alive users pin one pod per connection, so there each connection is one
# draw, and balance is judged on the connections per pod once there are enough of them.
CONNECTION_MODES = {
    "new": Transport.NEW_CONNECTION_PER_REQUEST,
    "keep-alive": Transport.KEEP_ALIVE,
}


@dataclass(frozen=True)
class Thresholds:
    """What a run must meet. A zero max_skew, alpha or max_p95_ms switches that check off."""

    expected_pods: int = 3
    pod_names: tuple[str, ...] = ()  # when given, these pods exactly, and their count wins
    max_skew: float = SKEW
    alpha: float = ALPHA
    max_error_ratio: float = 0.01
    max_p95_ms: float = 500.0
    # The run spans a change that replaces the pods (a rollout): the pods named answer, and as
    # many others, their replacements; the split over pods that come and go is not judged.
    pods_replaced: bool = False
    # A declared split over the groups a header names: group -> weight (relative).
    declared_split: Mapping[str, float] | None = None
    # Per-pod health short of its power (a run too short for it) fails, rather than passes at
    # low power.
    enforce_power: bool = False

    def __post_init__(self) -> None:
        if self.expected_pods < 1 and not self.pod_names:
            raise ValueError(f"expected pods must be at least 1, not {self.expected_pods}")
        if self.pods_replaced and not self.pod_names:
            raise ValueError("pods replaced: name the pods before the change (--pod-names)")
        if self.max_skew and self.max_skew < 1:
            raise ValueError(f"max skew is a max/min ratio >= 1 (or 0: off), not {self.max_skew}")
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha must lie in [0, 1), not {self.alpha}")
        if not 0 <= self.max_error_ratio <= 1:
            raise ValueError(f"max error ratio must lie in [0, 1], not {self.max_error_ratio}")
        if self.max_p95_ms < 0:
            raise ValueError(f"max p95 must be >= 0 ms, not {self.max_p95_ms}")

    @property
    def pod_count(self) -> int:
        return len(self.pod_names) or self.expected_pods


@dataclass(frozen=True)
class RunFigures:
    requests: int
    failures: int
    p95_ms: float | None  # None when no request completed
    pods: Mapping[str, int]  # responses per pod, from the X-Pod-Name header
    transport: Transport
    # Distinct connections per pod, from the connection each answer named; None: not named.
    connections: Mapping[str, int] | None = None
    connections_capped: bool = False  # so many that not every one was kept
    # (answers on a connection an earlier one had used, answers looked at); None: not named.
    reused: tuple[int, int] | None = None
    users: int | None = None  # the most users that ran at once
    groups: Mapping[str, int] | None = None  # answers per group of the declared split
    # Each pod's first answers, (seconds, failed), for per-pod health; None: not kept.
    answers: Mapping[str, Sequence[tuple[float, bool]]] | None = None


@dataclass(frozen=True)
class Judgement:
    """Every verdict of a run, notes on what was not judged and why, and the memory the
    judging process held at most (verdicts included), once they are judged."""

    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...] = ()
    memory: PeakMemory | None = None

    @property
    def passed(self) -> bool:
        return all(verdict.passed for verdict in self.verdicts)

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(verdict for verdict in self.verdicts if not verdict.passed)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def text(self) -> str:
        headline = (
            "verdict: PASSED"
            if self.passed
            else f"verdict: FAILED ({', '.join(verdict.check for verdict in self.failed)})"
        )
        lines = [headline]
        for verdict in self.verdicts:
            rates = f" [{verdict.rates.text()}]" if verdict.rates and verdict.rates.text() else ""
            lines.append(f"  [{_mark(verdict)}] {verdict.check}: {verdict.summary}{rates}")
        lines += [f"  [note] {note}" for note in self.notes]
        if self.memory:
            lines.append(f"  [memory] {self.memory.text()}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "verdicts": [verdict.to_json() for verdict in self.verdicts],
            "notes": list(self.notes),
            "memory": self.memory.to_json() if self.memory else None,
        }


def declared_split(text: str, header: str) -> dict[str, float] | None:
    """'1=75,2=25' -> {'1': 75.0, '2': 25.0}; a bad one is a ValueError naming the option."""
    if not text:
        return None
    if not header:
        raise ValueError("--declared-split needs --split-header, the header naming each group")
    weights = {}
    for part in text.split(","):
        group, _, weight = part.partition("=")
        try:
            weights[group.strip()] = float(weight)
        except ValueError:
            raise ValueError(f"--declared-split: {part!r} is not GROUP=WEIGHT") from None
    splits.normalised(weights)  # every weight 0 or more, one above
    return weights


def evaluate(figures: RunFigures, thresholds: Thresholds) -> Judgement:
    checks = [_errors(figures, thresholds)]
    if thresholds.max_p95_ms:
        checks.append(_p95(figures, thresholds))
    notes: list[str] = []
    if thresholds.declared_split:
        checks += _declared_split(figures, thresholds, notes)
    if thresholds.pods_replaced:
        notes.append("balance not judged: the pods were replaced during the run")
        return Judgement((*checks, _replaced(figures, thresholds)), tuple(notes))
    pods = _pods(figures, thresholds)
    if figures.transport is Transport.KEEP_ALIVE:
        pods = _pods_by_connections(pods, figures, thresholds, notes)
    checks.append(pods)
    if figures.transport is Transport.NEW_CONNECTION_PER_REQUEST and figures.reused:
        checks.append(_a_connection_each(figures.reused))
    if figures.answers and pods.passed and thresholds.pod_count > 1:
        checks.append(_health(figures, thresholds))
    if figures.transport is Transport.KEEP_ALIVE and figures.connections:
        checks += _balance_of_connections(figures, thresholds, pods, notes)
    elif figures.transport.why_unfit:
        notes.append(
            f"balance not judged: counts from {figures.transport.value} cannot judge it: "
            f"{figures.transport.why_unfit}"
        )
    elif thresholds.pod_count == 1:
        notes.append("balance not judged: one pod has nothing to be balanced with")
    elif not (thresholds.alpha or thresholds.max_skew):
        notes.append("balance not judged: both the chi-square and the skew checks are off")
    elif not pods.passed:
        notes.append("balance not judged: the pods that answered are not the pods expected")
    else:
        checks += _balance(figures, thresholds)
    return Judgement(tuple(checks), tuple(notes))


def _errors(figures: RunFigures, thresholds: Thresholds) -> Verdict:
    if figures.requests == 0:
        return Verdict("error ratio", False, "no request completed")
    if thresholds.max_error_ratio == 0:
        # None may fail: the bound 0 failures of n give, as every change under traffic states.
        return replace(
            no_failures("the run", figures.requests, figures.failures, minimum=1),
            check="error ratio",
        )
    ratio = figures.failures / figures.requests
    return Verdict(
        "error ratio",
        ratio <= thresholds.max_error_ratio,
        f"{figures.failures} of {figures.requests} requests failed ({ratio:.2%}; "
        f"allowed {thresholds.max_error_ratio:.2%})",
    )


def _p95(figures: RunFigures, thresholds: Thresholds) -> Verdict:
    if figures.p95_ms is None:
        return Verdict("p95 latency", False, "no request completed")
    return Verdict(
        "p95 latency",
        figures.p95_ms <= thresholds.max_p95_ms,
        f"{figures.p95_ms:.0f} ms (allowed {thresholds.max_p95_ms:.0f} ms)",
    )


def _pods(figures: RunFigures, thresholds: Thresholds) -> Verdict:
    seen = sorted(figures.pods)
    expected = thresholds.pod_count
    if thresholds.pod_names:
        missing = sorted(set(thresholds.pod_names) - set(seen))
        unexpected = sorted(set(seen) - set(thresholds.pod_names))
        problems = []
        if missing:
            problems.append(f"{len(missing)} short, no response from {', '.join(missing)}")
        if unexpected:
            problems.append(f"answers from pods not expected: {', '.join(unexpected)}")
        detail = f"{len(seen) - len(unexpected)} of {expected} expected pods answered"
        return Verdict("pods", not problems, "; ".join([detail, *problems]))
    detail = f"{len(seen)} of {expected} expected pods answered ({', '.join(seen) or 'none'})"
    if len(seen) < expected:
        return Verdict("pods", False, f"{detail}: {expected - len(seen)} short")
    if len(seen) > expected:
        return Verdict("pods", False, f"{detail}: {len(seen) - expected} more than expected")
    return Verdict("pods", True, detail)


def _declared_split(figures: RunFigures, thresholds: Thresholds, notes: list[str]) -> list:
    """The groups' answers against the declared split, judged on a random sample of the size
    its power calculation asks for (as the balance chi-square is), so that the verdict means
    the same for a short run and a long one; too few answers judge nothing."""
    declared = splits.normalised(thresholds.declared_split)
    groups = dict(figures.groups or {})
    kept = tuple(share for share in declared.values() if share > 0)
    if figures.transport is not Transport.NEW_CONNECTION_PER_REQUEST:
        notes.append("declared split not judged: answers on kept-alive connections are not draws")
        return []
    needed = splits.required_draws(kept) if len(kept) > 1 else splits.ZERO_GROUPS_DRAWS
    counted = sum(groups.values())
    if counted < needed:
        notes.append(f"declared split not judged: {counted} answers named a group; its power "
                     f"needs {needed}")  # fmt: skip
        return []
    names = sorted(set(groups) | set(declared))
    sample = fixed_sample(groups, names, needed)
    return [
        splits.judge_split(
            {group: sample.get(group, 0) for group in declared},
            declared,
            alpha=thresholds.alpha or ALPHA,
            label="declared split",
            unexpected={g: n for g, n in sample.items() if g not in declared and n},
            figures={"answers": counted, "sampled": needed},
        )
    ]


def _health(figures: RunFigures, thresholds: Thresholds) -> Verdict:
    """Each pod against its siblings, on its first answers: its failed answers and its
    latency (kubeverify.health, at the run's alpha over the pods)."""
    pods = thresholds.pod_names or tuple(sorted(figures.pods))
    answers = [
        health.PodAnswers(
            pod,
            sum(failed for _, failed in (figures.answers or {}).get(pod, ())),
            tuple(seconds for seconds, _ in (figures.answers or {}).get(pod, ())),
        )
        for pod in pods
    ]
    return health.verdict(
        answers,
        alpha=thresholds.alpha or ALPHA,
        label="per pod",
        ran_out="a longer run gives more answers",
        enforce_power=thresholds.enforce_power,
    )


def _replaced(figures: RunFigures, thresholds: Thresholds) -> Verdict:
    """Through a change that replaces the pods: every pod named (those before it) answered, and
    at least as many others (those after it)."""
    before = set(thresholds.pod_names)
    seen = set(figures.pods)
    missing, after = sorted(before - seen), sorted(seen - before)
    passed = not missing and len(after) >= len(before)
    summary = (
        f"{len(before) - len(missing)} of the {len(before)} pods before the change answered, "
        f"and {len(after)} others after it"
    )
    if missing:
        summary += f"; no response from {', '.join(missing)}"
    elif len(after) < len(before):
        summary += f": fewer than the {len(before)} that replace them"
    return Verdict("pods replaced", passed, summary, figures={"before": sorted(before),
                                                               "after": after})  # fmt: skip


def chance_a_pod_gets_none(connections: int, pods: int) -> float:
    """The chance that some pod gets none of `connections` spread evenly at random
    (inclusion-exclusion over the pods left out)."""
    return sum(
        (-1) ** (j + 1) * math.comb(pods, j) * (1 - j / pods) ** connections for j in range(1, pods)
    )


def _pods_by_connections(
    pods: Verdict, figures: RunFigures, thresholds: Thresholds, notes: list[str]
) -> Verdict:
    """Keep-alive users pin a pod per connection, so a pod that got none of a few connections
    may be bad luck, not a fault: a missing pod fails the run only when so many connections
    were opened that an even Service would leave one out less often than alpha. The
    connections are counted by the names the pods gave them, else at least one per user."""
    if pods.passed or len(figures.pods) > thresholds.pod_count:
        return pods  # all there, or more than expected: as judged
    if set(figures.pods) - set(thresholds.pod_names or figures.pods):
        return pods  # answers from pods not expected: as judged
    if figures.connections:
        connections, how = sum(figures.connections.values()), "connections"
    else:
        connections, how = figures.users, "users, a connection each at least"
    if connections:
        chance = chance_a_pod_gets_none(connections, thresholds.pod_count)
        if chance < (thresholds.alpha or ALPHA):
            return Verdict(
                pods.check,
                False,
                f"{pods.summary} (an even Service leaves a pod out of {connections} {how} with "
                f"chance {chance:.1e})",
                ErrorRates(chance, None),
                {"connections": connections, "chance_a_pod_gets_none": chance},
            )
        why = f"{connections} {how} leave a pod out {chance:.1%} of the time on an even Service"
    else:
        why = "neither the connections nor the users were counted"
    notes.append(f"pods not judged: {pods.summary}; {why}")
    return Verdict(pods.check, True, f"{pods.summary}; not judged (see the notes)")


def _a_connection_each(reused: tuple[int, int]) -> Verdict:
    """The transport proven, not declared: no answer came on a connection used before."""
    shared, answers = reused
    return Verdict(
        "a connection per request",
        shared == 0,
        f"{answers - shared} distinct connections for {answers} answers, by the connection "
        "each pod named",
    )


def _balance_of_connections(
    figures: RunFigures, thresholds: Thresholds, pods: Verdict, notes: list[str]
) -> list[Verdict]:
    """Keep-alive traffic judged as kube-proxy sees it: each connection is one draw, so the
    connections per pod are judged as a new-connection run's requests are, once there are as
    many as the stated power needs."""
    connections = dict(figures.connections or {})
    opened = sum(connections.values())
    # One pod has no balance to judge, nor a number of draws its power needs.
    wanted = required_requests(thresholds.pod_count) if thresholds.pod_count > 1 else 0
    if thresholds.pod_count == 1 or not (thresholds.alpha or thresholds.max_skew):
        why = "one pod, or both balance checks off"
    elif not pods.passed:
        why = "the pods that answered are not the pods expected"
    elif figures.connections_capped:
        why = "more connections than were kept, so their counts are floors"
    elif opened < wanted:
        why = f"{opened} keep-alive connections, each one draw; the stated power needs {wanted}"
    else:
        by_connection = RunFigures(opened, 0, None, connections, Transport.KEEP_ALIVE_CONNECTIONS)
        return [
            replace(verdict, check=f"{verdict.check} (connections)")
            for verdict in _balance(by_connection, thresholds)
        ]
    notes.append(f"balance not judged: {why}")
    return []


def _balance(figures: RunFigures, thresholds: Thresholds) -> list[Verdict]:
    pods = thresholds.pod_names or tuple(figures.pods)
    seen = judge_balance(figures.pods, pods, figures.transport, thresholds.alpha or ALPHA)
    total = seen.figures["draws"]
    verdicts = []
    if thresholds.alpha:
        skew = thresholds.max_skew if thresholds.max_skew > 1 else SKEW
        needed = required_requests(len(pods), skew, thresholds.alpha)
        # Judged at the size the power was calculated for, so that the verdict means the same
        # for a run of a minute and of an hour; the skew check below sees every response.
        sampled = judge_balance(
            fixed_sample(figures.pods, pods, needed),
            pods,
            figures.transport,
            thresholds.alpha,
            rates=claimed_rates(len(pods), skew, thresholds.alpha),
        )
        chi_square, p_value = sampled.figures["chi_square"], sampled.figures["p_value"]
        verdicts.append(
            replace(
                sampled,
                check="balance chi-square",
                passed=p_value >= thresholds.alpha,
                summary=f"chi-square {chi_square:.2f}, p = {p_value:.4g} (fails below alpha "
                f"{thresholds.alpha}) over a random {sampled.figures['draws']} of the {total} "
                f"{figures.transport.draws}",
                details=(),
            )
        )
        # A test that could not have seen a skew proves nothing by passing.
        verdicts.append(
            Verdict(
                "balance evidence",
                total >= needed,
                f"{total} {figures.transport.draws}; detecting any split whose largest/smallest "
                f"share is {skew:g} or more over {len(pods)} pods with power "
                f"{claimed_rates(len(pods)).power} at alpha {thresholds.alpha} takes {needed}",
                figures={"draws": total, "needed": needed},
            )
        )
    if thresholds.max_skew:
        ratio = seen.figures["max_min_ratio"]
        split = ", ".join(f"{pod}: {figures.pods.get(pod, 0)}" for pod in sorted(pods))
        verdicts.append(
            Verdict(
                "balance skew",
                ratio <= thresholds.max_skew,
                f"max/min {'inf' if math.isinf(ratio) else f'{ratio:.2f}'} "
                f"(allowed {thresholds.max_skew:g}); {split}",
                figures={"max_min_ratio": ratio, "allowed": thresholds.max_skew},
            )
        )
    return verdicts


def _mark(verdict: Verdict) -> str:
    if not verdict.passed:
        return "FAILED"
    return "ok, at low power" if verdict.underpowered else "ok"
