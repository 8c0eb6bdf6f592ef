"""How the Service spreads connections over its pods, and the paths that never spread them."""

from __future__ import annotations

import pytest

from kubeverify import balance, health, proxymode
from kubeverify.sampling import (
    assert_one_connection,
    balance_sample,
    fresh_connection_draws,
    health_sample,
    keep_alive_draws,
)
from kubeverify.traffic import fresh_connection_requests, keep_alive_requests

PORT_FORWARD_REQUESTS = 60
KEEP_ALIVE_CLIENTS = 6
KEEP_ALIVE_REQUESTS = 20


@pytest.mark.usefixtures("settled_pods")
class Balance:
    """How the Service spreads requests: fresh connections balance, and no pod answers them
    worse than its siblings; port-forward and keep-alive pin, and are shown never to judge
    balancing."""

    # Fresh connections, a request each; and keep-alive connections, each one draw (what
    # long-lived clients get: kube-proxy picks a pod per connection), judged with the same test.
    @pytest.mark.parametrize(
        ("label", "draws"),
        [
            ("balance over the Service, a new connection per request", fresh_connection_draws),
            ("balance over the Service, keep-alive connections, one draw each", keep_alive_draws),
        ],
        ids=["fresh-connections", "keep-alive-connections"],
    )
    def test_every_ready_pod_receives_a_uniform_share_of_the_connections(
        self, settled_pods, endpoint, record, run, pytestconfig, target, label, draws
    ):
        how = pytestconfig.getoption("balance_test")
        verdict, outcomes = balance_sample(
            endpoint, settled_pods, how, draws, label=label, say=run.timer.note
        )
        verdicts = [record(verdict)]
        if draws is fresh_connection_draws:
            # The same draws, pod by pod, and more until per-pod health reaches its own power:
            # one replica sick beside well siblings (errors, or latency past 1.5 times theirs)
            # is averaged away in the balance and the p95.
            outcomes, ran_out = health_sample(endpoint, settled_pods, outcomes, say=run.timer.note)
            answers = health.by_pod(outcomes, settled_pods)
            verdicts.append(
                record(health.verdict(answers, ran_out=ran_out, enforce_power=target.enforce_power))
            )
        failed = [v.explain() for v in verdicts if not v.passed]
        assert not failed, "\n".join(failed)

    def test_kube_proxy_spreads_connections_as_its_mode_says(
        self, settled_pods, endpoint, stage, record
    ):
        # One connection after another, so that their order is the order kube-proxy chose in.
        length = proxymode.sequence_length(len(settled_pods))
        outcomes = fresh_connection_requests(endpoint, length, concurrency=1)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        verdict = record(
            proxymode.verdict(
                [o.pod for o in outcomes],
                len(settled_pods),
                asked=proxymode.known(stage.provider.proxy_mode()),
                configured=proxymode.known(stage.versions.get("kube_proxy_mode", "")),
            )
        )
        assert verdict.passed, verdict.explain()

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
                assert_one_connection(endpoint, outcomes)
        run.timer.note(
            f"{KEEP_ALIVE_CLIENTS} keep-alive clients x {KEEP_ALIVE_REQUESTS} requests: "
            f"{pods_per_client}"
        )
        assert all(len(counts) == 1 for counts in pods_per_client), pods_per_client
        with pytest.raises(balance.UnfitTransport, match="per connection"):
            balance.judge_balance(pods_per_client[0], settled_pods, balance.Transport.KEEP_ALIVE)
