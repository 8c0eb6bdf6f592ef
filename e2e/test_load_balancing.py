"""How the Service spreads requests: fresh connections balance, port-forward and keep-alive pin."""

import pytest

from e2e.harness import balance, deploy
from e2e.harness.traffic import fresh_connection_requests, keep_alive_requests

pytestmark = pytest.mark.usefixtures("three_replicas")


def test_every_ready_pod_receives_a_uniform_share_of_fresh_connections(
    three_replicas, service_url, report, run
):
    count = balance.required_requests(len(three_replicas))
    run.timer.note(
        f"{count} requests: the fewest "
        f"whose chi-square test detects a {balance.SKEW}:1 skew over {len(three_replicas)} pods "
        f"with power >= {balance.POWER} at alpha {balance.ALPHA} "
        f"(power {balance.power(count, len(three_replicas)):.4f})"
    )
    outcomes = fresh_connection_requests(service_url, count)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} requests failed, e.g. {failed[:3]}"
    verdict = balance.judge_balance(
        balance.count_by(o.pod for o in outcomes),
        three_replicas,
        balance.Transport.NEW_CONNECTION_PER_REQUEST,
    )
    report.add_distribution("NodePort, new connection per request", verdict)
    run.report.figures["requests_for_balance_test"] = count
    assert verdict.balanced, verdict.explain()


def test_port_forward_sends_every_request_to_one_pod(target, service_url, run):
    with target.port_forward(f"service/{deploy.CLUSTER_IP_SERVICE}", 8080) as forwarded:
        outcomes = fresh_connection_requests(forwarded, 60, concurrency=2)
    assert all(o.ok for o in outcomes)
    counts = balance.count_by(o.pod for o in outcomes)
    run.timer.note(f"60 requests through kubectl port-forward: {counts}")
    assert len(counts) == 1, f"port-forward spread requests: {counts}"
    with pytest.raises(balance.UnfitTransport, match="single pod"):
        balance.judge_balance(counts, list(counts), balance.Transport.PORT_FORWARD)


def test_keep_alive_client_sticks_to_one_pod_per_connection(three_replicas, service_url, run):
    pods_per_client = []
    for _ in range(6):
        outcomes = keep_alive_requests(service_url, 20)
        assert all(o.ok for o in outcomes)
        pods_per_client.append(balance.count_by(o.pod for o in outcomes))
    run.timer.note(f"6 keep-alive clients x 20 requests: {pods_per_client}")
    assert all(len(counts) == 1 for counts in pods_per_client), pods_per_client
    with pytest.raises(balance.UnfitTransport, match="per connection"):
        balance.judge_balance(pods_per_client[0], three_replicas, balance.Transport.KEEP_ALIVE)
