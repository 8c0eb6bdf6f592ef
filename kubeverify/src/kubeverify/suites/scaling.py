"""Scaling by re-applying the Deployment with another count, while traffic runs."""

from __future__ import annotations

import time

import pytest

from kubeverify.sampling import balance_verdict
from kubeverify.traffic import BackgroundTraffic, wait_until_every_pod_answers
from kubeverify.waiting import Observation, wait_until

SCALE_UP_BY = 2


def _terminating_pod(deployment) -> Observation:
    terminating = [p.name for p in deployment.pods() if p.terminating]
    return Observation(
        len(terminating) == 1,
        f"terminating pods {terminating}",
        terminating[0] if terminating else None,
    )


def _left_endpoints(kube, services, pod: str) -> Observation:
    behind = {name for s in services for name in set().union(*kube.endpoint_pods(s.name))}
    return Observation(pod not in behind, f"endpoints {sorted(behind)}")


def _requests_after(traffic: BackgroundTraffic, moment: float, count: int) -> Observation:
    seen = sum(1 for o in traffic.outcomes if o.started > moment)
    return Observation(seen >= count, f"{seen} requests since")


class Scaling:
    """Scaling by re-applying the Deployment with another count, while traffic runs."""

    @pytest.fixture(autouse=True)
    def _back_to_the_target_count(self, deployment, target):
        """A failed scaling assessment must not leave the next suite on another count."""
        yield
        deployment.apply(replicas=target.replicas)

    def test_scaling_down_by_one_removes_one_pod_and_fails_no_request(
        self, deployment, settled_pods, kube, endpoint, target, run, record
    ):
        traffic = BackgroundTraffic(endpoint)
        fewer = target.replicas - 1
        with traffic.running():
            started = time.monotonic()
            deployment.apply(replicas=fewer)
            removed = wait_until(
                lambda: _terminating_pod(deployment),
                what="one pod terminating",
                timeout=30,
                interval=0.1,
            ).value
            wait_until(
                lambda: _left_endpoints(kube, target.services, removed),
                what=f"{removed} out of endpoints",
                timeout=30,
                interval=0.1,
            )
            left_at = time.monotonic()
            remaining = deployment.wait_settled(fewer)
            gone_at = time.monotonic()
            wait_until(
                lambda: _requests_after(traffic, gone_at, 50),
                what="traffic after settling",
                timeout=30,
            )

        after_leaving = [o.started - left_at for o in traffic.outcomes if o.pod == removed]
        after_leaving = [delay for delay in after_leaving if delay > 0]
        pre_stop = deployment.pre_stop_sleep_seconds()
        run.timer.note(
            f"scale {target.replicas} -> {fewer}: {removed} left the endpoints, was gone "
            f"{gone_at - left_at:.1f} s later; {len(after_leaving)} requests reached it after "
            f"it left, the last {max(after_leaving, default=0):.1f} s after (preStop sleep: "
            f"{pre_stop if pre_stop is not None else 'none'})"
        )
        assert sorted(remaining) == sorted(set(settled_pods) - {removed})
        assert {p.name for p in deployment.pods()} == set(remaining)
        if pre_stop is not None:
            # Requests routed by rules not yet rewritten are served while the preStop sleep
            # lasts; once it ends they would fail. Half the sleep is the bound, so a thin margin
            # shows up here, naming the manifest, before a slower cluster fails requests.
            assert max(after_leaving, default=0) < pre_stop / 2, (
                f"requests reached {removed} up to {max(after_leaving):.1f} s after it left "
                f"the endpoints: over half its {pre_stop:g} s preStop sleep "
                f"(the Deployment {target.name} in {target.manifests})"
            )
        verdict = record(traffic.verdict(started, gone_at, f"scale {target.replicas} -> {fewer}"))
        assert verdict.passed, verdict.explain()
        answered_after = {o.pod for o in traffic.outcomes if o.started > gone_at}
        assert answered_after == set(remaining), answered_after

    def test_scaling_up_reaches_every_new_pod_evenly_then_back(
        self, deployment, settled_pods, endpoint, target, run, record, pytestconfig
    ):
        more = target.replicas + SCALE_UP_BY
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.apply(replicas=more)
            pods = deployment.wait_settled(more)
            ended = time.monotonic()
        verdict = record(traffic.verdict(started, ended, f"scale {target.replicas} -> {more}"))
        assert verdict.passed, verdict.explain()
        warm_up = wait_until_every_pod_answers(endpoint, pods)
        run.timer.note(f"scale {target.replicas} -> {more}: every pod answered after {warm_up}")
        verdict = record(
            balance_verdict(
                endpoint,
                pods,
                pytestconfig.getoption("balance_test"),
                label=f"balance over {more} replicas, a new connection per request",
                say=run.timer.note,
            )
        )
        assert verdict.passed, verdict.explain()

        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.apply(replicas=target.replicas)
            back = deployment.wait_settled(target.replicas)
            ended = time.monotonic()
        assert set(back) < set(pods)
        verdict = record(traffic.verdict(started, ended, f"scale {more} -> {target.replicas}"))
        assert verdict.passed, verdict.explain()
