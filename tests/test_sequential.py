"""The group-sequential balance test: its error rates, checked on simulated traffic drawn with
seeds of this file's own, and the requests it saves on a balanced Service."""

import numpy as np
import pytest

from kubeverify import balance, sequential


@pytest.mark.parametrize(("pods", "seed"), [(3, 11), (5, 12)])
def test_an_even_service_is_judged_unbalanced_at_most_alpha_of_the_time(pods, seed):
    design = sequential.design(pods)
    rate, _ = sequential.simulate(design, [1 / pods] * pods, draws=200_000, seed=seed)
    # 0.001 expected: 200 of 200,000, give or take 14; 260 is past four of those.
    assert rate <= balance.ALPHA + 0.0003, rate


@pytest.mark.parametrize(("pods", "seed"), [(3, 21), (5, 22)])
def test_every_split_of_ratio_1_5_is_caught_with_power_099(pods, seed):
    design = sequential.design(pods)
    for shares in (
        balance.worst_shares(pods),
        balance.skewed_shares(pods),
        balance.starved_shares(pods),
    ):
        rate, _ = sequential.simulate(design, shares, draws=20_000, seed=seed)
        assert rate >= 0.985, shares  # 0.99, less the noise of 20,000 draws


@pytest.mark.parametrize(("pods", "seed"), [(3, 31), (5, 32)])
def test_a_balanced_service_costs_at_most_60_percent_of_the_fixed_size(pods, seed):
    design = sequential.design(pods)
    _, sent = sequential.simulate(design, [1 / pods] * pods, draws=20_000, seed=seed)
    assert sent <= 0.6 * design.fixed, (sent, design.fixed)


def test_the_bounds_decide_as_stated():
    design = sequential.design(3)
    assert design.decide(0, design.critical + 1) == sequential.UNBALANCED
    assert design.decide(0, design.futility[0] / 2) == sequential.BALANCED
    between = (design.futility[0] + design.critical) / 2
    assert design.decide(0, between) is None  # send the next group
    assert design.decide(len(design.sizes) - 1, between) == sequential.BALANCED
    assert list(design.sizes) == sorted(design.sizes)
    assert list(design.futility) == sorted(design.futility)


def test_a_verdict_decided_sequentially_follows_its_decision_not_the_p_value():
    pods = ["a", "b", "c"]
    fresh = balance.Transport.NEW_CONNECTION_PER_REQUEST
    counts = {"a": 560, "b": 470, "c": 470}  # p about 0.005: between the two tests' bounds
    assert balance.judge_balance(counts, pods, fresh).passed
    assert not balance.judge_balance(counts, pods, fresh, decided="unbalanced").passed
    assert (
        "sequential test: unbalanced"
        in balance.judge_balance(counts, pods, fresh, decided="unbalanced").explain()
    )


def test_the_chi_square_statistic_matches_scipys():
    from scipy import stats

    counts = np.array([420, 455, 465])
    assert balance.chi_square(counts)[0] == pytest.approx(stats.chisquare(counts).statistic)
