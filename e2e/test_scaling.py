"""Scaling by re-applying the Deployment, as the tutorial does, while traffic runs."""

import time

import pytest

from e2e.harness import balance, deploy
from e2e.harness.traffic import (
    BackgroundTraffic,
    fresh_connection_requests,
    wait_until_every_pod_answers,
)
from e2e.harness.waiting import Observation, wait_until


def _terminating_pod(target) -> Observation:
    terminating = [p.name for p in target.pods(deploy.SELECTOR) if p.terminating]
    return Observation(
        len(terminating) == 1,
        f"terminating pods {terminating}",
        terminating[0] if terminating else None,
    )


def _left_endpoints(target, pod: str) -> Observation:
    ready, not_ready = target.endpoint_pods(deploy.NODE_PORT_SERVICE)
    return Observation(pod not in ready | not_ready, f"endpoints {sorted(ready | not_ready)}")


def _requests_after(traffic: BackgroundTraffic, moment: float, count: int) -> Observation:
    seen = sum(1 for o in traffic.outcomes if o.started > moment)
    return Observation(seen >= count, f"{seen} requests since")


def test_scaling_down_to_two_removes_one_pod_and_fails_no_request(
    deployment, three_replicas, target, service_url, run
):
    traffic = BackgroundTraffic(service_url)
    with traffic.running():
        deployment.apply(replicas=2)
        removed = wait_until(
            lambda: _terminating_pod(target), what="one pod terminating", timeout=30, interval=0.1
        ).value
        wait_until(
            lambda: _left_endpoints(target, removed),
            what=f"{removed} out of endpoints",
            timeout=30,
            interval=0.1,
        )
        left_at = time.monotonic()
        remaining = deployment.wait_settled(2)
        gone_at = time.monotonic()
        wait_until(
            lambda: _requests_after(traffic, gone_at, 50), what="traffic after settling", timeout=30
        )

    reached = [o.started - left_at for o in traffic.outcomes if o.pod == removed]
    after_leaving = [delay for delay in reached if delay > 0]
    pre_stop = deployment.pre_stop_sleep_seconds()
    run.timer.note(
        f"scale 3 -> 2: {removed} left the endpoints, was gone {gone_at - left_at:.1f} s later; "
        f"{len(after_leaving)} requests reached it after it left, the last "
        f"{max(after_leaving, default=0):.1f} s after (its preStop sleep: {pre_stop:g} s); "
        f"{traffic.summary()}"
    )
    assert sorted(remaining) == sorted(set(three_replicas) - {removed})
    assert {p.name for p in target.pods(deploy.SELECTOR)} == set(remaining)
    # Requests routed by rules not yet rewritten are served while the preStop sleep lasts; once
    # it ends they would fail. Half the sleep is the bound, so a thin margin shows up here,
    # naming the manifest, before a slower cluster turns it into failed requests.
    assert max(after_leaving, default=0) < pre_stop / 2, (
        f"requests reached {removed} up to {max(after_leaving):.1f} s after it left the "
        f"endpoints: over half its {pre_stop:g} s preStop sleep (manifests/deployment.yaml)"
    )
    assert not traffic.failures, traffic.summary()
    answered_after = {o.pod for o in traffic.outcomes if o.started > gone_at}
    assert answered_after == set(remaining), answered_after


def test_scaling_up_to_five_reaches_all_five_then_back_to_three(
    deployment, three_replicas, service_url, report, run
):
    deployment.apply(replicas=5)
    five = deployment.wait_settled(5)
    warm_up = wait_until_every_pod_answers(service_url, five)
    run.timer.note(f"scale 3 -> 5: every pod answered after {warm_up} requests")
    count = balance.required_requests(len(five))
    outcomes = fresh_connection_requests(service_url, count)
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]
    verdict = balance.judge_balance(
        balance.count_by(o.pod for o in outcomes),
        five,
        balance.Transport.NEW_CONNECTION_PER_REQUEST,
    )
    report.add_distribution("5 replicas, new connection per request", verdict)
    assert not verdict.missing, verdict.explain()
    assert verdict.balanced, verdict.explain()

    traffic = BackgroundTraffic(service_url)
    with traffic.running():
        deployment.apply(replicas=3)
        three = deployment.wait_settled(3)
    run.timer.note(f"scale 5 -> 3: {traffic.summary()}")
    assert set(three) < set(five)
    assert not traffic.failures, traffic.summary()


@pytest.fixture(autouse=True)
def _back_to_three(deployment):
    """A failed scaling assessment must not leave the next suite on another replica count."""
    yield
    deployment.apply(replicas=deploy.DEFAULT_REPLICAS)
