"""Judging how a Service spreads requests over its pods: power, chi-square, verdicts.

Kubernetes balances connections, not requests: kube-proxy picks a pod when a connection opens,
and every request on that connection goes to the same pod. Only counts from traffic that opened
a new connection per request, through the Service's own path, say anything about balancing.
"""

from __future__ import annotations

import enum
import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from kubeverify.verdict import ErrorRates, Shares, Verdict

ALPHA = 0.001
POWER = 0.99
SKEW = 1.5
SIMULATION_DRAWS = 20_000


class Transport(enum.Enum):
    """How the requests reached the pods, and whether their counts can judge balancing."""

    NEW_CONNECTION_PER_REQUEST = "a new connection per request through the Service"
    # Each keep-alive connection one draw: its first answer names the pod kube-proxy picked.
    KEEP_ALIVE_CONNECTIONS = "keep-alive connections through the Service, one draw each"
    KEEP_ALIVE = "keep-alive requests"
    PORT_FORWARD = "kubectl port-forward"

    @property
    def draws(self) -> str:
        """What one draw of this transport is, in the plural."""
        return "connections" if self is Transport.KEEP_ALIVE_CONNECTIONS else "requests"

    @property
    def why_unfit(self) -> str | None:
        """None when counts from this transport judge balancing; otherwise the reason they can't."""
        if self is Transport.KEEP_ALIVE:
            return (
                "kube-proxy picks a pod per connection, not per request: a keep-alive client "
                "sends all its requests to the one pod its connection landed on"
            )
        if self is Transport.PORT_FORWARD:
            return (
                "kubectl port-forward resolves the Service to a single pod and tunnels every "
                "connection to it (kubernetes/kubectl#881); it never balances"
            )
        return None


class UnfitTransport(ValueError):
    """Raised when asked to judge balancing from traffic that cannot show it."""


def skewed_shares(pods: int, skew: float = SKEW) -> list[float]:
    """The split where one pod gets `skew` times the share of each of the others."""
    _check_split(pods, skew)
    total = skew + (pods - 1)
    return [skew / total] + [1 / total] * (pods - 1)


def starved_shares(pods: int, skew: float = SKEW) -> list[float]:
    """The split where one pod gets 1/`skew` of the share of each of the others."""
    _check_split(pods, skew)
    total = 1 / skew + (pods - 1)
    return [1 / skew / total] + [1 / total] * (pods - 1)


def worst_shares(pods: int, skew: float = SKEW) -> list[float]:
    """Of all splits whose largest share is `skew` times the smallest, the hardest to tell from
    an even one: the one closest to uniform (least effect size), which simulating the test on
    other splits confirms as the weakest. One pod high, one low, the others equal: minimising
    the squared distance from uniform under those constraints gives the low share below."""
    _check_split(pods, skew)
    others = pods - 2
    low = (1 + skew) / (others * (skew**2 + 1) + (1 + skew) ** 2)
    rest = [(1 - low * (1 + skew)) / others] * others if others else []
    return [skew * low, low, *rest]


def _check_split(pods: int, skew: float) -> None:
    if pods < 2:
        raise ValueError(f"a split needs at least 2 pods, not {pods}")
    if skew <= 1:
        raise ValueError(f"skew is a largest/smallest share ratio above 1, not {skew}")


def effect_size(shares: Sequence[float], expected: Sequence[float] | None = None) -> float:
    """Cohen's w of a split against the expected one (uniform unless given)."""
    expected = expected or [1 / len(shares)] * len(shares)
    return math.sqrt(sum((s - e) ** 2 / e for s, e in zip(shares, expected, strict=True)))


def approximate_power(requests: int, pods: int, skew: float = SKEW, alpha: float = ALPHA) -> float:
    """Power against the worst split from the noncentral chi-square distribution: quick, and a
    little optimistic at these sizes (simulating the test itself is what counts)."""
    return _approximate(requests, uniform(pods), worst_shares(pods, skew), alpha)


def _approximate(
    requests: int, expected: Sequence[float], shares: Sequence[float], alpha: float
) -> float:
    df = len(expected) - 1
    critical = stats.chi2.ppf(1 - alpha, df)
    noncentrality = requests * effect_size(shares, expected) ** 2
    return float(stats.ncx2.sf(critical, df, noncentrality))


def uniform(groups: int) -> tuple[float, ...]:
    return (1 / groups,) * groups


