"""Access to one cluster: kubectl for what users type, the kubernetes client for reading state."""

from __future__ import annotations

import json
import selectors
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from kubeverify.processes import stop


class KubectlError(RuntimeError):
    pass


@dataclass(frozen=True)
class PodState:
    name: str
    node: str | None
    ip: str | None
    phase: str
    ready: bool
    terminating: bool
    restarts: int
    exited: bool = False  # every container has terminated: the pod no longer serves

    @property
    def gone(self) -> bool:
        """Deleted, and its containers exited: it serves nothing, though the kubelet removes it
        from the API a moment later (0.6 to 0.9 s on Kubernetes 1.37), which the checks need not
        wait for."""
        return self.terminating and self.exited

    def line(self) -> str:
        flags = (" terminating" if self.terminating else "") + (" exited" if self.exited else "")
        return (
            f"{self.name:<40} node={self.node} ip={self.ip} phase={self.phase} "
            f"ready={self.ready} restarts={self.restarts}{flags}"
        )


class KubeTarget:
    """One cluster, one namespace: kubectl and API calls always agree on where they go."""

    def __init__(
        self,
        kubeconfig: Path,
        kubectl_path: str,
        context: str | None = None,
        namespace: str = "default",
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.kubectl_path = kubectl_path
        self.context = context
        self.namespace = namespace

    def kubectl_args(self, *args: str) -> list[str]:
        base = [self.kubectl_path, "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            base += ["--context", self.context]
        return [*base, "--namespace", self.namespace, *args]

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        command = self.kubectl_args(*args)
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise KubectlError(
                f"`kubectl {' '.join(args)}` failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    @cached_property
    def api(self) -> k8s.ApiClient:
        return k8s_config.new_client_from_config(
            config_file=str(self.kubeconfig), context=self.context
        )

    @cached_property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api)

    def version(self) -> k8s.VersionInfo:
        return k8s.VersionApi(self.api).get_code()

    @cached_property
    def minor_version(self) -> int:
        """The server's minor version (20 for 1.20; a suffix such as "+" dropped)."""
        return int("".join(c for c in self.version().minor if c.isdigit()) or 0)

    @cached_property
    def api_versions(self) -> frozenset[str]:
        """Every apiVersion the server serves, as `kubectl api-versions` lists them."""
        groups = k8s.ApisApi(self.api).get_api_versions().groups
        return frozenset(
            [
                *k8s.CoreApi(self.api).get_api_versions().versions,
                *(version.group_version for group in groups for version in group.versions),
            ]
        )

    def pods(self, selector: str) -> list[PodState]:
        items = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted(
            (_pod_state(pod) for pod in items),
            key=lambda pod: pod.name,
        )

    def _resource(self, group: str, kind: str, versions: tuple[str, ...]):
        """The API resource `kind` of `group` in the first of `versions` the server serves."""
        resources = DynamicClient(self.api).resources
        for version in versions:
            try:
                return resources.get(api_version=f"{group}/{version}", kind=kind)
            except ResourceNotFoundError:
                continue
        raise KubectlError(f"the server has no {kind} API ({group} {' or '.join(versions)})")

    @cached_property
    def endpoint_slices(self):
        """EndpointSlices as discovery.k8s.io/v1 where the server has it (Kubernetes 1.21 and
        later), else v1beta1 (1.17 to 1.24): the Endpoints API is deprecated from 1.33 on."""
        return self._resource("discovery.k8s.io", "EndpointSlice", ("v1", "v1beta1"))

    def httproute(self, name: str) -> dict:
        """A Gateway API HTTPRoute of the namespace, as the API gives it (v1, else v1beta1)."""
        kind = self._resource("gateway.networking.k8s.io", "HTTPRoute", ("v1", "v1beta1"))
        return kind.get(name=name, namespace=self.namespace).to_dict()

    def disruption_budgets(self) -> list[dict]:
        """The namespace's PodDisruptionBudgets, as the API gives them (policy/v1, else v1beta1:
        Kubernetes 1.20)."""
        kind = self._resource("policy", "PodDisruptionBudget", ("v1", "v1beta1"))
        return kind.get(namespace=self.namespace).to_dict().get("items", [])

    def evict(self, pod: str) -> None:
        """Ask the API to evict a pod, as `kubectl drain` does: refused (429) while that would
        take more of its pods than a PodDisruptionBudget allows."""
        # policy/v1 serves PodDisruptionBudgets from 1.21 but Evictions only from 1.22.
        version = "policy/v1" if self.minor_version >= 22 else "policy/v1beta1"
        self.core.create_namespaced_pod_eviction(pod, self.namespace, {
            "apiVersion": version,
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": self.namespace},
        })  # fmt: skip

    def selected_pods(self, service: str) -> set[str]:
        """The pods a Service's selector selects now, ready or not."""
        selector = self.core.read_namespaced_service(service, self.namespace).spec.selector
        if not selector:
            return set()
        return {pod.name for pod in self.pods(",".join(f"{k}={v}" for k, v in selector.items()))}

    def endpoint_pods(self, service: str) -> tuple[set[str], set[str]]:
        """Pod names behind a Service, from its EndpointSlices: (ready, not ready)."""
        found = self.endpoint_slices.get(
            namespace=self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
        return endpoint_slice_pods(found.to_dict().get("items", []))

    def nodes(self) -> dict[str, bool]:
        """Node name -> whether it is a control-plane node."""
        roles = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
        return {
            node.metadata.name: any(r in (node.metadata.labels or {}) for r in roles)
            for node in self.core.list_node().items
        }

    @contextmanager
    def service_changed(self, name: str, spec: Mapping[str, Any]) -> Iterator[None]:
        """The Service with these fields of its spec for the block (a selector, session
        affinity), and as they were after it, however the block ends."""
        read = self.core.read_namespaced_service(name, self.namespace)
        before = self.api.sanitize_for_serialization(read.spec)
        self._patch_service(name, [
            {"op": "add", "path": f"/spec/{key}", "value": value} for key, value in spec.items()
        ])  # fmt: skip
        try:
            yield
        finally:
            self._patch_service(name, [
                {"op": "add", "path": f"/spec/{key}", "value": before[key]}
                if key in before else {"op": "remove", "path": f"/spec/{key}"}
                for key in spec
            ])  # fmt: skip

    def _patch_service(self, name: str, operations: list[dict]) -> None:
        self.kubectl("patch", "service", name, "--type=json", "-p", json.dumps(operations))

    @contextmanager
    def port_forward(self, resource: str, remote_port: int, timeout: float = 30) -> Iterator[str]:
        """`kubectl port-forward` on a free loopback port; the process never outlives the block."""
        process = subprocess.Popen(
            self.kubectl_args(
                "port-forward", "--address", "127.0.0.1", resource, f":{remote_port}"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield f"http://127.0.0.1:{_forwarded_port(process, timeout)}"
        finally:
            stop(process)


class PodWatch:
    """A thread that watches the pods a selector selects, from their state when it starts:
    `_seen(kind, pod)` hears every state the API shows (ADDED for those listed at the start),
    the pod as the API's JSON. What it keeps of them is the subclass's; a watch that dies keeps
    its error in `error` for the subclass to raise where it is read."""

    def __init__(self, kube: KubeTarget, selector: str) -> None:
        self.kube = kube
        self.selector = selector
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def _seen(self, kind: str, pod: dict) -> None:
        raise NotImplementedError

    def _raise_if_stopped(self) -> None:
        """What a subclass reads is incomplete once the watch died: say so where it is read."""
        if self.error is not None:
            raise RuntimeError(f"the watch on pods {self.selector} stopped: {self.error}")

    # Whether the pods there when the watch starts are told to `_seen`: a count of them wants
    # them; a record of what happens while it watches does not.
    replays_start = True

    def _list(self):
        return self.kube.core.list_namespaced_pod(self.kube.namespace, label_selector=self.selector)

    def _relisted(self, pods: list[dict]) -> None:
        """After a gap in the watch (an expired version), the pods as listed again."""
        for pod in pods:
            self._seen("ADDED", pod)

    @contextmanager
    def running(self) -> Iterator[PodWatch]:
        listed = self._list()
        if self.replays_start:
            for pod in listed.items:
                self._seen("ADDED", self.kube.api.sanitize_for_serialization(pod))
        thread = threading.Thread(
            target=self._watch, args=(listed.metadata.resource_version,), daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)

    def _watch(self, version: str) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.kube.core.list_namespaced_pod,
                    self.kube.namespace,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=2,
                ):
                    pod = self.kube.api.sanitize_for_serialization(event["object"])
                    version = pod["metadata"].get("resourceVersion") or version
                    self._seen(event["type"], pod)
                    if self._stop.is_set():
                        break
            except ApiException as error:
                if error.status != 410:  # an expired version: list again, from now
                    self.error = error
                    return
                listed = self._list()
                version = listed.metadata.resource_version
                self._relisted([self.kube.api.sanitize_for_serialization(p) for p in listed.items])
            except BaseException as error:  # told where it is read, not lost in a thread
                self.error = error
                return
            finally:
                stream.stop()


class DeletionTimes(PodWatch):
    """When the deletion of each pod a selector selects was first seen (wall clock, seconds)."""

    def __init__(self, kube: KubeTarget, selector: str) -> None:
        super().__init__(kube, selector)
        self.seen: dict[str, float] = {}

    def _seen(self, kind: str, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp") or kind == "DELETED":
            self.seen.setdefault(pod["metadata"]["name"], time.time())

    def times(self) -> dict[str, float]:
        self._raise_if_stopped()
        return dict(self.seen)


def endpoint_slice_pods(slices: list[dict]) -> tuple[set[str], set[str]]:
    """(ready, not ready) pod names in EndpointSlices as the API gives them (v1 and v1beta1
    alike). A terminating endpoint that still serves is not ready: traffic no longer goes
    there."""
    ready: set[str] = set()
    not_ready: set[str] = set()
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            reference = endpoint.get("targetRef") or {}
            if reference.get("kind") != "Pod" or not reference.get("name"):
                continue
            # Unset means ready: the API's own rule for this field.
            is_ready = (endpoint.get("conditions") or {}).get("ready") is not False
            (ready if is_ready else not_ready).add(reference["name"])
    return ready, not_ready


def _forwarded_port(process: subprocess.Popen, timeout: float) -> int:
    """Read kubectl's 'Forwarding from 127.0.0.1:PORT -> ...' line, within a deadline."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("Forwarding from 127.0.0.1:"):
                return int(line.split(":", 1)[1].split()[0])
    raise KubectlError(f"kubectl port-forward gave no port within {timeout:g} s: {seen}")


def pre_stop_sleep(spec: Mapping[str, Any]) -> float | None:
    """The longest preStop sleep of a pod spec's containers (the API's JSON): an exec of
    `sleep N` or `sh -c "sleep N"`, or the sleep action (Kubernetes 1.29 and later); or None."""
    sleeps = []
    for container in spec.get("containers") or []:
        hook = (container.get("lifecycle") or {}).get("preStop") or {}
        if (hook.get("sleep") or {}).get("seconds") is not None:
            sleeps.append(float(hook["sleep"]["seconds"]))
            continue
        command = (hook.get("exec") or {}).get("command") or []
        if len(command) == 3 and command[0].endswith("sh") and command[1] == "-c":
            command = command[2].split()
        if len(command) == 2 and command[0].rsplit("/", 1)[-1] == "sleep":
            with suppress(ValueError):
                sleeps.append(float(command[1]))
    return max(sleeps, default=None)


def _pod_state(pod: k8s.V1Pod) -> PodState:
    statuses = pod.status.container_statuses or []
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    return PodState(
        name=pod.metadata.name,
        node=pod.spec.node_name,
        ip=pod.status.pod_ip,
        phase=pod.status.phase or "Unknown",
        ready=conditions.get("Ready") == "True",
        terminating=pod.metadata.deletion_timestamp is not None,
        restarts=sum(s.restart_count for s in statuses),
        exited=bool(statuses) and all(s.state and s.state.terminated for s in statuses),
    )
