"""The standard checks, as classes a test file subclasses to run them on its own target:

    from kubeverify import suites

    class TestScaling(suites.Scaling):
        pass

Each assessment starts from the target's replica count, settled, every pod having answered
through the Service (the `settled_pods` fixture), and reads like the behaviour it checks.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager

import httpx
import pytest

from kubeverify import balance, proxymode, sequential
from kubeverify.traffic import (
    BackgroundTraffic,
    fresh_connection_requests,
    keep_alive_connections,
    keep_alive_requests,
    send,
    shared_connections,
    wait_until_every_pod_answers,
)
from kubeverify.waiting import Observation, wait_until

RECOVERY_DEADLINE = 90
ROLLOUT_DEADLINE = 240
SCALE_UP_BY = 2
PORT_FORWARD_REQUESTS = 60
KEEP_ALIVE_CLIENTS = 6
KEEP_ALIVE_REQUESTS = 20
KEEP_ALIVE_REQUESTS_EACH = 3  # on each connection of the keep-alive balance check


@pytest.mark.usefixtures("settled_pods")
class Replicas:
    """The Deployment as applied: every replica ready, on the workers, behind the Service."""

    def test_deployment_has_every_replica_ready(self, deployment, target):
        status = deployment.read().status
        counts = (status.replicas, status.ready_replicas, status.available_replicas)
        assert counts == (target.replicas,) * 3, f"replicas, ready, available: {counts}"

    def test_pods_run_only_on_workers_spread_within_one_of_each_other(self, kube, deployment):
        nodes = kube.nodes()
        workers = {name for name, control_plane in nodes.items() if not control_plane}
        placed = {pod.name: pod.node for pod in deployment.pods()}
        assert set(placed.values()) <= workers, f"pods on control-plane nodes: {placed}"
        per_worker = Counter({worker: 0 for worker in workers})
        per_worker.update(placed.values())
        assert max(per_worker.values()) - min(per_worker.values()) <= 1, (
            f"pods per worker {dict(per_worker)}: one node failing would take more than its share"
        )

    def test_service_endpoints_equal_the_ready_pods(self, kube, deployment, target):
        ready_pods = {pod.name for pod in deployment.pods() if pod.ready}
        for service in target.services:
            ready, not_ready = kube.endpoint_pods(service.name)
            assert (ready, not_ready) == (ready_pods, set()), service.name

    def test_probe_is_answered_through_the_service_by_a_pod_that_names_itself(
        self, endpoint, deployment
    ):
        with httpx.Client(base_url=endpoint.base_url, timeout=5) as client:
            outcome = send(client, endpoint)
        assert outcome.ok, outcome.error
        pods = {pod.name: pod.node for pod in deployment.pods()}
        assert outcome.pod in pods, f"{endpoint.pod_header}: {outcome.pod} is none of {pods}"
        if endpoint.node_header:
            assert outcome.node == pods[outcome.pod], f"{endpoint.node_header}: {outcome.node}"


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


def fresh_connection_draws(endpoint, count: int) -> list:
    """`count` draws of kube-proxy's, a request on a new connection each, proven so by the
    connection each pod names (when the target names that header)."""
    outcomes = fresh_connection_requests(endpoint, count)
    _assert_a_connection_each(endpoint, outcomes)
    return outcomes


def keep_alive_draws(endpoint, count: int) -> list:
    """`count` draws of kube-proxy's, a keep-alive connection each carrying a few requests:
    every request on a connection reaches its one pod, whose answer stands for the draw."""
    draws = []
    for requests in keep_alive_connections(endpoint, count, KEEP_ALIVE_REQUESTS_EACH):
        failed = [o for o in requests if not o.ok]
        if failed:
            draws.append(failed[0])
            continue
        pods = {o.pod for o in requests}
        assert len(pods) == 1, f"the requests of one keep-alive connection reached {pods}"
        if endpoint.connection_header:
            _assert_one_connection(endpoint, requests)
        draws.append(requests[0])
    return draws


def balance_verdict(endpoint, pods, run, report, label, how, draws=fresh_connection_draws):
    """Traffic judged for balance, one draw of kube-proxy's at a time (a fresh connection's
    request, or a keep-alive connection): by the group-sequential test (stopping as soon as its
    bounds decide), or with `how == "fixed"` by the fixed-size test."""
    design = sequential.design(len(pods))
    run.timer.note(balance.detectable(design.fixed, len(pods)))
    outcomes, decided = [], None
    if how == "fixed":
        outcomes = draws(endpoint, design.fixed)
    else:
        for look, size in enumerate(design.sizes):
            outcomes += draws(endpoint, size - len(outcomes))
            counts = balance.count_by(o.pod for o in outcomes)
            statistic = balance.chi_square([counts.get(pod, 0) for pod in pods])
            decided = design.decide(look, float(statistic[0]))
            if decided or any(not o.ok for o in outcomes):
                break
        run.timer.note(
            f"sequential test: {decided} after {len(outcomes)} requests (look "
            f"{look + 1} of {len(design.sizes)}; the fixed-size test sends {design.fixed}, "
            "with the same alpha and power)"
        )
    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} requests failed, e.g. {failed[:3]}"
    verdict = balance.judge_balance(
        balance.count_by(o.pod for o in outcomes),
        pods,
        balance.Transport.NEW_CONNECTION_PER_REQUEST,
        decided=decided,
    )
    report.add_distribution(label, verdict, {o.pod: o.node for o in outcomes if o.node})
    report.figures[f"balance_requests_over_{len(pods)}_pods"] = {
        "test": how,
        "sent": len(outcomes),
        "fixed_size": design.fixed,
    }
    return verdict


def _assert_a_connection_each(endpoint, outcomes) -> None:
    """The transport proven, not declared: by the connection each pod names, every request
    came on a connection of its own (kube-proxy picks a pod per connection)."""
    if not endpoint.connection_header:
        return  # the target names no such header: the transport stays declared
    _assert_named(endpoint, outcomes)
    shared = shared_connections(outcomes)
    assert not shared, (
        f"{shared} of {len(outcomes)} requests came on a connection an earlier one used (by "
        f"{endpoint.connection_header}): their counts judge connections, not requests"
    )


def _assert_one_connection(endpoint, outcomes) -> None:
    """By the connection each pod names, every request of one keep-alive client came on its
    one connection (and a reuse shows, so the new-connection proof can fail)."""
    _assert_named(endpoint, outcomes)
    reused = shared_connections(outcomes)
    assert reused == len(outcomes) - 1, (
        f"{endpoint.connection_header} named {len(outcomes) - reused} connections for the "
        f"{len(outcomes)} requests of one keep-alive client: {outcomes[:3]}"
    )


def _assert_named(endpoint, outcomes) -> None:
    unnamed = sum(o.connection is None for o in outcomes)
    assert not unnamed, (
        f"{unnamed} of {len(outcomes)} answers had no {endpoint.connection_header} header, "
        "which the target says names each connection"
    )


class Scaling:
    """Scaling by re-applying the Deployment with another count, while traffic runs."""

    @pytest.fixture(autouse=True)
    def _back_to_the_target_count(self, deployment, target):
        """A failed scaling assessment must not leave the next suite on another count."""
        yield
        deployment.apply(replicas=target.replicas)

    def test_scaling_down_by_one_removes_one_pod_and_fails_no_request(
        self, deployment, settled_pods, kube, endpoint, target, run
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
            f"{pre_stop if pre_stop is not None else 'none'}); {traffic.summary()}"
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
        run.timer.note(traffic.lost_none(started, gone_at, f"scale {target.replicas} -> {fewer}"))
        answered_after = {o.pod for o in traffic.outcomes if o.started > gone_at}
        assert answered_after == set(remaining), answered_after

    def test_scaling_up_reaches_every_new_pod_evenly_then_back(
        self, deployment, settled_pods, endpoint, target, report, run, pytestconfig
    ):
        more = target.replicas + SCALE_UP_BY
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.apply(replicas=more)
            pods = deployment.wait_settled(more)
            ended = time.monotonic()
        run.timer.note(traffic.lost_none(started, ended, f"scale {target.replicas} -> {more}"))
        warm_up = wait_until_every_pod_answers(endpoint, pods)
        run.timer.note(f"scale {target.replicas} -> {more}: every pod answered after {warm_up}")
        verdict = balance_verdict(
            endpoint,
            pods,
            run,
            report,
            f"{more} replicas, new connection per request",
            pytestconfig.getoption("balance_test"),
        )
        assert not verdict.missing, verdict.explain()
        assert verdict.balanced, verdict.explain()

        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.apply(replicas=target.replicas)
            back = deployment.wait_settled(target.replicas)
            ended = time.monotonic()
        assert set(back) < set(pods)
        run.timer.note(traffic.lost_none(started, ended, f"scale {more} -> {target.replicas}"))


@pytest.mark.usefixtures("settled_pods")
class Balance:
    """How the Service spreads requests: fresh connections balance; port-forward and keep-alive
    pin, and are shown never to judge balancing."""

    # Fresh connections, a request each; and keep-alive connections, each one draw (what
    # long-lived clients get: kube-proxy picks a pod per connection), judged with the same test.
    @pytest.mark.parametrize(
        ("label", "draws"),
        [
            ("Service, new connection per request", fresh_connection_draws),
            ("Service, keep-alive connections (one draw each)", keep_alive_draws),
        ],
        ids=["fresh-connections", "keep-alive-connections"],
    )
    def test_every_ready_pod_receives_a_uniform_share_of_the_connections(
        self, settled_pods, endpoint, report, run, pytestconfig, label, draws
    ):
        how = pytestconfig.getoption("balance_test")
        verdict = balance_verdict(endpoint, settled_pods, run, report, label, how, draws=draws)
        assert verdict.balanced, verdict.explain()

    def test_kube_proxy_spreads_connections_as_its_mode_says(
        self, settled_pods, endpoint, stage, run, report
    ):
        # One connection after another, so that their order is the order kube-proxy chose in.
        outcomes = fresh_connection_requests(endpoint, proxymode.SEQUENCE_LENGTH, concurrency=1)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        seen = proxymode.fingerprint([o.pod for o in outcomes], len(settled_pods))
        kind_node = getattr(stage.cluster, "name", None)
        asked = proxymode.asked_mode(f"{kind_node}-control-plane") if kind_node else None
        configured = proxymode.configured_mode(stage.versions.get("kube_proxy_mode", ""))
        report.figures["kube_proxy_mode"] = {
            "asked": asked,
            "configured": configured,
            "observed": seen.pattern,
            "repeats": seen.repeats,
            "connections": seen.connections,
        }
        run.timer.note(
            f"kube-proxy mode: {asked or 'not asked'} (its /proxyMode), "
            f"{configured or 'unknown'} (its configuration); traffic: {seen.explain()}"
        )
        assert asked is None or configured is None or asked == configured, (
            f"kube-proxy says it runs {asked}, its configuration says {configured}"
        )
        problem = proxymode.agreement(asked or configured, seen)
        assert problem is None, problem

    def test_port_forward_sends_every_request_to_one_pod(self, kube, endpoint, target, run):
        service = next((s for s in target.services if s.port), None)
        if service is None:
            pytest.skip("no service in the target names its port, so none can be port-forwarded")
        with kube.port_forward(f"service/{service.name}", service.port) as forwarded:
            outcomes = fresh_connection_requests(
                endpoint.at(forwarded), PORT_FORWARD_REQUESTS, concurrency=2
            )
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        counts = balance.count_by(o.pod for o in outcomes)
        run.timer.note(f"{PORT_FORWARD_REQUESTS} requests through kubectl port-forward: {counts}")
        assert len(counts) == 1, f"port-forward spread requests: {counts}"
        with pytest.raises(balance.UnfitTransport, match="single pod"):
            balance.judge_balance(counts, list(counts), balance.Transport.PORT_FORWARD)

    def test_keep_alive_client_sticks_to_one_pod_per_connection(self, settled_pods, endpoint, run):
        pods_per_client = []
        for _ in range(KEEP_ALIVE_CLIENTS):
            outcomes = keep_alive_requests(endpoint, KEEP_ALIVE_REQUESTS)
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
            pods_per_client.append(balance.count_by(o.pod for o in outcomes))
            if endpoint.connection_header:
                _assert_one_connection(endpoint, outcomes)
        run.timer.note(
            f"{KEEP_ALIVE_CLIENTS} keep-alive clients x {KEEP_ALIVE_REQUESTS} requests: "
            f"{pods_per_client}"
        )
        assert all(len(counts) == 1 for counts in pods_per_client), pods_per_client
        with pytest.raises(balance.UnfitTransport, match="per connection"):
            balance.judge_balance(pods_per_client[0], settled_pods, balance.Transport.KEEP_ALIVE)


class Resilience:
    """The Deployment heals and rolls while traffic runs."""

    def test_deleted_pod_is_replaced_within_the_deadline(
        self, deployment, settled_pods, endpoint, target, run, report
    ):
        victim = settled_pods[0]
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.delete_pod(victim)
            pods = deployment.wait_settled(target.replicas, timeout=RECOVERY_DEADLINE)
            ended = time.monotonic()
        run.timer.note(
            f"deleted {victim}: {target.replicas} ready again in {ended - started:.1f} s"
        )
        report.figures["pod_deletion"] = {
            "recovery_seconds": round(ended - started, 1),
            "requests": len(traffic.outcomes),
            "failed": len(traffic.failures),
        }
        assert victim not in pods
        assert len(pods) == target.replicas
        run.timer.note(traffic.lost_none(started, ended, f"deleting {victim}"))

    def test_rollout_restart_fails_no_request(
        self, deployment, settled_pods, endpoint, target, run, report
    ):
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.rollout_restart()
            pods = deployment.wait_settled(target.replicas, timeout=ROLLOUT_DEADLINE)
            ended = time.monotonic()
        run.timer.note(f"rollout restart done in {ended - started:.1f} s")
        report.figures["rollout_restart"] = {
            "seconds": round(ended - started, 1),
            "requests": len(traffic.outcomes),
            "failed": len(traffic.failures),
        }
        assert not set(pods) & set(settled_pods), "some pods were not replaced"
        run.timer.note(traffic.lost_none(started, ended, "rollout restart"))


AFFINITY_TIMEOUT = 3  # seconds: short, so that expiry is seen within the check
AFFINITY_REQUESTS = 100
EXPIRY_CYCLES = 8


@contextmanager
def client_ip_affinity(kube, service: str, timeout: int):
    """The Service with `sessionAffinity: ClientIP` for the block, as it was after it."""
    before = kube.core.read_namespaced_service(service, kube.namespace).spec
    restore = {
        "sessionAffinity": before.session_affinity or "None",
        "sessionAffinityConfig": None,
    }
    kube.kubectl(
        "patch", "service", service, "--type=merge", "-p",
        json.dumps({"spec": {
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": timeout}},
        }}),
    )  # fmt: skip
    try:
        yield
    finally:
        kube.kubectl(
            "patch", "service", service, "--type=merge", "-p", json.dumps({"spec": restore})
        )


def _pinned(endpoint, count: int) -> Observation:
    """Whether `count` fresh connections, one after another, all reached one pod."""
    pods = {o.pod for o in fresh_connection_requests(endpoint, count, concurrency=1)}
    return Observation(len(pods) == 1, f"{count} connections reached {sorted(pods)}")


class Affinity:
    """`sessionAffinity: ClientIP` does what it says: while it holds, every connection of one
    client reaches one pod; once it expires, the next connection picks a pod anew; and a
    Service without it fails the same check."""

    def test_client_ip_affinity_pins_a_client_and_lets_go_when_it_expires(
        self, settled_pods, kube, endpoint, target, run, report
    ):
        service = next(s.name for s in target.services if s.url)
        pods = len(settled_pods)
        with client_ip_affinity(kube, service, AFFINITY_TIMEOUT):
            # kube-proxy applies the change a moment later: wait until it pins this client.
            wait_until(
                lambda: _pinned(endpoint, 20), what=f"{service} pinning", timeout=60, interval=1
            )
            held = fresh_connection_requests(endpoint, AFFINITY_REQUESTS, concurrency=1)
            reached = balance.count_by(o.pod for o in held)
            first_after_expiry = []
            for _ in range(EXPIRY_CYCLES):
                # The idle time is the behaviour under test: affinity must lapse after it.
                time.sleep(AFFINITY_TIMEOUT + 1)
                (outcome,) = fresh_connection_requests(endpoint, 1, concurrency=1)
                first_after_expiry.append(outcome.pod)
        run.timer.note(
            f"ClientIP affinity ({AFFINITY_TIMEOUT} s): {AFFINITY_REQUESTS} connections reached "
            f"{reached}: a break rate below {3 / AFFINITY_REQUESTS:.0%} with 95% confidence; "
            f"after each expiry: {first_after_expiry}"
        )
        report.figures["session_affinity"] = {
            "while_held": reached,
            "after_expiry": first_after_expiry,
        }
        assert all(o.ok for o in held), [o.error for o in held if not o.ok][:3]
        assert len(reached) == 1, f"affinity broke: {reached}"
        # Random picks after expiry all land on one pod with chance pods^-(cycles - 1).
        assert len(set(first_after_expiry)) > 1, (
            f"after {EXPIRY_CYCLES} expiries every new connection still reached "
            f"{first_after_expiry[0]} (by chance: {pods ** -(EXPIRY_CYCLES - 1):.1e})"
        )

    def test_a_service_without_affinity_fails_the_same_check(self, settled_pods, endpoint, run):
        seen = _pinned(endpoint, AFFINITY_REQUESTS)
        run.timer.note(f"without affinity: {seen.detail}")
        assert not seen.done, "a Service without affinity pinned a client: the check is blind"
