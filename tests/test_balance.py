"""The statistics that judge load balancing, on counts made up to be balanced or not."""

import math

import numpy as np
import pytest
from scipy import stats

from kubeverify import balance
from kubeverify.balance import Transport, UnfitTransport, judge_balance

PODS = ["pod-a", "pod-b", "pod-c"]
FRESH = Transport.NEW_CONNECTION_PER_REQUEST


def test_skewed_shares_give_one_pod_skew_times_each_other_share():
    shares = balance.skewed_shares(3, 1.5)
    assert math.isclose(sum(shares), 1.0)
    assert math.isclose(shares[0] / shares[1], 1.5)
    assert shares[1] == shares[2]


def test_effect_size_is_zero_for_a_uniform_split():
    assert balance.effect_size([0.25] * 4) == 0


def test_required_requests_reach_the_power_and_one_fewer_does_not():
    n = balance.required_requests(3, skew=1.5, alpha=0.001, target_power=0.99)
    assert balance.power(n, 3, 1.5, 0.001) >= 0.99
    assert balance.power(n - 1, 3, 1.5, 0.001) < 0.99
    # w = 0.202 and df 2 give about 860 by the noncentral approximation, which is optimistic
    assert balance.approximate_power(n, 3) > 0.99
    assert 860 < n < 1000


def test_power_holds_on_traffic_drawn_independently_of_the_calculation():
    n = balance.required_requests(3)
    rng = np.random.default_rng(12345)
    draws = rng.multinomial(n, balance.skewed_shares(3), size=4000)
    rejected = sum(stats.chisquare(row).pvalue < balance.ALPHA for row in draws)
    assert rejected / 4000 >= 0.985  # 0.99, less the noise of 4000 draws (sd 0.0016)


def test_more_pods_or_a_smaller_skew_need_more_requests():
    assert balance.required_requests(5) > balance.required_requests(3)
    assert balance.required_requests(3, skew=1.2) > balance.required_requests(3, skew=1.5)


def test_even_split_is_balanced():
    verdict = judge_balance({"pod-a": 290, "pod-b": 305, "pod-c": 300}, PODS, FRESH)
    assert verdict.balanced
    assert verdict.p_value > 0.5
    assert "balanced" in verdict.explain()


def test_a_1_5_to_1_skew_at_the_power_calculated_count_is_unbalanced():
    n = balance.required_requests(3)
    counts = dict(zip(PODS, (round(n * s) for s in balance.skewed_shares(3)), strict=True))
    verdict = judge_balance(counts, PODS, FRESH)
    assert not verdict.balanced
    assert verdict.p_value < balance.ALPHA
    assert "UNBALANCED" in verdict.explain()


def test_all_requests_on_one_pod_is_unbalanced_and_names_the_idle_pods():
    verdict = judge_balance({"pod-b": 900}, PODS, FRESH)
    assert not verdict.balanced
    assert verdict.missing == ("pod-a", "pod-c")
    assert verdict.max_min_ratio == math.inf
    assert "received no request: pod-a, pod-c" in verdict.explain()


def test_an_answer_from_a_pod_that_is_not_ready_is_unbalanced():
    verdict = judge_balance({"pod-a": 300, "pod-b": 300, "pod-c": 300, "old-pod": 4}, PODS, FRESH)
    assert verdict.unexpected == ("old-pod",)
    assert not verdict.balanced


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


def test_count_by_names_unlabelled_answers():
    assert balance.count_by(["a", None, "a"]) == {"a": 2, "<none>": 1}
