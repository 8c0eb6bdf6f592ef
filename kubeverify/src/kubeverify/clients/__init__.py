"""Clients of a Service inside the cluster, each a pod of its own: kube-proxy's ClientIP
affinity keys on the client's address, and every request from this machine comes from one (the
address kind's port mapping sends it from), so several clients need several pods.

Each runs `client.py` from kubeverify's client image (this folder's Dockerfile, built and loaded
where the provider builds images) and writes one JSON line per answer, which is read back from
its log. The pods are the run's: deleted however the block ends.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import yaml

from kubeverify.diagnostics import termination_text
from kubeverify.kube import KubeTarget
from kubeverify.target import Image, Probe, Target
from kubeverify.waiting import DeadlineExceeded, Observation, wait_until

DIRECTORY = Path(__file__).resolve().parent
IMAGE = Image(f"kubeverify-client:{version('kubeverify')}", DIRECTORY, DIRECTORY / "Dockerfile")
LABEL = "kubeverify-client"  # every client pod has it; its value names the group
INTERVAL = 0.1  # seconds between one client's requests: 10 a second each
MAX_SECONDS = 900  # a client stops by itself after this, were it never deleted
START_TIMEOUT = 120


@dataclass(frozen=True)
class Answer:
    """One request of a client: sent at `t` (wall clock, seconds), answered by `pod`."""

    t: float
    pod: str | None = None
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.pod is not None


def parse(log: str, status: int = 200) -> list[Answer]:
    """A client's log as its answers, one with another status than `status` failed; a line that
    is not one (a partial last line) is left."""
    answers = []
    for line in log.splitlines():
        with suppress(ValueError, TypeError):
            answer = Answer(**json.loads(line))
            if answer.error is None and answer.status != status:
                answer = replace(answer, error=f"status {answer.status}, expected {status}")
            answers.append(answer)
    return answers


def service_copy(kube: KubeTarget, service: str, name: str, spec: Mapping) -> dict:
    """A Service of the run's own that selects what `service` selects, on its ports, with
    `spec` added: the target's Service is left as it is, for the traffic that uses it."""
    read = kube.api.sanitize_for_serialization(
        kube.core.read_namespaced_service(service, kube.namespace)
    )
    ports = [
        {key: port[key] for key in ("name", "port", "targetPort", "protocol") if key in port}
        for port in read["spec"]["ports"]
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {LABEL: name}},
        "spec": {"selector": read["spec"].get("selector") or {}, "ports": ports, **spec},
    }


class Clients:
    """`count` client pods of one group, each asking `url` the target's probe request."""

    def __init__(
        self, kube: KubeTarget, group: str, url: str, probe: Probe, pod_header: str, count: int
    ) -> None:
        self.kube = kube
        self.group = group
        self.url = url
        self.probe = probe
        self.pod_header = pod_header
        self.names = [f"{group}-{number}" for number in range(count)]
        self.warm: dict[str, float] = {}  # client -> the first answer of its warm-up streak

    def pod(self, name: str, image: str) -> dict:
        env = {
            "URL": self.url + self.probe.path,
            "METHOD": self.probe.method,
            "BODY": json.dumps(self.probe.json) if self.probe.json is not None else "",
            "POD_HEADER": self.pod_header,
            "INTERVAL": str(INTERVAL),
            "SECONDS": str(MAX_SECONDS),
        }
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {LABEL: self.group}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "client",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": key, "value": value} for key, value in env.items()],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    }
                ],
            },
        }

    @contextmanager
    def running(self, image: str) -> Iterator[Clients]:
        """The client pods running for the block, and deleted after it (those it created: a
        pod of that name already there is an error, and left)."""
        created = []
        try:
            for name in self.names:
                self.kube.core.create_namespaced_pod(self.kube.namespace, self.pod(name, image))
                created.append(name)
            yield self
        finally:
            if created:
                self.kube.kubectl(
                    "delete", "pod", *created, "--ignore-not-found", "--grace-period=0",
                    "--force", "--wait=false",
                )  # fmt: skip

    def answers(self) -> dict[str, list[Answer]]:
        """Every client's answers since it was warm (`warm_up`), from its log."""
        return {
            name: [a for a in answers if a.t >= self.warm.get(name, 0.0)]
            for name, answers in self._logs().items()
        }

    def _logs(self) -> dict[str, list[Answer]]:
        return {
            name: parse(
                self.kube.core.read_namespaced_pod_log(name, self.kube.namespace),
                self.probe.status,
            )
            for name in self.names
        }

    def warm_up(self, pods: set[str], count: int, timeout: float = START_TIMEOUT) -> None:
        """Until every client's last `count` answers all came from `pods`: a new Service's
        address may still lead elsewhere for a moment (kube-proxy's rules for an address a
        deleted Service had), which is the run's own doing, not the target's. What a client
        was answered before that streak is left out of `answers`."""
        self.wait_answered(0.0, count, timeout, pods=pods)

    def wait_answered(
        self, since: float, count: int, timeout: float = START_TIMEOUT, pods: set[str] | None = None
    ) -> None:
        """Until every client has `count` answers sent after `since` (wall clock); with `pods`,
        its last `count` answers all from them (and it is warm from the first of those)."""
        from kubernetes.client.exceptions import ApiException

        def answered() -> Observation:
            try:
                everyone = self._logs()
            except ApiException as error:  # a client not started yet has no log
                return Observation(False, f"not every client has a log yet: {error.reason}")
            short = {}
            for name, answers in everyone.items():
                recent = [a for a in answers if a.t >= since][-count:]
                if pods is not None and len(recent) == count:
                    if all(a.ok and a.pod in pods for a in recent):
                        self.warm[name] = recent[0].t
                    else:
                        seen = sorted({a.pod if a.ok else "a failure" for a in recent})
                        short[name] = f"last answers from {seen}"
                elif sum(a.ok for a in recent) < count:
                    failed = [a.error for a in recent if not a.ok]
                    short[name] = f"{sum(a.ok for a in recent)} answers" + (
                        f", {len(failed)} failed (the last: {failed[-1]})" if failed else ""
                    )
            self._short = sorted(short)
            return Observation(not short, f"fewer than {count} answers as wanted: {short}")

        self._short: list[str] = []
        try:
            wait_until(
                answered, what=f"{len(self.names)} {self.group} clients answered", timeout=timeout
            )
        except DeadlineExceeded as error:
            where = self.whereabouts(self._short or self.names)
            raise DeadlineExceeded(f"{error}; {where}") from error

    def whereabouts(self, names: list[str]) -> str:
        """Where each of these clients runs, for a failure's message: node, address, phase."""
        from kubernetes.client.exceptions import ApiException

        said = []
        for name in names:
            try:
                pod = self.kube.core.read_namespaced_pod(name, self.kube.namespace)
            except ApiException as error:  # the message it adds to must not be lost to it
                said.append(f"{name} not read ({error.reason})")
                continue
            ended = [
                f"; {status.name} ended ({termination_text(status.state.terminated)})"
                for status in pod.status.container_statuses or []
                if status.state and status.state.terminated
            ]
            said.append(
                f"{name} on {pod.spec.node_name} at {pod.status.pod_ip} "
                f"({pod.status.phase}{''.join(ended)})"
            )
        return ", ".join(said)


