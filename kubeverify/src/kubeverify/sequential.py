"""A group-sequential balance test: the same error rates as the fixed-size test with about
half the requests on a balanced Service.

Requests go out in groups; after each, the chi-square statistic of the counts so far is
compared with two bounds. Above the critical value: unbalanced, stop. Below the look's
futility bound: balanced, stop (a skew of 1.5 would rarely look this even). In between: send
the next group. The futility bounds spend the allowed misses (1 - power) evenly over the looks,
each the simulated quantile of the statistic under the worst 1.5 split; the critical value is
then set, by simulation, so that an even Service is judged unbalanced with chance alpha; the
largest size grows until the power holds. Everything is simulated with fixed seeds, so a
design is the same on every machine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kubeverify.balance import (
    ALPHA,
    POWER,
    SKEW,
    chi_square,
    is_even,
    required_requests,
    uniform,
    worst_shares,
)

LOOKS = (0.3, 0.45, 0.6, 0.75, 0.9, 1.0)  # of the largest size, where the test may stop
DESIGN_DRAWS = 100_000
BALANCED = "balanced"
UNBALANCED = "unbalanced"


@dataclass(frozen=True)
class Design:
    pods: int  # groups the draws fall in (pods, or declared groups of pods)
    sizes: tuple[int, ...]  # requests sent by each look, in all
    futility: tuple[float, ...]  # balanced below these, at every look but the last
    critical: float  # unbalanced above this, at any look
    fixed: int  # what the fixed-size test sends, for comparison
    expected: tuple[float, ...] | None = None  # the shares tested against; None: even

    def stops(self, look: int, statistics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the test stops at `look` (0-based), for each of `statistics`: (judged
        unbalanced, judged balanced); neither: send the next group. The one rule, used on the
        cluster (`decide`) and in every simulation of the design."""
        unbalanced = statistics > self.critical
        balanced = ~unbalanced
        if look < len(self.sizes) - 1:
            balanced &= statistics < self.futility[look]
        return unbalanced, balanced

    def decide(self, look: int, statistic: float) -> str | None:
        """The decision at `look` (0-based) on one run's statistic, or None: send the next
        group."""
        unbalanced, balanced = self.stops(look, np.array([statistic]))
        return UNBALANCED if unbalanced[0] else BALANCED if balanced[0] else None


def _statistics(sizes: Sequence[int], shares, draws: int, seed: int, expected=None) -> np.ndarray:
    """The statistic at every look (rows) of `draws` simulated runs (columns)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((draws, len(shares)))
    rows, sent = [], 0
    for size in sizes:
        counts += rng.multinomial(size - sent, shares, size=draws)
        sent = size
        rows.append(chi_square(counts, expected))
    return np.array(rows)


def _run(statistics: np.ndarray, design: Design) -> tuple[float, float]:
    """(share judged unbalanced, mean requests sent) of the simulated runs."""
    draws = statistics.shape[1]
    rejected = np.zeros(draws, bool)
    stopped = np.zeros(draws, bool)
    sent = np.full(draws, float(design.sizes[-1]))
    for look, size in enumerate(design.sizes):
        unbalanced, balanced = design.stops(look, statistics[look])
        reject, accept = ~stopped & unbalanced, ~stopped & balanced
        rejected |= reject
        sent[reject | accept] = size
        stopped |= reject | accept
    return float(rejected.mean()), float(sent.mean())


def simulate(design: Design, shares, draws: int = 20_000, seed: int = 0) -> tuple[float, float]:
    """How often `design` judges a Service with these true shares unbalanced (off the expected
    split), and how many requests it sends on average."""
    return _run(_statistics(design.sizes, shares, draws, seed, design.expected), design)


@functools.cache
def design(pods: int, skew: float = SKEW, alpha: float = ALPHA, power: float = POWER) -> Design:
    """The design that tests an even split over `pods` against every split whose
    largest/smallest share is `skew` or more."""
    fixed = required_requests(pods, skew, alpha, power)
    return design_for(uniform(pods), tuple(worst_shares(pods, skew)), fixed, alpha, power)


@functools.cache
def design_for(
    expected: tuple[float, ...],
    worst: tuple[float, ...],
    fixed: int,
    alpha: float = ALPHA,
    power: float = POWER,
) -> Design:
    """The design that tests the `expected` split against `worst`, the hardest split its claim
    covers, with the error rates of the fixed-size test of `fixed` draws."""
    pods = len(expected)
    tested = None if is_even(expected) else expected
    even = list(expected)
    per_look_miss = (1 - power) / len(LOOKS)
    for step in range(1, 41):  # the largest size, 5% of the fixed size at a time
        largest = round(fixed * (1 + 0.05 * step))
        sizes = tuple(round(largest * look) for look in LOOKS)
        skewed = _statistics(sizes, worst, DESIGN_DRAWS, seed=1, expected=tested)
        futility = tuple(float(np.quantile(row, per_look_miss)) for row in skewed[:-1])
        null = _statistics(sizes, even, DESIGN_DRAWS, seed=2, expected=tested)
        low, high = 0.0, 200.0
        for _ in range(50):
            middle = (low + high) / 2
            if _run(null, Design(pods, sizes, futility, middle, fixed, tested))[0] > alpha:
                low = middle
            else:
                high = middle
        candidate = Design(pods, sizes, futility, high, fixed, tested)
        if _run(skewed, candidate)[0] >= power:
            return candidate
    raise ValueError(f"no sequential design for {pods} pods within 3x the fixed size")
