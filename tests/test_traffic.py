"""The two clients the checks use, against a server that names each connection as a pod:
kube-proxy picks a pod per connection, so these are what the balance verdicts rest on."""

import itertools
import threading
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubeverify import sampling
from kubeverify.target import Probe
from kubeverify.traffic import (
    BackgroundTraffic,
    Endpoint,
    Outcome,
    TrafficStopped,
    fresh_connection_requests,
    keep_alive_requests,
    shared_connections,
)
from kubeverify.waiting import Observation, wait_until


@contextmanager
def per_connection_pods():
    """Every connection answered as a pod of its own, keep-alive allowed (HTTP/1.1)."""
    numbers = itertools.count()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.pod = f"pod-{next(numbers)}"

        def do_GET(self):
            body = b"{}"
            self.send_response(200)
            self.send_header("X-Pod-Name", self.pod)
            self.send_header("X-Connection-Id", f"{self.client_address[1]}/{self.pod}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(
            f"http://127.0.0.1:{server.server_port}",
            Probe(),
            "X-Pod-Name",
            connection_header="X-Connection-Id",
        )
    finally:
        server.shutdown()


def test_the_fresh_connection_client_opens_a_connection_for_every_request():
    with per_connection_pods() as endpoint:
        outcomes = fresh_connection_requests(endpoint, 24)
    assert all(o.ok for o in outcomes)
    assert len({o.pod for o in outcomes}) == 24  # reused, two would share a "pod"


def test_the_keep_alive_client_sends_everything_on_one_connection():
    with per_connection_pods() as endpoint:
        outcomes = keep_alive_requests(endpoint, 10)
    assert {o.pod for o in outcomes} == {"pod-0"}


def test_background_traffic_uses_a_new_connection_per_request():
    with per_connection_pods() as endpoint:
        traffic = BackgroundTraffic(endpoint, interval=0.0, max_requests=30)
        with traffic.running():
            wait_until(
                lambda: Observation(len(traffic.outcomes) >= 30, f"{len(traffic.outcomes)} sent"),
                what="30 requests",
                timeout=30,
            )
    pods = [o.pod for o in traffic.outcomes]
    assert len(set(pods)) == len(pods) == 30


def test_a_traffic_thread_that_dies_fails_the_change_it_watched():
    endpoint = Endpoint("http://127.0.0.1:9", Probe(), "X-Pod-Name")
    traffic = BackgroundTraffic(endpoint)
    traffic.endpoint = None  # the thread's first request raises
    with pytest.raises(TrafficStopped, match="died after 0 requests"), traffic.running():
        wait_until(
            lambda: Observation(traffic.error is not None, "thread alive"),
            what="the thread to die",
            timeout=10,
        )


def outcome(started, error=None):
    return Outcome(started, 0.01, 200 if error is None else None, "pod-a", None, error)


def test_no_request_lost_needs_enough_requests_spanning_the_change():
    traffic = BackgroundTraffic(Endpoint("http://x", Probe(), "X-Pod-Name"))
    traffic.outcomes = [outcome(t / 10) for t in range(300)]  # 10 a second for 30 s
    verdict = traffic.verdict(5.0, 20.0, "rollout")
    assert verdict.passed
    assert verdict.summary == (
        "0 of 151 requests during its 15.0 s failed: the failure rate is below 1.99% with 95% "
        "confidence"
    )
    assert verdict.figures["requests_in_all"] == 300
    assert verdict.rates.power == 0.95
    too_few = traffic.verdict(5.0, 6.0, "rollout")
    assert not too_few.passed
    assert too_few.summary.startswith("only 11 requests spanned it, fewer than 100")
    traffic.outcomes.append(outcome(29.9, "ConnectError: refused"))
    failed = traffic.verdict(5.0, 20.0, "rollout")
    assert not failed.passed
    assert "1 failed" in failed.explain()
    assert "ConnectError: refused (from pod-a)" in failed.explain()
    # Too few to bound a rate, but a failure is a failure: the summary says it, not the count.
    few_and_failed = traffic.verdict(5.0, 6.0, "rollout")
    assert not few_and_failed.passed
    assert few_and_failed.summary == "1 of 11 requests during its 1.0 s failed"


def test_shared_connections_counts_requests_on_a_connection_already_used():
    def on(pod, peer):
        return Outcome(0.0, 0.01, 200, pod, None, None, peer)

    fresh = [on("a", "10.0.0.1:4000"), on("b", "10.0.0.1:4000"), on("a", "10.0.0.1:4001")]
    assert shared_connections(fresh) == 0  # the same address at two pods: two connections
    reused = [on("a", "10.0.0.1:4000")] * 5
    assert shared_connections(reused) == 4
    assert shared_connections([on("a", None)] * 3) == 0  # no header: nothing to prove by


def test_fresh_connection_draws_are_proven_by_the_peer_addresses(monkeypatch):
    with per_connection_pods() as endpoint:
        assert len(sampling.fresh_connection_draws(endpoint, 30)) == 30
        # A client that kept its connection: the pod names one peer for all its requests.
        monkeypatch.setattr(sampling, "fresh_connection_requests", keep_alive_requests)
        with pytest.raises(AssertionError, match="29 of 30 requests came on a connection"):
            sampling.fresh_connection_draws(endpoint, 30)


def test_keep_alive_draws_are_one_per_connection_each_on_one_pod():
    with per_connection_pods() as endpoint:
        draws = sampling.keep_alive_draws(endpoint, 12)
        assert len({o.pod for o in draws}) == 12
        assert len({o.connection for o in draws}) == 12


def test_answers_that_do_not_name_their_connection_fail_the_proof():
    with per_connection_pods() as endpoint:
        unnamed = replace(endpoint, connection_header="X-Not-Sent")
        with pytest.raises(AssertionError, match="30 of 30 answers had no X-Not-Sent header"):
            sampling.fresh_connection_draws(unnamed, 30)
        with pytest.raises(AssertionError, match="3 of 3 answers had no X-Not-Sent header"):
            sampling.keep_alive_draws(unnamed, 2)
