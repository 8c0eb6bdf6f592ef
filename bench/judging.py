"""A throughput goal judged from interleaved rounds: a ratio with its interval, and a verdict
that is resolved only outside the noise.

Each round runs both sides back to back, in alternating order, so that what drifts between
rounds (other work on the machine, the CPU's clock) falls on both within it. The rounds'
ratios are summarised on the log scale: their mean with a t-interval (rounds independent,
log-ratios roughly normal), back-transformed, a geometric mean ratio and its interval. A goal
is met when the whole interval lies at or above it, MISSED when the whole of it lies below,
and not resolved when it straddles the goal: then neither a pass nor a failure, and more
rounds (`rounds_to_resolve`) would tell. When the true ratio sits exactly at the goal, the run
says MISSED at most (1 - confidence) / 2 of the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
MET, MISSED, UNRESOLVED = "met", "MISSED", "not resolved"


@dataclass(frozen=True)
class Ratio:
    """A ratio of two sides' figures over interleaved rounds: its geometric mean and interval."""

    estimate: float
    low: float
    high: float
    rounds: int
    confidence: float = CONFIDENCE

    def judge(self, goal: float) -> str:
        """met, MISSED, or not resolved (the interval straddles the goal)."""
        if self.low >= goal:
            return MET
        if self.high < goal:
            return MISSED
        return UNRESOLVED

    def text(self) -> str:
        return (
            f"{self.estimate:.3f} ({self.confidence:.0%} interval {self.low:.3f} to "
            f"{self.high:.3f}, {self.rounds} rounds)"
        )


def ratio(pairs: Sequence[tuple[float, float]], confidence: float = CONFIDENCE) -> Ratio:
    """The ratio a/b over rounds of (a, b), with its `confidence` interval."""
    if len(pairs) < 2:
        raise ValueError(f"an interval needs 2 rounds at least, not {len(pairs)}")
    if any(a <= 0 or b <= 0 for a, b in pairs):
        raise ValueError(f"ratios of positive figures only: {pairs}")
    logs = np.log([a / b for a, b in pairs])
    mean, spread = float(logs.mean()), float(logs.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, len(logs) - 1)) * spread / math.sqrt(len(logs))
    return Ratio(
        math.exp(mean), math.exp(mean - half), math.exp(mean + half), len(logs), confidence
    )


def rounds_to_resolve(measured: Ratio, goal: float) -> int | None:
    """About how many rounds would make the interval narrower than the distance from the
    estimate to the goal, at the spread these rounds showed; None at the goal itself."""
    distance = abs(math.log(measured.estimate) - math.log(goal))
    if distance == 0:
        return None
    half = math.log(measured.high) - math.log(measured.estimate)
    t = float(stats.t.ppf((1 + measured.confidence) / 2, measured.rounds - 1))
    spread = half * math.sqrt(measured.rounds) / t
    z = float(stats.norm.ppf((1 + measured.confidence) / 2))
    return max(measured.rounds, math.ceil((z * spread / distance) ** 2) + 1)
