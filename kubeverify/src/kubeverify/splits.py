"""Declared splits: does the traffic split over groups of pods the way it was declared?

A split names groups of pods behind one entry point (a Service; or a proxy in front of several
Services, as ingress canary weights and Gateway API `backendRefs` weights work), each with the
share it should get: its weight, or by default its share of the ready replicas, which is what a
Service gives when kube-proxy picks a pod at random. Each draw (a request on a fresh
connection) lands in the group of the pod that answered.

The verdict is Pearson's goodness-of-fit test of the groups' counts against the declared
shares, at the balance test's error rates: false alarms alpha (0.001); power 0.99 against every
split in which some group's share is off its declared share by `deviation` (8 points) or more.
The hardest such split moves the group whose share is nearest one half by the deviation, up or
down, the others making up the difference in proportion to their shares (for 70/30: 78/22 and
62/38); the draws are as many as the test needs to catch both, by simulating it. A group
declared at 0 must get none: any draw there fails the verdict, and none of n bounds its share
below 3/n with 95% confidence.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

from scipy import stats

from kubeverify import sequential
from kubeverify.balance import ALPHA, POWER, chi_square, fewest_draws, rejection_rate
from kubeverify.verdict import ErrorRates, Shares, Verdict

DEVIATION = 0.08  # a 70/30 split that is really 78/22 (or 62/38) is caught
# The power is found by simulating 20,000 runs, whose own error is about 0.0007 at 0.99: the
# draws are sized for 0.99 plus two of those, so that the power stated holds on runs of others.
POWER_MARGIN = 0.0015
# A split with one group above 0 has nothing to fit: it is judged on the groups at 0 alone,
# which none of these draws may reach (none of 300 puts a share below 1% with 95% confidence).
ZERO_GROUPS_DRAWS = 300
# The sequential test's decisions, as a split's verdict says them.
SAID = {"balanced": "as declared", "unbalanced": "not as declared"}


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights as shares summing to 1 (weights are relative: 90 and 10, or 9 and 1)."""
    total = sum(weights.values())
    if total <= 0 or any(weight < 0 for weight in weights.values()):
        raise ValueError(f"weights must be 0 or more, and one at least more: {dict(weights)}")
    return {group: weight / total for group, weight in weights.items()}


def worst_splits(
    declared: Sequence[float], deviation: float = DEVIATION
) -> tuple[tuple[float, ...], ...]:
    """Of the splits in which some group's share is off its declared share by `deviation` or
    more, the hardest to tell from the declared one (least effect size): moving group i by the
    deviation costs deviation^2 / (p_i (1 - p_i)) at least, the others making up the difference
    in proportion to their shares, so the group with p_i nearest one half moves, up and down
    (where its share stays within 0 and 1)."""
    if not 0 < deviation < 1:
        raise ValueError(f"the deviation is a share in (0, 1), not {deviation}")
    moved = max(range(len(declared)), key=lambda i: declared[i] * (1 - declared[i]))
    share, rest = declared[moved], 1 - declared[moved]
    found = []
    for target in (share + deviation, share - deviation):
        if 0 < target < 1:
            found.append(
                tuple(target if i == moved else p * (1 - target) / rest
                      for i, p in enumerate(declared))
            )  # fmt: skip
    return tuple(found)


@functools.cache
def required_draws(declared: tuple[float, ...], deviation: float = DEVIATION,
                   alpha: float = ALPHA, power: float = POWER) -> int:  # fmt: skip
    """The fewest draws whose test catches every split off `declared` by `deviation` or more
    with `power` (declared: the shares of the groups declared above 0)."""
    return fewest_draws(declared, worst_splits(declared, deviation), alpha, power + POWER_MARGIN)


def hardest(declared: tuple[float, ...], deviation: float = DEVIATION) -> tuple[float, ...]:
    """Of the worst splits, the one the test catches least often at its size."""
    draws = required_draws(declared, deviation)
    return min(
        worst_splits(declared, deviation),
        key=lambda split: rejection_rate(draws, split, expected=declared),
    )


@functools.cache
def design(declared: tuple[float, ...], deviation: float = DEVIATION) -> sequential.Design:
    """The group-sequential design for `declared` (the shares above 0): the fixed-size test's
    error rates, against the hardest split `deviation` allows."""
    draws = required_draws(declared, deviation)
    return sequential.design_for(declared, hardest(declared, deviation), draws)


def claimed_rates(declared: Mapping[str, float], deviation: float = DEVIATION) -> ErrorRates:
    shown = "/".join(f"{share:.0%}" for share in declared.values())
    return ErrorRates(
        ALPHA,
        POWER,
        f"a split {deviation:.0%} or more off the declared {shown} in any group",
    )


