"""The Deployment heals, rolls and moves off a drained node while traffic runs, and ClientIP
affinity holds through the rollout."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from kubeverify import affinity, clients, drain
from kubeverify.kube import DeletionTimes
from kubeverify.stage import settle
from kubeverify.traffic import BackgroundTraffic
from kubeverify.verdict import Verdict

RECOVERY_DEADLINE = 90
ROLLOUT_DEADLINE = 240
ANSWERS_AFTER = 5  # each client's, once the rollout settled: on the pod it ended on


@dataclass(frozen=True)
class Rollout:
    """What one rollout restart under traffic saw: the verdict on the traffic from this
    machine, and those on the in-cluster clients (None, and why, where there are none)."""

    before: list[str]
    after: list[str]
    no_failures: Verdict
    affinity: Verdict | None = None
    control: Verdict | None = None
    why_no_clients: str = ""
    clients_failed: str = ""  # the clients' own failure: the affinity check's, not the rollout's


class Resilience:
    """The Deployment heals, rolls and moves off a drained node while traffic runs: no request
    fails, a drain keeps the PodDisruptionBudget (watched), and ClientIP affinity holds each
    client in the cluster on its pod through a rollout."""

    def test_deleted_pod_is_replaced_within_the_deadline(
        self, deployment, settled_pods, endpoint, target, record
    ):
        victim = settled_pods[0]
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.delete_pod(victim)
            pods = deployment.wait_settled(target.replicas, timeout=RECOVERY_DEADLINE)
            ended = time.monotonic()
        verdict = record(traffic.verdict(started, ended, f"deleting {victim}"))
        assert victim not in pods
        assert len(pods) == target.replicas
        assert verdict.passed, verdict.explain()

    def test_node_drain_fails_no_request_and_keeps_the_budget(
        self, kube, deployment, settled_pods, endpoint, target, record, run
    ):
        # Before the rollout below, which spreads the pods over the nodes again.
        node, why_not = drain.fullest_node(kube, target.selector)
        if node is None:
            pytest.skip(why_not)
        try:
            drained, lost, budget = drain.under_traffic(
                kube,
                endpoint,
                target.selector,
                node,
                lambda: deployment.wait_settled(target.replicas, timeout=ROLLOUT_DEADLINE),
                say=run.timer.note,
            )
        except drain.EvictionRefused as refused:
            pytest.fail(str(refused), pytrace=False)
        record(lost)
        record(budget)
        assert lost.passed, lost.explain()
        assert budget.as_it_must, budget.explain()
        assert not drained.left_on_node, f"still on {node}: {drained.left_on_node}"

    @pytest.fixture(scope="class")
    @classmethod
    def rollout(cls, stage, kube, deployment, endpoint, target) -> Rollout:
        """One rollout restart for the checks on it: traffic from this machine to the Service,
        and clients in the cluster on two copies of it, one with ClientIP affinity (several
        clients need pods of their own: affinity keys on the address), one without."""
        before = settle(deployment, endpoint, target.replicas)
        with ExitStack() as stack:
            pair, why_not, failed = None, "", ""
            if stage.provider.builds:
                try:
                    tag = stage.provider.make_available(clients.IMAGE)
                    pair = stack.enter_context(
                        clients.with_and_without_affinity(kube, target, tag, before)
                    )
                except Exception as error:  # the affinity check fails on it, not the rollout
                    failed = f"{type(error).__name__}: {error}"
            else:
                why_not = (
                    f"the {stage.provider.name} provider pulls images, and kubeverify's client "
                    "image is published nowhere"
                )
            deletions = stack.enter_context(DeletionTimes(kube, target.selector).running())
            traffic = BackgroundTraffic(endpoint)
            with traffic.running():
                started, wall_started = time.monotonic(), time.time()
                deployment.rollout_restart()
                after = deployment.wait_settled(target.replicas, timeout=ROLLOUT_DEADLINE)
                ended, wall_ended = time.monotonic(), time.time()
            lost = traffic.verdict(started, ended, "rollout restart")
            if pair is None:
                return Rollout(before, after, lost, why_no_clients=why_not, clients_failed=failed)
            try:
                judged = cls._affinity(pair, deletions, after, wall_started, wall_ended, target)
            except Exception as error:
                return Rollout(
                    before, after, lost, clients_failed=f"{type(error).__name__}: {error}"
                )
        return Rollout(before, after, lost, *judged)

    @staticmethod
    def _affinity(pair, deletions, after, started, ended, target) -> list[Verdict]:
        """The verdicts on the clients with affinity and on those without (the control)."""
        for group in pair:
            group.wait_answered(ended, ANSWERS_AFTER)
        labels = (
            "ClientIP affinity holds through a rollout",
            "ClientIP affinity holds through a rollout, negative control: a copy of the Service "
            "without affinity",
        )
        return [
            affinity.verdict(
                group.answers(),
                deletions.times(),
                set(after),
                started=started,
                ended=ended,
                pods=target.replicas,
                label=label,
                control=control,
            )
            for group, label, control in zip(pair, labels, (False, True), strict=True)
        ]

    def test_rollout_restart_fails_no_request(self, rollout, record):
        verdict = record(rollout.no_failures)
        assert not set(rollout.after) & set(rollout.before), "some pods were not replaced"
        assert verdict.passed, verdict.explain()

    def test_client_ip_affinity_holds_through_the_rollout(self, rollout, record):
        """Several clients in the cluster on a copy of the Service with ClientIP affinity: no
        request fails, each stays on one pod while that pod lives and ends on one new pod; on
        a copy without affinity, the same verdict fails."""
        if rollout.clients_failed:
            pytest.fail(f"the clients in the cluster failed: {rollout.clients_failed}")
        if rollout.affinity is None:
            pytest.skip(f"no clients in the cluster: {rollout.why_no_clients}")
        holds = record(rollout.affinity)
        control = record(rollout.control)
        assert holds.passed, holds.explain()
        assert not control.passed, control.explain()