def client_ip_affinity(timeout: int) -> dict:
    """A Service spec's session affinity by client address, held `timeout` seconds idle."""
    return {
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": timeout}},
    }


AFFINITY_CLIENTS = 4
CONTROL_CLIENTS = 2  # on a copy without affinity: the same verdict must fail on them
AFFINITY_TIMEOUT = 600  # seconds idle: longer than any check, so only a pod's going ends it
ANSWERS_BEFORE = 10  # each client's, before the change: power 1 - 3^-36 against no affinity


@contextmanager
def with_and_without_affinity(
    kube: KubeTarget, target: Target, image: str, pods: list[str]
) -> Iterator[tuple[Clients, Clients]]:
    """Clients in the cluster of two copies of the target's first Service: AFFINITY_CLIENTS on
    one with ClientIP affinity, CONTROL_CLIENTS on one without; each client answered
    ANSWERS_BEFORE times by `pods` when the block starts. Copies and clients are deleted after
    it, however it ends."""
    service = target.services[0].name
    # Names of this run's own: what a run that was killed left cannot stand in this one's way.
    run = secrets.token_hex(2)
    copies = [
        service_copy(kube, service, f"{service[:40]}-kv-affinity-{run}",
                     client_ip_affinity(AFFINITY_TIMEOUT)),
        service_copy(kube, service, f"{service[:40]}-kv-any-{run}", {}),
    ]  # fmt: skip
    created: list[dict] = []
    try:
        for copy in copies:
            # Created, not applied: a Service of that name already there is an error, and left.
            kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(copy))
            created.append(copy)
        urls = []
        for copy in copies:
            name = copy["metadata"]["name"]
            wait_until(
                lambda name=name: _endpoints_are(kube, name, set(pods)),
                what=f"{name} sending to {sorted(pods)}",
                timeout=START_TIMEOUT,
            )
            read = kube.core.read_namespaced_service(name, kube.namespace)
            urls.append(f"http://{read.spec.cluster_ip}:{read.spec.ports[0].port}")
        with_affinity = Clients(
            kube, f"kv-affinity-{run}", urls[0], target.probe, target.pod_header, AFFINITY_CLIENTS
        )
        without = Clients(
            kube, f"kv-any-{run}", urls[1], target.probe, target.pod_header, CONTROL_CLIENTS
        )
        with with_affinity.running(image), without.running(image):
            with_affinity.warm_up(set(pods), ANSWERS_BEFORE)
            without.warm_up(set(pods), ANSWERS_BEFORE)
            yield with_affinity, without
    finally:
        if created:
            made = yaml.safe_dump_all(created)
            kube.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=made)


def _endpoints_are(kube: KubeTarget, service: str, pods: set[str]) -> Observation:
    ready, not_ready = kube.endpoint_pods(service)
    return Observation(ready == pods and not not_ready, f"ready {sorted(ready)}")
