"""Driving HTTP traffic at the service and recording which pod answered each request.

Every request is bounded in time, and every loop in count and duration: traffic stays on
127.0.0.1 (kind's published NodePort, or a port-forward) and stops by itself.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import httpx

from kubeverify.answers import answer_problem
from kubeverify.target import Probe, Target
from kubeverify.verdict import Verdict, no_failures
from kubeverify.waiting import Observation, wait_until

REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Endpoint:
    """Where to send the probe request, and which response headers name the pod, its node and
    the connection."""

    base_url: str
    probe: Probe
    pod_header: str
    node_header: str | None = None
    connection_header: str | None = None

    @classmethod
    def of(cls, target: Target, base_url: str | None = None) -> Endpoint:
        return cls(
            (base_url or target.base_url).rstrip("/"),
            target.probe,
            target.pod_header,
            target.node_header,
            target.connection_header,
        )

    def at(self, base_url: str) -> Endpoint:
        """The same requests sent elsewhere (a port-forward, say)."""
        return replace(self, base_url=base_url.rstrip("/"))


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic() when the request was sent
    elapsed: float
    status: int | None
    pod: str | None
    node: str | None
    error: str | None = None  # no answer (refused, reset, timed out), or a wrong one
    connection: str | None = None  # the name the pod gave the connection it answered on

    @property
    def ok(self) -> bool:
        return self.error is None


def fresh_connection_client(base_url: str, timeout: float = REQUEST_TIMEOUT) -> httpx.Client:
    """A client that opens a new connection for every request, so kube-proxy picks anew."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers=CLOSE,
    )


def keep_alive_client(base_url: str) -> httpx.Client:
    """A client that keeps one connection open and sends every request on it."""
    return httpx.Client(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


CLOSE = {"Connection": "close"}


def send(client: httpx.Client, endpoint: Endpoint, *, last: bool = False) -> Outcome:
    """The probe request once; a wrong answer or a missing pod header is an error too.
    `last`: the connection's last request (`Connection: close`), so that the next opens anew."""
    probe = endpoint.probe
    started = time.monotonic()
    try:
        response = client.request(
            probe.method, probe.path, json=probe.json, headers=CLOSE if last else None
        )
    except httpx.HTTPError as error:
        return Outcome(
            started,
            time.monotonic() - started,
            None,
            None,
            None,
            f"{type(error).__name__}: {error}",
        )
    pod = response.headers.get(endpoint.pod_header)
    node = response.headers.get(endpoint.node_header) if endpoint.node_header else None
    connection = (
        response.headers.get(endpoint.connection_header) if endpoint.connection_header else None
    )
    problem = answer_problem(
        response.status_code, pod, expected_status=probe.status, pod_header=endpoint.pod_header
    ) or probe.json_problem(response.json)
    return Outcome(
        started, time.monotonic() - started, response.status_code, pod, node, problem, connection
    )


def fresh_connection_requests(
    endpoint: Endpoint, count: int, concurrency: int = 4, timeout: float = REQUEST_TIMEOUT
) -> list[Outcome]:
    """`count` probe requests, each on its own connection, `concurrency` at a time."""
    local = threading.local()

    def one(_: int) -> Outcome:
        if not hasattr(local, "client"):
            local.client = fresh_connection_client(endpoint.base_url, timeout)
        return send(local.client, endpoint)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(count)))


def keep_alive_requests(endpoint: Endpoint, count: int) -> list[Outcome]:
    with keep_alive_client(endpoint.base_url) as client:
        return [send(client, endpoint) for _ in range(count)]


def keep_alive_connections(
    endpoint: Endpoint, connections: int, requests_each: int, concurrency: int = 4
) -> list[list[Outcome]]:
    """`connections` keep-alive connections, one after another `concurrency` at a time, each
    sending `requests_each` probe requests, the last of them saying `Connection: close`: one
    client per thread opens them all (a client of its own per connection costs more than the
    requests)."""
    local = threading.local()

    def one(_: int) -> list[Outcome]:
        if not hasattr(local, "client"):
            local.client = keep_alive_client(endpoint.base_url)
        return [
            send(local.client, endpoint, last=number == requests_each - 1)
            for number in range(requests_each)
        ]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(connections)))


def shared_connections(outcomes: Iterable[Outcome]) -> int:
    """How many requests came on a connection an earlier request of `outcomes` had used, by
    the name each pod gave its connection: 0 proves a new connection per request."""
    seen: set[tuple[str | None, str]] = set()
    shared = 0
    for outcome in outcomes:
        if outcome.connection is None:
            continue
        shared += (outcome.pod, outcome.connection) in seen
        seen.add((outcome.pod, outcome.connection))
    return shared


