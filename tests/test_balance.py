"""The statistics that judge load balancing, on counts made up to be balanced or not."""

import math

import numpy as np
import pytest

from kubeverify import balance
from kubeverify.balance import Transport, UnfitTransport, judge_balance
from kubeverify.verdict import Verdict

PODS = ["pod-a", "pod-b", "pod-c"]
FRESH = Transport.NEW_CONNECTION_PER_REQUEST


def test_skewed_shares_give_one_pod_skew_times_each_other_share():
    shares = balance.skewed_shares(3, 1.5)
    assert math.isclose(sum(shares), 1.0)
    assert math.isclose(shares[0] / shares[1], 1.5)
    assert shares[1] == shares[2]


@pytest.mark.parametrize("pods", [2, 3, 5, 8])
def test_the_worst_split_has_the_ratio_and_the_least_effect_of_any(pods):
    worst = balance.worst_shares(pods, 1.5)
    assert math.isclose(sum(worst), 1.0)
    assert math.isclose(max(worst) / min(worst), 1.5)
    assert all(min(worst) <= share <= max(worst) for share in worst)
    rng = np.random.default_rng(7)
    for _ in range(2000):  # other splits with the same largest/smallest ratio
        middle = rng.uniform(1, 1.5, pods - 2)
        low = 1 / (2.5 + middle.sum())
        other = [1.5 * low, low, *(middle * low)]
        assert balance.effect_size(other) >= balance.effect_size(worst) - 1e-12


def test_effect_size_is_zero_for_a_uniform_split():
    assert balance.effect_size([0.25] * 4) == 0


def test_alpha_power_and_skew_are_the_stated_ones():
    assert (balance.ALPHA, balance.POWER, balance.SKEW) == (0.001, 0.99, 1.5)


@pytest.mark.parametrize(("pods", "requests"), [(3, 1340), (5, 2570)])
def test_the_request_count_for_3_and_5_pods_is_pinned(pods, requests):
    # Found by simulating the test against the worst split; one fewer falls short.
    assert balance.required_requests(pods) == requests
    assert balance.power(requests, pods) >= 0.99
    assert balance.power(round(requests * 0.95), pods) < 0.99  # not oversized either
    assert balance.approximate_power(requests, pods) > 0.99  # the approximation is optimistic


# Seeds of this file's own, not the code's: the draws are independent of the calculation.
@pytest.mark.parametrize(("pods", "seed"), [(3, 20261125), (5, 8675309)])
def test_power_holds_against_every_split_on_independently_drawn_traffic(pods, seed):
    n = balance.required_requests(pods)
    rng = np.random.default_rng(seed)
    for shares in (
        balance.worst_shares(pods),
        balance.skewed_shares(pods),
        balance.starved_shares(pods),
    ):
        draws = rng.multinomial(n, shares, size=4000)
        rejected = sum(not _verdict(row).passed for row in draws)
        assert rejected / 4000 >= 0.985, shares  # 0.99, less the noise of 4000 draws


@pytest.mark.parametrize(("pods", "seed"), [(3, 424242), (5, 31337)])
def test_false_alarms_on_even_traffic_stay_at_alpha(pods, seed):
    n = balance.required_requests(pods)
    draws = np.random.default_rng(seed).multinomial(n, [1 / pods] * pods, size=5000)
    rejected = sum(not _verdict(row).passed for row in draws)
    # 0.001 expected: 5 of 5000; above 20 (0.004) happens by chance once in about 10^7.
    assert rejected / 5000 <= 0.004


def _verdict(counts) -> Verdict:
    """The verdict the checks reach on these per-pod counts."""
    pods = [f"pod-{i}" for i in range(len(counts))]
    return judge_balance(dict(zip(pods, map(int, counts), strict=True)), pods, FRESH)


def test_more_pods_or_a_smaller_skew_need_more_requests():
    assert balance.required_requests(5) > balance.required_requests(3)
    assert balance.required_requests(3, skew=1.2) > balance.required_requests(3, skew=1.5)


