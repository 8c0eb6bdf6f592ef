"""Telling kube-proxy's modes apart from the order in which connections reach the pods, on
sequences simulated for each mode (IPVS cannot run on this project's machines)."""

import random

import pytest

from kubeverify import proxymode
from kubeverify.proxymode import RANDOM, ROUND_ROBIN

PODS = ["pod-a", "pod-b", "pod-c"]


def iptables(rng, pods=PODS, n=proxymode.SEQUENCE_LENGTH):
    return [rng.choice(pods) for _ in range(n)]


def ipvs_round_robin(rng, pods=PODS, n=proxymode.SEQUENCE_LENGTH, others=0.2):
    """Round robin over the pods, with a share of the connections taken by other clients in
    between (each skips this client's next pod)."""
    sequence, position = [], rng.randrange(len(pods))
    while len(sequence) < n:
        while rng.random() < others:
            position += 1
        sequence.append(pods[position % len(pods)])
        position += 1
    return sequence


@pytest.mark.parametrize("pods", [PODS, [*PODS, "pod-d", "pod-e"]])
def test_random_picks_are_seen_as_random_but_for_the_false_alarm_rate(pods):
    rng = random.Random(20261125)
    alarms = sum(
        proxymode.fingerprint(iptables(rng, pods), len(pods)).pattern == ROUND_ROBIN
        for _ in range(3000)
    )
    assert alarms / 3000 <= 0.004  # alpha 0.001


@pytest.mark.parametrize("pods", [PODS, [*PODS, "pod-d", "pod-e"]])
@pytest.mark.parametrize("others", [0.0, 0.2, 0.4])
def test_round_robin_is_seen_as_round_robin_even_with_other_clients_between(pods, others):
    rng = random.Random(7)
    missed = sum(
        proxymode.fingerprint(ipvs_round_robin(rng, pods, others=others), len(pods)).pattern
        == RANDOM
        for _ in range(1000)
    )
    assert missed / 1000 <= 0.01


def test_a_mode_and_traffic_that_disagree_are_named():
    rng = random.Random(3)
    random_seen = proxymode.fingerprint(iptables(rng), 3)
    round_robin_seen = proxymode.fingerprint(ipvs_round_robin(rng), 3)
    assert proxymode.agreement("iptables", random_seen) is None
    assert proxymode.agreement("ipvs", round_robin_seen) is None
    assert proxymode.agreement(None, round_robin_seen) is None  # nothing to hold it to
    problem = proxymode.agreement("iptables", round_robin_seen)
    assert problem.startswith("kube-proxy runs iptables, which picks random per connection")
    assert "round robin" in problem
    assert "ipvs, which picks round robin" in proxymode.agreement("ipvs", random_seen)


def test_the_configured_mode_is_read_from_what_the_report_records():
    assert proxymode.configured_mode("iptables (the default)") == "iptables"
    assert proxymode.configured_mode("ipvs") == "ipvs"
    assert proxymode.configured_mode("unknown (ApiException)") is None


def test_too_short_a_sequence_is_an_error():
    with pytest.raises(ValueError, match="two pods and two connections"):
        proxymode.fingerprint(["pod-a"], 3)