class AnsweringPods:
    """Which of the expected pods have answered through the Service since it last looked stale.

    Ready endpoints are not yet kube-proxy's rules: the node that receives the traffic rewrites
    them a moment later, so a count started at once measures that lag, not the balance. An
    answer from a pod not expected, or a failed request, means the rules are still old, so the
    tally starts again from there. Done when every expected pod has answered and the last
    `in_a_row` answers all came from them: were old rules still sending two connections in five
    elsewhere (5 pods narrowed to 3), 20 in a row would happen once in 20,000 waits.
    """

    def __init__(self, expected: Iterable[str], in_a_row: int = 20):
        self.expected = frozenset(expected)
        self.in_a_row = in_a_row
        self.answered: Counter[str] = Counter()
        self.requests = 0
        self.last_stale: str | None = None

    def record(self, outcome: Outcome) -> None:
        self.requests += 1
        if outcome.ok and outcome.pod in self.expected:
            self.answered[outcome.pod] += 1
            return
        self.answered.clear()
        if outcome.ok:
            self.last_stale = f"{outcome.pod} answered"
        else:
            self.last_stale = f"{outcome.error} (from {outcome.pod})"

    def observation(self) -> Observation:
        missing = sorted(self.expected - set(self.answered))
        streak = sum(self.answered.values())
        detail = f"after {self.requests} requests: {streak} in a row from expected pods"
        if missing:
            detail += f", none yet from {missing}"
        if self.last_stale:
            detail += f"; last stale answer: {self.last_stale}"
        return Observation(not missing and streak >= self.in_a_row, detail, self.requests)


# Short, because a poll is a whole batch: 20 requests 4 at a time may overrun the deadline by
# five of these when the address drops packets.
PROBE_TIMEOUT = 2.0


def wait_until_every_pod_answers(
    endpoint: Endpoint, pods: Iterable[str], timeout: float = 30
) -> int:
    """Send fresh-connection requests until each of `pods`, and only they, answer through the
    Service; return how many requests that took."""
    answering = AnsweringPods(pods)
    batch = max(answering.in_a_row, 2 * len(answering.expected))

    def poll() -> Observation:
        for outcome in fresh_connection_requests(endpoint, batch, timeout=PROBE_TIMEOUT):
            answering.record(outcome)
        return answering.observation()

    return wait_until(
        poll, what=f"every pod answering at {endpoint.base_url}", timeout=timeout, interval=0.1
    ).value


# A change under traffic is judged only when at least this many requests span it: 0 failures
# of n then bounds the failure rate below 3/n with 95% confidence (the rule of three).
MIN_REQUESTS_SPANNING_A_CHANGE = 100


class TrafficStopped(RuntimeError):
    """The traffic thread died: what it measured cannot judge the change."""


@dataclass
class BackgroundTraffic:
    """Steady probe traffic on fresh connections from a thread, while a test changes the
    cluster. Stops when the block ends, or earlier at `max_seconds` or `max_requests`."""

    endpoint: Endpoint
    # About 100 requests a second here: a change of a few seconds still gets the 100 spanning
    # it that its verdict needs (at 0.02 s, a 3 s scale-up got 122).
    interval: float = 0.005
    max_seconds: float = 180.0
    max_requests: int = 20_000
    outcomes: list[Outcome] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        try:
            with fresh_connection_client(self.endpoint.base_url) as client:
                while (
                    not self._stop.is_set()
                    and time.monotonic() < deadline
                    and len(self.outcomes) < self.max_requests
                ):
                    self.outcomes.append(send(client, self.endpoint))
                    self._stop.wait(self.interval)
        except BaseException as error:  # kept, and raised in the test's own thread
            self.error = error

    @contextmanager
    def running(self) -> Iterator[BackgroundTraffic]:
        thread = threading.Thread(target=self._run, name="background-traffic", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=REQUEST_TIMEOUT + 5)
        if self.error is not None:
            raise TrafficStopped(
                f"the background traffic died after {len(self.outcomes)} requests: "
                f"{type(self.error).__name__}: {self.error}"
            ) from self.error

    def verdict(self, start: float, end: float, change: str, **figures) -> Verdict:
        """The zero-failure verdict on a change made between `start` and `end` (monotonic
        seconds): no request of the traffic failed, and enough of them spanned the change for
        that to bound the failure rate. A failure's details name it and the pod."""
        spanning = sum(1 for o in self.outcomes if start <= o.started <= end)
        verdict = no_failures(
            change,
            spanning,
            len(self.failures),
            minimum=MIN_REQUESTS_SPANNING_A_CHANGE,
            seconds=round(end - start, 1),
            requests_in_all=len(self.outcomes),
            **figures,
        )
        if not self.failures:
            return verdict
        return replace(verdict, details=tuple(self.summary().splitlines()))

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def error_ratio(self) -> float:
        return len(self.failures) / len(self.outcomes) if self.outcomes else 0.0

    def summary(self) -> str:
        failures = self.failures
        lines = [
            f"{len(self.outcomes)} requests, {len(failures)} failed ({self.error_ratio():.2%})"
        ]
        lines += [f"  {f.error} (from {f.pod})" for f in failures[:10]]
        return "\n".join(lines)