def test_what_a_run_can_detect_is_said_in_one_line():
    line = balance.detectable(1340, 3)
    assert line.startswith("1340 requests over 3 pods: any split whose largest/smallest")
    assert "0.395, 0.263, 0.342" in line
    assert "\n" not in line


def test_even_split_is_balanced():
    verdict = judge_balance({"pod-a": 290, "pod-b": 305, "pod-c": 300}, PODS, FRESH)
    assert verdict.passed
    assert verdict.figures["p_value"] > 0.5
    assert "balanced" in verdict.explain()


def test_the_worst_1_5_split_at_the_power_calculated_count_is_unbalanced():
    n = balance.required_requests(3)
    counts = dict(zip(PODS, (round(n * s) for s in balance.worst_shares(3)), strict=True))
    verdict = judge_balance(counts, PODS, FRESH)
    assert not verdict.passed
    assert verdict.figures["p_value"] < balance.ALPHA
    assert "UNBALANCED" in verdict.explain()


def test_all_requests_on_one_pod_is_unbalanced_and_names_the_idle_pods():
    verdict = judge_balance({"pod-b": 900}, PODS, FRESH)
    assert not verdict.passed
    assert verdict.figures["missing"] == ["pod-a", "pod-c"]
    assert verdict.figures["max_min_ratio"] == math.inf
    assert "received no request: pod-a, pod-c" in verdict.explain()


def test_an_answer_from_a_pod_that_is_not_ready_is_unbalanced():
    verdict = judge_balance({"pod-a": 300, "pod-b": 300, "pod-c": 300, "old-pod": 4}, PODS, FRESH)
    assert verdict.figures["unexpected"] == ["old-pod"]
    assert not verdict.passed


@pytest.mark.parametrize(
    ("transport", "reason"),
    [
        (Transport.PORT_FORWARD, "single pod"),
        (Transport.KEEP_ALIVE, "per connection"),
    ],
)
def test_counts_from_pinning_transports_are_refused_with_the_reason(transport, reason):
    with pytest.raises(UnfitTransport, match=reason):
        judge_balance({"pod-a": 60}, PODS, transport)


def test_no_pods_or_no_requests_is_an_error_not_a_verdict():
    with pytest.raises(ValueError, match="no ready endpoints"):
        judge_balance({"pod-a": 1}, [], FRESH)
    with pytest.raises(ValueError, match="no request"):
        judge_balance({}, PODS, FRESH)


def test_keep_alive_connections_are_draws_and_are_judged_so():
    verdict = judge_balance(
        {"pod-a": 300, "pod-b": 310, "pod-c": 290}, PODS, Transport.KEEP_ALIVE_CONNECTIONS
    )
    assert verdict.passed
    assert "900 connections over 3 pods" in verdict.summary
    assert verdict.check == f"balance over 3 pods ({Transport.KEEP_ALIVE_CONNECTIONS.value})"


def test_a_verdict_states_its_rates_and_draws_its_split_against_the_even_band():
    verdict = judge_balance(
        {"pod-a": 300, "pod-b": 310, "pod-c": 290},
        PODS,
        FRESH,
        rates=balance.claimed_rates(3),
        nodes={"pod-a": "w1", "pod-b": "w2", "pod-c": "w1"},
    )
    assert verdict.rates.text() == (
        "false alarms 0.001, power 0.99 against any split whose largest/smallest share is 1.5 "
        "or more (3 pods)"
    )
    shares = verdict.shares
    assert shares.expected == {pod: 1 / 3 for pod in PODS}
    low, high = shares.band["pod-a"]
    assert low < 1 / 3 < high
    assert shares.colour_by["pod-c"] == "w1"
    # The band is where an even split stays with chance 1 - alpha: on 900 draws, about 4 points.
    assert 0.03 < high - 1 / 3 < 0.06


def test_count_by_names_unlabelled_answers():
    assert balance.count_by(["a", None, "a"]) == {"a": 2, "<none>": 1}
