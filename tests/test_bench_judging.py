"""A benchmark goal's judgement, pinned by simulation: the interval covers the true ratio as
often as it says, a ratio at the goal is called MISSED at most (1 - confidence) / 2 of the
time, and one clear of it by more than the noise is resolved."""

from __future__ import annotations

import numpy as np
import pytest

from bench.judging import MET, MISSED, UNRESOLVED, ratio, rounds_to_resolve

SIMULATIONS = 2000


def rounds(rng, true_ratio, count, noise=0.05):
    """Rounds of (a, b): b some thousands a second drifting between rounds, a its true share
    of it, each with noise of its own (log-normal, `noise` on the log scale)."""
    b = 7000 * rng.lognormal(0, 0.1, count)  # drift between rounds: it cancels in a round
    a = b * true_ratio * rng.lognormal(0, noise, count)
    return list(zip(a, b * rng.lognormal(0, noise / 2, count), strict=True))


def test_the_interval_covers_the_true_ratio_as_often_as_it_says():
    rng = np.random.default_rng(1)
    covered = [(m := ratio(rounds(rng, 0.8, 8))).low <= 0.8 <= m.high for _ in range(SIMULATIONS)]
    assert 0.935 <= np.mean(covered) <= 0.965, np.mean(covered)


def test_a_ratio_at_the_goal_is_missed_at_most_one_time_in_forty():
    rng = np.random.default_rng(2)
    said = [ratio(rounds(rng, 0.8, 8)).judge(0.8) for _ in range(SIMULATIONS)]
    assert np.mean([s == MISSED for s in said]) <= 0.025 + 0.01
    assert np.mean([s == MET for s in said]) <= 0.025 + 0.01
    assert np.mean([s == UNRESOLVED for s in said]) >= 0.94


@pytest.mark.parametrize(("true_ratio", "expected"), [(0.86, MET), (0.72, MISSED)])
def test_a_ratio_clear_of_the_goal_by_more_than_the_noise_is_resolved(true_ratio, expected):
    rng = np.random.default_rng(3)
    said = [ratio(rounds(rng, true_ratio, 10)).judge(0.8) for _ in range(500)]
    assert np.mean([s == expected for s in said]) >= 0.95


def test_the_rounds_to_resolve_are_enough_at_the_spread_seen():
    rng = np.random.default_rng(4)
    first = ratio(rounds(rng, 0.83, 5))
    needed = rounds_to_resolve(first, 0.8)
    assert needed is not None
    assert needed >= 5
    resolved = [ratio(rounds(rng, 0.83, needed)).judge(0.8) for _ in range(200)]
    assert np.mean([s != UNRESOLVED for s in resolved]) >= 0.4  # about half, at the spread seen


def test_too_few_rounds_or_a_zero_say_so():
    with pytest.raises(ValueError, match="2 rounds at least"):
        ratio([(1.0, 2.0)])
    with pytest.raises(ValueError, match="positive"):
        ratio([(1.0, 2.0), (0.0, 2.0)])