def detectable(declared: Mapping[str, float], deviation: float = DEVIATION) -> str:
    """What a split's test can and cannot miss, in one line for the run's output."""
    kept = tuple(share for share in declared.values() if share > 0)
    draws = required_draws(kept, deviation)
    worst = " or ".join(
        "/".join(f"{share:.0%}" for share in split) for split in worst_splits(kept, deviation)
    )
    power = min(rejection_rate(draws, split, expected=kept)
                for split in worst_splits(kept, deviation))  # fmt: skip
    return (
        f"{draws} draws over {len(kept)} groups declared "
        f"{'/'.join(f'{share:.0%}' for share in kept)}: a split {deviation:.0%} or more off it "
        f"in any group is caught with power {power:.3f} or more (the hardest: {worst}); the "
        f"declared split is judged off {rejection_rate(draws, kept, expected=kept):.2%} of the "
        "time"
    )


def judge_split(
    counts: Mapping[str, int],
    declared: Mapping[str, float],
    *,
    alpha: float = ALPHA,
    decided: str | None = None,
    label: str,
    rates: ErrorRates | None = None,
    unexpected: Mapping[str, int] | None = None,
    control: bool = False,
    figures: Mapping[str, object] | None = None,
) -> Verdict:
    """Goodness of fit of the groups' counts against the declared shares (the groups declared
    above 0), and none in a group declared at 0. `unexpected`: answers from pods in no group,
    which fail the verdict. `decided`: the sequential test's decision, else the p-value's."""
    kept = {group: share for group, share in declared.items() if share > 0}
    zero = sorted(group for group, share in declared.items() if share == 0)
    observed = [counts.get(group, 0) for group in kept]
    total = sum(counts.get(group, 0) for group in declared)
    if total == 0:
        raise ValueError("no draw reached any group of the split")
    if len(kept) > 1:
        statistic = float(chi_square(observed, list(kept.values()))[0])
        p_value = float(stats.chi2.sf(statistic, len(kept) - 1))
    else:
        statistic, p_value = 0.0, 1.0
    fits = p_value >= alpha if decided is None else decided == "balanced"
    leaked = {group: counts.get(group, 0) for group in zero if counts.get(group, 0)}
    strays = dict(unexpected or {})
    passed = fits and not leaked and not strays
    measured = ", ".join(
        f"{group} {counts.get(group, 0) / total:.1%} (declared {share:.1%})"
        for group, share in declared.items()
    )
    summary = (
        f"{'as declared' if passed else 'NOT as declared'}: {total} draws: {measured}; "
        f"chi-square {statistic:.2f}, p = {p_value:.4g} (alpha {alpha})"
        + ("" if decided is None else f"; sequential test: {SAID[decided]}")
    )
    details = []
    for group in zero:
        got = counts.get(group, 0)
        details.append(
            f"{group}, declared at 0, got {got} of {total}"
            if got
            else f"{group}, declared at 0, got none of {total}: its share is below "
            f"{3 / total:.2%} with 95% confidence"
        )
    if strays:
        details.append(f"answers from pods in no group: {strays}")
    return Verdict(
        check=label,
        passed=passed,
        summary=summary,
        rates=rates or claimed_rates(declared),
        figures={
            "counts": {group: counts.get(group, 0) for group in declared},
            "declared": dict(declared),
            "draws": total,
            "chi_square": statistic,
            "p_value": p_value,
            "alpha": alpha,
            "decided": decided,
            "unexpected": strays,
            **(figures or {}),
        },
        details=tuple(details),
        shares=Shares(
            counts={group: counts.get(group, 0) for group in declared},
            expected=dict(declared),
            band=bands(declared, total, alpha),
        ),
        control=control,
    )


def bands(declared: Mapping[str, float], total: int, alpha: float = ALPHA) -> dict:
    """The share each group stays within when the declared split holds, all of them together
    with chance 1 - alpha (normal approximation, Bonferroni over the groups): the chart's
    grey bands."""
    z = stats.norm.isf(alpha / max(len(declared), 1) / 2)
    found = {}
    for group, share in declared.items():
        half = z * math.sqrt(share * (1 - share) / max(total, 1))
        found[group] = (max(share - half, 0.0), min(share + half, 1.0))
    return found


def from_httproute(
    route: Mapping, selectors: Mapping[str, Mapping[str, str]], rule: int = 0
) -> dict[str, tuple[str, float]]:
    """The split a Gateway API HTTPRoute declares: for each backendRef of its rule `rule`, the
    Service's name -> (its pods' label selector, its weight; Gateway API's default weight is
    1). `selectors`: each Service's spec.selector, by name (a backend that is not a Service, or
    one with no selector, has no pods to count, and is refused)."""
    backends = route["spec"]["rules"][rule].get("backendRefs") or []
    if not backends:
        raise ValueError(f"HTTPRoute {route['metadata']['name']} rule {rule} has no backendRefs")
    found = {}
    for backend in backends:
        name = backend["name"]
        if backend.get("kind", "Service") != "Service" or not selectors.get(name):
            raise ValueError(f"backendRef {name} is not a Service with a selector: its pods "
                             "cannot be told apart")  # fmt: skip
        selector = ",".join(f"{key}={value}" for key, value in sorted(selectors[name].items()))
        found[name] = (selector, float(backend.get("weight", 1)))
    return found
