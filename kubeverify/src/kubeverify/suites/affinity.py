"""`sessionAffinity: ClientIP`: while it holds, every connection of one client reaches one pod;
once it expires, the next connection picks a pod anew; a Service without it fails the check."""

from __future__ import annotations

import math
import time

from kubeverify import balance
from kubeverify.clients import client_ip_affinity
from kubeverify.traffic import fresh_connection_requests
from kubeverify.verdict import ErrorRates, Verdict
from kubeverify.waiting import Observation, wait_until

AFFINITY_TIMEOUT = 1  # seconds: the shortest the API takes, so that expiry is seen within the check
IDLE_MARGIN = 1  # seconds past the timeout: kube-proxy's rules count whole seconds
AFFINITY_REQUESTS = 100


def expiry_cycles(pods: int, alpha: float = balance.ALPHA) -> int:
    """Expiries enough that random picks after them all land on one pod with chance at most
    alpha, the check's false-alarm rate: 8 over 3 pods, 11 over 2."""
    return 1 + math.ceil(math.log(1 / alpha) / math.log(pods))


def held(reached: dict[str, int], *, control: bool = False) -> Verdict:
    """Every connection of one client reached one pod: a break rate below 3/n with 95%
    confidence (a client breaking away on 3/n of its connections or more stays on one pod at
    most 5% of the time); a Service that keeps its affinity never fails this."""
    connections = sum(reached.values())
    return Verdict(
        "ClientIP affinity holds a client on one pod",
        len(reached) == 1,
        f"{connections} connections of one client reached {reached}"
        + (f": a break rate below {3 / connections:.0%} with 95% confidence"
           if len(reached) == 1 else ""),
        ErrorRates(0.0, 0.95, f"a break rate of {3 / connections:.0%} or more"),
        {"reached": reached, "connections": connections},
        control=control,
    )  # fmt: skip


def expires(first_after_expiry: list[str | None], pods: int) -> Verdict:
    """After each expiry the next connection picks a pod anew: with random picks, all of them
    land on one pod with chance pods^-(cycles - 1), the false-alarm rate (at most alpha with
    `expiry_cycles`); affinity that never expires always fails."""
    cycles = len(first_after_expiry)
    distinct = set(first_after_expiry)
    return Verdict(
        "ClientIP affinity lets go when it expires",
        len(distinct) > 1,
        f"after each of {cycles} expiries the next connection reached {first_after_expiry}: "
        f"{len(distinct)} distinct pods",
        ErrorRates(pods ** -(cycles - 1), 1.0, "affinity that never expires"),
        {"after_expiry": first_after_expiry, "distinct": len(distinct)},
    )


def _pinned(endpoint, count: int) -> Observation:
    """Whether `count` fresh connections, one after another, all reached one pod."""
    reached = balance.count_by(o.pod for o in fresh_connection_requests(endpoint, count, 1))
    return Observation(len(reached) == 1, f"{count} connections reached {reached}", reached)


class Affinity:
    """`sessionAffinity: ClientIP` does what it says: while it holds, every connection of one
    client reaches one pod; once it expires, the next connection picks a pod anew; and a
    Service without it fails the same check."""

    def test_client_ip_affinity_pins_a_client_and_lets_go_when_it_expires(
        self, settled_pods, kube, endpoint, target, record
    ):
        service = next(s.name for s in target.services if s.url)
        with kube.service_changed(service, client_ip_affinity(AFFINITY_TIMEOUT)):
            # kube-proxy applies the change a moment later: wait until it pins this client.
            wait_until(
                lambda: _pinned(endpoint, 20), what=f"{service} pinning", timeout=60, interval=1
            )
            outcomes = fresh_connection_requests(endpoint, AFFINITY_REQUESTS, concurrency=1)
            first_after_expiry = []
            for _ in range(expiry_cycles(len(settled_pods))):
                # The idle time is the behaviour under test: affinity must lapse after it.
                time.sleep(AFFINITY_TIMEOUT + IDLE_MARGIN)
                (outcome,) = fresh_connection_requests(endpoint, 1, concurrency=1)
                first_after_expiry.append(outcome.pod)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        holds = record(held(balance.count_by(o.pod for o in outcomes)))
        lets_go = record(expires(first_after_expiry, len(settled_pods)))
        assert holds.passed, holds.explain()
        assert lets_go.passed, lets_go.explain()

    def test_a_service_without_affinity_fails_the_same_check(self, settled_pods, endpoint, record):
        reached = _pinned(endpoint, AFFINITY_REQUESTS).value
        verdict = record(held(reached, control=True))
        assert not verdict.passed, "a Service without affinity pinned a client: the check is blind"