def rejection_rate(
    requests: int,
    shares: Sequence[float],
    alpha: float = ALPHA,
    draws: int = SIMULATION_DRAWS,
    seed: int = 0,
    expected: Sequence[float] | None = None,
) -> float:
    """How often the chi-square test over `requests` rejects the expected split (uniform unless
    given) when the true shares are `shares`, by simulating the test itself (fixed seed:
    repeatable). Power against a split that differs; the false-alarm rate against the expected
    one."""
    counts = np.random.default_rng(seed).multinomial(requests, shares, size=draws)
    critical = stats.chi2.ppf(1 - alpha, len(shares) - 1)
    return float(np.mean(chi_square(counts, expected) > critical))


def chi_square(counts, expected: Sequence[float] | None = None) -> np.ndarray:
    """Pearson's statistic of counts against the expected shares (uniform unless given), row
    by row."""
    counts = np.atleast_2d(counts)
    totals = counts.sum(axis=1, keepdims=True)
    if expected is None:
        expected_counts = totals / counts.shape[1]
    else:
        expected_counts = totals * np.asarray(expected, dtype=float)
    return ((counts - expected_counts) ** 2 / expected_counts).sum(axis=1)


def power(requests: int, pods: int, skew: float = SKEW, alpha: float = ALPHA) -> float:
    """The test's power against every split whose largest/smallest share ratio is at least
    `skew`: its power against the worst of them."""
    return rejection_rate(requests, worst_shares(pods, skew), alpha)


@functools.cache  # pure, and asked again for every verdict a Locust web UI shows
def required_requests(
    pods: int, skew: float = SKEW, alpha: float = ALPHA, target_power: float = POWER
) -> int:
    """The fewest requests whose chi-square test detects any split with a largest/smallest
    share ratio of `skew` or more with `target_power`."""
    return fewest_draws(uniform(pods), (tuple(worst_shares(pods, skew)),), alpha, target_power)


@functools.cache
def fewest_draws(
    expected: tuple[float, ...],
    worsts: tuple[tuple[float, ...], ...],
    alpha: float = ALPHA,
    target_power: float = POWER,
) -> int:
    """The fewest draws whose chi-square test against `expected` rejects each split of
    `worsts` (the hardest ones its claim covers) with `target_power`, by simulating the test."""
    if not 0 < target_power < 1:
        raise ValueError(f"target power must lie in (0, 1), not {target_power}")

    def enough(n: int) -> bool:
        return all(
            rejection_rate(n, worst, alpha, expected=None if is_even(expected) else expected)
            >= target_power
            for worst in worsts
        )

    # The approximation is optimistic, so its answer is a lower bound to search up from.
    low = high = _fewest(
        lambda n: all(_approximate(n, expected, w, alpha) >= target_power for w in worsts)
    )
    while not enough(high):
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


def is_even(expected: Sequence[float]) -> bool:
    return all(math.isclose(share, expected[0]) for share in expected)


def detectable(requests: int, pods: int, skew: float = SKEW, alpha: float = ALPHA) -> str:
    """What a test over `requests` can and cannot miss, in one line for the run's output."""
    worst = ", ".join(f"{share:.3f}" for share in worst_shares(pods, skew))
    return (
        f"{requests} requests over {pods} pods: any split whose largest/smallest share is "
        f"{skew:g} or more is caught with power {power(requests, pods, skew, alpha):.3f} or "
        f"more (the worst such split: {worst}); one pod at {skew:g}x the others: "
        f"{rejection_rate(requests, skewed_shares(pods, skew), alpha):.3f}; one at "
        f"1/{skew:g}: {rejection_rate(requests, starved_shares(pods, skew), alpha):.3f}; an "
        f"even split is judged unbalanced {rejection_rate(requests, [1 / pods] * pods, alpha):.2%}"
        " of the time"
    )


def _fewest(enough) -> int:
    """The smallest positive n with enough(n), for a monotone `enough`."""
    low, high = 1, 2
    while not enough(high):
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return low


