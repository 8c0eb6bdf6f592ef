"""The two clients the checks use, against a server that names each connection as a pod:
kube-proxy picks a pod per connection, so these are what the balance verdicts rest on."""

import itertools
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubeverify.target import Probe
from kubeverify.traffic import (
    BackgroundTraffic,
    Endpoint,
    Outcome,
    TrafficStopped,
    fresh_connection_requests,
    keep_alive_requests,
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
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{server.server_port}", Probe(), "X-Pod-Name")
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
    said = traffic.lost_none(5.0, 20.0, "rollout")
    assert said.startswith("rollout: 0 of 151 requests during it failed (300 in all)")
    assert "below 1.99% with 95% confidence" in said
    with pytest.raises(AssertionError, match="only 11 requests were sent while it happened"):
        traffic.lost_none(5.0, 6.0, "rollout")
    traffic.outcomes.append(outcome(29.9, "ConnectError: refused"))
    with pytest.raises(AssertionError, match="1 failed"):
        traffic.lost_none(5.0, 20.0, "rollout")
