"""Per-pod health: is one replica sick while its siblings are well? A pod that passes its
readiness probe but answers errors, or answers much slower than the rest (CPU-throttled, on a
noisy node), is averaged away in a Service's error ratio and p95. Here each pod is compared
with its siblings on the same traffic:

- errors: given the requests each pod answered and the errors in all, a pod's error count is
  hypergeometric when every pod shares one error rate; the pod is sick when the chance of as
  many errors or more is below alpha / pods (Bonferroni: the false-alarm rate of the verdict,
  over all pods, is at most alpha). Power is stated, exactly, against one pod answering 5%
  errors while its siblings answer none.
- latency: a pod is sick when its latencies divided by 1.5 are still stochastically greater
  than its siblings' (a one-sided Mann-Whitney test at alpha / pods): a pod up to 1.5 times
  slower than its siblings is within the margin and fails the verdict at most alpha of the
  time (for a slowdown that scales every latency), so that large samples do not turn a node's
  few percent into a finding. Power is stated against a pod twice as slow, by resampling the
  siblings' own latencies (no shape is assumed).

Requests that no pod answered (refused, reset) name no pod: the zero-failure verdicts count
them.

The verdict aims at power POWER against both effects, and says when it reached less: on the
cluster, fresh connections are drawn (`draws_to_add`) until every pod's power reaches it or a
budget of draws and seconds runs out. The rule looks at how many answers each pod gave and at
their latencies, not at whether they failed, so stopping by it leaves the error test's
false-alarm rate as it was (where failed answers come as fast as good ones: a 503 much faster
than an answer could tilt the latency power a little, and with it the stop).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from kubeverify.balance import ALPHA, POWER
from kubeverify.verdict import ErrorRates, Verdict

LATENCY_MARGIN = 1.5  # a pod this much slower than its siblings is still judged healthy
LATENCY_EFFECT = 2.0  # the slowdown the latency test states its power against
ERROR_EFFECT = 0.05  # the error rate (siblings at none) the error test states its power against
POWER_SIMULATIONS = 400
# Latencies (simulations x both samples) per Mann-Whitney call in latency_power: scipy ranks
# them in about ten arrays of their size, some 80 bytes a latency, so a call holds about 40 MiB
# at most, however many answers and simulations (all 400 at the tally's cap of 5,000 answers a
# pod, in one call, took 425 MiB, and an in-cluster Locust master past its 512Mi limit).
POWER_LATENCIES_PER_CALL = 500_000
# What the draws for POWER may cost, the balance test's included: 3 pods need about 1,000 fresh
# connections, 10 about 2,000 (`answers_needed`); past the budget the verdict states the power it
# reached, below its aim.
BUDGET_DRAWS = 3_000
BUDGET_SECONDS = 60.0


@dataclass(frozen=True)
class PodAnswers:
    """What one pod answered: how many requests, how many of them errors (5xx or a wrong
    answer), and each answer's latency in seconds."""

    pod: str
    errors: int
    latencies: tuple[float, ...]

    @property
    def requests(self) -> int:
        return len(self.latencies)


def by_pod(outcomes: Iterable, pods: Sequence[str]) -> list[PodAnswers]:
    """The answers of each of `pods` among traffic outcomes (`.pod`, `.ok`, `.elapsed`)."""
    latencies: dict[str, list[float]] = {pod: [] for pod in pods}
    errors = dict.fromkeys(pods, 0)
    for outcome in outcomes:
        if outcome.pod in latencies:
            latencies[outcome.pod].append(outcome.elapsed)
            errors[outcome.pod] += not outcome.ok
    return [PodAnswers(pod, errors[pod], tuple(latencies[pod])) for pod in pods]


def error_p(errors: int, requests: int, all_errors: int, all_requests: int) -> float:
    """The chance of `errors` or more among a pod's `requests` when all pods share one error
    rate: hypergeometric, given the errors in all."""
    if errors == 0:
        return 1.0
    return float(stats.hypergeom.sf(errors - 1, all_requests, all_errors, requests))


def error_power(
    requests: int, all_requests: int, pods: int, alpha: float = ALPHA, rate: float = ERROR_EFFECT
) -> float:
    """The chance the error test names a pod answering `rate` errors among its `requests` while
    its siblings answer none, exactly (a sum over the binomial count of its errors)."""
    counts = np.arange(requests + 1)
    p = stats.hypergeom.sf(counts - 1, all_requests, counts, requests)
    caught = (counts > 0) & (p < alpha / pods)
    return float(stats.binom.pmf(counts, requests, rate)[caught].sum())