def even_band(pods: int, total: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The share each of `pods` stays within on an even split of `total` draws, all of them
    together with chance 1 - alpha (normal approximation, Bonferroni over the pods): the grey
    band of the chart."""
    even = 1 / pods
    half = stats.norm.isf(alpha / pods / 2) * math.sqrt(even * (1 - even) / max(total, 1))
    return max(even - half, 0.0), min(even + half, 1.0)


def claimed_rates(pods: int, skew: float = SKEW, alpha: float = ALPHA) -> ErrorRates:
    """What the fixed-size test at its power calculation's size, and the sequential test with
    the same bounds, claim of themselves."""
    return ErrorRates(
        alpha, POWER, f"any split whose largest/smallest share is {skew:g} or more ({pods} pods)"
    )


def judge_balance(
    counts: Mapping[str, int],
    expected_pods: Iterable[str],
    transport: Transport,
    alpha: float = ALPHA,
    decided: str | None = None,
    *,
    label: str | None = None,
    rates: ErrorRates | None = None,
    nodes: Mapping[str, str] | None = None,
    control: bool = False,
    figures: Mapping[str, object] | None = None,
) -> Verdict:
    """Chi-square goodness of fit of per-pod counts against a uniform split over
    `expected_pods`: balanced when the p-value is alpha or more, or, for the sequential test,
    when its bounds decided so (`decided`); a ready pod that got nothing, or an answer from a
    pod not expected, is unbalanced however the test came out. `rates`: what the test claims
    (`claimed_rates` where the draws were as many as the power calculation asked for; by
    default, alpha alone)."""
    if transport.why_unfit:
        raise UnfitTransport(
            f"counts from {transport.value} cannot judge balancing: {transport.why_unfit}"
        )
    pods = tuple(sorted(expected_pods))
    if not pods:
        raise ValueError("no pods to judge: the Service has no ready endpoints")
    observed = [counts.get(pod, 0) for pod in pods]
    total = sum(observed)
    if total == 0:
        raise ValueError("no request reached any expected pod")
    if len(pods) == 1:
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.chisquare(observed)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    missing = tuple(pod for pod, seen in zip(pods, observed, strict=True) if seen == 0)
    unexpected = tuple(sorted(set(counts) - set(pods)))
    even = p_value >= alpha if decided is None else decided == "balanced"
    balanced = even and not missing and not unexpected
    ratio = math.inf if min(observed) == 0 else max(observed) / min(observed)
    split = ", ".join(f"{pod}: {seen}" for pod, seen in zip(pods, observed, strict=True))
    summary = (
        f"{'balanced' if balanced else 'UNBALANCED'}: {total} {transport.draws} over "
        f"{len(pods)} pods ({split}); chi-square {statistic:.2f}, p = {p_value:.4g} (alpha "
        f"{alpha}), max/min {ratio:.2f}"
        + ("" if decided is None else f"; sequential test: {decided}")
    )
    details = []
    if missing:
        details.append(f"ready pods that received no request: {', '.join(missing)}")
    if unexpected:
        details.append(f"answers from pods that are not ready: {', '.join(unexpected)}")
    band = even_band(len(pods), total, alpha) if len(pods) > 1 else (0.0, 1.0)
    return Verdict(
        check=label or f"balance over {len(pods)} pods ({transport.value})",
        passed=balanced,
        summary=summary,
        rates=rates or ErrorRates(alpha, None),  # power: where the caller knows its size
        figures={
            "test": "fixed" if decided is None else "sequential",
            "draws": total,
            "counts": dict(counts),
            "expected_pods": list(pods),
            "chi_square": statistic,
            "p_value": p_value,
            "alpha": alpha,
            "max_min_ratio": ratio,
            "missing": list(missing),
            "unexpected": list(unexpected),
            "decided": decided,
            **(figures or {}),
        },
        details=tuple(details),
        shares=Shares(
            counts={pod: int(seen) for pod, seen in zip(pods, observed, strict=True)},
            expected={pod: 1 / len(pods) for pod in pods},
            band={pod: band for pod in pods},
            colour_by=dict(nodes or {}),
        ),
        control=control,
    )


def fixed_sample(
    counts: Mapping[str, int], pods: Sequence[str], size: int, seed: int = 0
) -> dict[str, int]:
    """`size` of the responses counted, drawn at random without replacement: a run judged on
    this sample has the error rates the power calculation gave for `size`, however long it
    ran (on all of a long run's responses, the test would reject ever smaller skews)."""
    observed = [int(counts.get(pod, 0)) for pod in pods]
    if sum(observed) <= size:
        return dict(zip(pods, observed, strict=True))
    sample = np.random.default_rng(seed).multivariate_hypergeometric(observed, size)
    return dict(zip(pods, map(int, sample), strict=True))


def count_by(values: Iterable[str | None]) -> dict[str, int]:
    """Counts per pod (or node); answers that named none are counted under '<none>'."""
    return dict(Counter(value or "<none>" for value in values))