def latency_p(
    mine: Sequence[float], siblings: Sequence[float], margin: float = LATENCY_MARGIN
) -> float:
    """The one-sided Mann-Whitney p-value that a pod's latencies, divided by `margin`, are
    still greater than its siblings'."""
    if not mine or not siblings:
        return 1.0
    return float(
        stats.mannwhitneyu(np.asarray(mine) / margin, siblings, alternative="greater").pvalue
    )


def latency_power(
    requests: int,
    siblings: Sequence[float],
    pods: int,
    alpha: float = ALPHA,
    effect: float = LATENCY_EFFECT,
    margin: float = LATENCY_MARGIN,
    simulations: int = POWER_SIMULATIONS,
    seed: int = 0,
) -> float:
    """The chance the latency test names a pod `effect` times as slow as its siblings, with
    `requests` answers, by resampling the siblings' latencies: the pod's drawn from them and
    scaled by `effect`, its siblings' drawn from them too. The simulations run a batch at a
    time, each batch within POWER_LATENCIES_PER_CALL, so memory does not grow with them."""
    pool = np.asarray(siblings)
    if requests == 0 or pool.size == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    batch = max(1, POWER_LATENCIES_PER_CALL // (requests + pool.size))
    caught = 0
    for start in range(0, simulations, batch):
        size = min(batch, simulations - start)
        mine = rng.choice(pool, size=(size, requests)) * effect / margin
        others = rng.choice(pool, size=(size, pool.size))
        p = stats.mannwhitneyu(mine, others, alternative="greater", axis=1).pvalue
        caught += int(np.count_nonzero(p < alpha / pods))
    return caught / simulations


@functools.cache
def answers_needed(pods: int, alpha: float = ALPHA, aim: float = POWER) -> int:
    """The fewest answers a pod needs, its siblings answering as many, for the error test to
    name it at ERROR_EFFECT errors with power `aim` (2 pods: 398; 3: 316; 10: 198)."""
    enough = lambda n: error_power(n, n * pods, pods, alpha) >= aim  # noqa: E731
    high = 16
    while not enough(high):
        high *= 2
    low = high // 2
    while low + 1 < high:  # the power climbs with the answers, with small discrete dips
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def pod_powers(
    answers: Sequence[PodAnswers], alpha: float = ALPHA, simulations: int = POWER_SIMULATIONS
) -> list[tuple[float, float]]:
    """Each pod's (error power, latency power): the chance its tests name it were it the sick
    one, with the answers it and its siblings gave."""
    all_requests = sum(a.requests for a in answers)
    return [
        (
            error_power(answer.requests, all_requests, len(answers), alpha),
            latency_power(
                answer.requests,
                [x for other in answers if other is not answer for x in other.latencies],
                len(answers),
                alpha,
                simulations=simulations,
            ),
        )
        for answer in answers
    ]


def draws_to_add(
    answers: Sequence[PodAnswers],
    alpha: float = ALPHA,
    aim: float = POWER,
    simulations: int = POWER_SIMULATIONS,
) -> int:
    """The stopping rule of the draws for per-pod health: 0 when every pod's error and latency
    power reach `aim`; else how many draws more. While error power falls short, enough for the
    pod with the fewest answers, at the share it has had, to reach `answers_needed`; then, while
    latency power falls short, a quarter more. It reads the counts and the latencies, not the
    errors."""
    pods = len(answers)
    counts = [answer.requests for answer in answers]
    total, least = sum(counts), min(counts, default=0)
    needed = answers_needed(pods, alpha, aim)
    if least == 0:
        return max(needed * pods - total, pods)
    if any(error_power(n, total, pods, alpha) < aim for n in counts):
        return max(math.ceil((needed - least) * total / least), pods, total // 20)
    if min(power for _, power in pod_powers(answers, alpha, simulations)) < aim:
        return max(total // 4, pods)
    return 0


@dataclass(frozen=True)
class Judged:
    """One pod judged beside its siblings: its p-values and the reasons it is sick (none: it
    is well), at `bound` (alpha / pods) each."""

    answers: PodAnswers
    siblings: tuple[float, ...]  # their latencies
    p_errors: float
    p_latency: float
    sick: tuple[str, ...]


def judge(answers: Sequence[PodAnswers], alpha: float = ALPHA) -> list[Judged]:
    """Each pod against its siblings, by the error test and the latency test at alpha / pods."""
    all_requests = sum(a.requests for a in answers)
    all_errors = sum(a.errors for a in answers)
    bound = alpha / len(answers)
    judged = []
    for answer in answers:
        siblings = tuple(x for other in answers if other is not answer for x in other.latencies)
        p_errors = error_p(answer.errors, answer.requests, all_errors, all_requests)
        p_latency = latency_p(answer.latencies, siblings)
        sick = []
        if p_errors < bound:
            sick.append(
                f"{answer.errors} errors of {answer.requests} against "
                f"{all_errors - answer.errors} of {all_requests - answer.requests} for its "
                f"siblings (p = {p_errors:.2g})"
            )
        if p_latency < bound:
            sick.append(
                f"median {_ms(answer.latencies):g} ms against {_ms(siblings):g} ms, slower than "
                f"{LATENCY_MARGIN:g} times its siblings (p = {p_latency:.2g})"
            )
        judged.append(Judged(answer, siblings, p_errors, p_latency, tuple(sick)))
    return judged


def _ms(latencies: Sequence[float]) -> float:
    return round(float(np.median(latencies)) * 1000, 2) if len(latencies) else float("nan")


def verdict(
    answers: Sequence[PodAnswers],
    *,
    label: str = "",
    alpha: float = ALPHA,
    aim: float = POWER,
    ran_out: str | None = None,
    enforce_power: bool = False,
    control: bool = False,
) -> Verdict:
    """Each pod as healthy as its siblings, in errors and in latency; a sick pod is named with
    its figures beside its siblings'. The power stated is the weakest pod's (the one with the
    fewest answers); a pass short of `aim` says so, with what limited the answers (`ran_out`: a
    budget that stopped the draws, say), and fails where the target enforces the power."""
    pods = len(answers)
    all_requests = sum(a.requests for a in answers)
    judged = judge(answers, alpha)
    rows = [
        {
            "pod": j.answers.pod,
            "requests": j.answers.requests,
            "errors": j.answers.errors,
            "median_ms": _ms(j.answers.latencies),
            "siblings_median_ms": _ms(j.siblings),
            "p_errors": j.p_errors,
            "p_latency": j.p_latency,
            "error_power": errors,
            "latency_power": latency,
        }
        for j, (errors, latency) in zip(judged, pod_powers(answers, alpha), strict=True)
    ]
    error_power_min = min(r["error_power"] for r in rows)
    latency_power_min = min(r["latency_power"] for r in rows)
    error_effect = f"one pod answering {ERROR_EFFECT:.0%} errors while its siblings answer none"
    latency_effect = f"one pod {LATENCY_EFFECT:g} times as slow"
    rates = ErrorRates(
        alpha,
        min(error_power_min, latency_power_min),
        f"{error_effect} (power {error_power_min:.3g}), or {latency_effect} (power "
        f"{latency_power_min:.3g})",
        aim,
    )
    sick = [f"{j.answers.pod}: " + "; ".join(j.sick) for j in judged if j.sick]
    if sick:
        summary = f"{len(sick)} of {pods} pods sick: " + "; ".join(sick)
    else:
        summary = (
            f"{pods} pods, {all_requests} answers, {sum(a.errors for a in answers)} errors: no "
            f"pod answers more errors than its siblings, or slower than {LATENCY_MARGIN:g} "
            f"times them (alpha {alpha:g} over {pods} pods); medians "
            + ", ".join(f"{r['pod']} {r['median_ms']:g} ms" for r in rows)
        )
        if rates.short:
            missed = [
                f"{effect} (power {math.floor(power * 1000) / 1000:g})"
                for effect, power in ((error_effect, error_power_min),
                                      (latency_effect, latency_power_min))
                if power < aim
            ]  # fmt: skip
            summary = (
                f"not enough answers to catch {' or '.join(missed)}, short of the {aim:g} "
                f"aimed at{f' ({ran_out})' if ran_out else ''}: " + summary
            )
    return Verdict(
        f"each pod as healthy as its siblings{': ' + label if label else ''}",
        not sick and not (rates.short and enforce_power),
        summary,
        rates,
        {
            "pods": rows,
            "alpha": alpha,
            "latency_margin": LATENCY_MARGIN,
            "power_aimed_at": aim,
            "limited_by": ran_out,
            "power_enforced": enforce_power,
        },
        control=control,
    )
