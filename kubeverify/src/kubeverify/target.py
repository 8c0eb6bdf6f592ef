"""The target description: what to verify, written once by the user as a small TOML file.

Every path in it is relative to the file itself. Loading checks every field and names the
file and the field in each error, so that a typo fails before any cluster is touched.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_POD_HEADER = "X-Pod-Name"
DEFAULT_WORKERS = 2
# What kind sets in networking.kubeProxyMode (IPVS needs the ip_vs kernel module).
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs")


class TargetError(ValueError):
    """The target file is missing, is not TOML, or a field is wrong; the message says which."""


@dataclass(frozen=True)
class Service:
    name: str
    port: int | None = None  # the Service's port, for kubectl port-forward
    url: str | None = None  # how this machine reaches it (kind: a published NodePort)

    @property
    def host_port(self) -> int | None:
        """The loopback port kind must publish for `url`, when the URL is on 127.0.0.1."""
        return loopback_port(self.url)


def loopback_port(url: str | None) -> int | None:
    """The port of a URL on this machine's loopback (which kind publishes a NodePort on)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    return parts.port or 80


@dataclass(frozen=True)
class Probe:
    """One request every pod must answer well: the request the checks send as traffic."""

    method: str = "GET"
    path: str = "/"
    json: Any = None
    status: int = 200
    expect_json: dict[str, Any] | None = None  # a subset the JSON answer must contain

    def json_problem(self, body: Any) -> str | None:
        """None when the answer holds `expect_json` (or nothing is expected), else what is
        wrong. `body` is a callable that parses the JSON answer: called only when needed."""
        if self.expect_json is None:
            return None
        try:
            answer = body()
        except ValueError as error:
            return f"answer is not JSON: {error}"
        if not isinstance(answer, dict):
            return f"answer is not a JSON object: {answer!r:.80}"
        wrong = {k: answer.get(k) for k, v in self.expect_json.items() if answer.get(k) != v}
        if wrong:
            return f"answer has {wrong}, expected {self.expect_json}"
        return None


@dataclass(frozen=True)
class Image:
    tag: str
    context: Path | None = None  # build from here; None: load `tag` as it is
    dockerfile: Path | None = None


@dataclass(frozen=True)
class Group:
    """Pods of a declared split: its label selector, and its weight (relative to the others);
    None: its share of the ready replicas, what a Service gives."""

    name: str
    selector: str
    weight: float | None = None


@dataclass(frozen=True)
class Split:
    """Traffic declared to split over groups of pods: sent to `url` (None: the target's own),
    with `manifests` applied for the check and deleted after (a canary Deployment, say)."""

    name: str
    groups: tuple[Group, ...]
    url: str | None = None
    manifests: Path | None = None
    deviation: float = 0.08  # the smallest deviation of a group's share it states power for
    # A Gateway API HTTPRoute whose first rule's backendRefs are the groups (each Service's
    # pods, at its weight), read when the check runs; then `groups` is empty.
    httproute: str | None = None

    @property
    def host_port(self) -> int | None:
        return loopback_port(self.url)

    def weights(self, ready: dict[str, int]) -> dict[str, float]:
        """Each group's weight: declared, else its ready replicas (`ready`, by group)."""
        if self.groups[0].weight is None:
            return {group.name: float(ready.get(group.name, 0)) for group in self.groups}
        return {group.name: float(group.weight) for group in self.groups}


@dataclass(frozen=True)
class Target:
    source: Path  # the file this came from
    name: str  # the Deployment
    selector: str  # label selector of its pods
    manifests: Path  # a directory of YAML files, or of a kustomization
    image: Image
    services: tuple[Service, ...]
    probe: Probe
    replicas: int = 3
    namespace: str = "default"
    pod_header: str = DEFAULT_POD_HEADER
    node_header: str | None = None
    # Names the connection a request came on: the same for all its requests, unique otherwise.
    connection_header: str | None = None
    cluster_name: str = "kubeverify"
    kind_config: Path | None = None  # None: generated from `workers` and the services' ports
    workers: int = DEFAULT_WORKERS
    # kube-proxy's mode in a generated kind config: None is kind's default (iptables).
    kube_proxy_mode: str | None = None
    container: str | None = None  # the container whose image is set; None: the first
    splits: tuple[Split, ...] = ()  # traffic declared to split over groups of pods
    # A pod that ignores SIGTERM (killed when its grace period runs out) fails the run, rather
    # than being reported as a finding.
    enforce_sigterm_exit: bool = False
    # A verdict short of the power it aims at (per-pod health, when its budget of draws ran
    # out) fails the run, rather than pass at low power.
    enforce_power: bool = False

    @property
    def base_url(self) -> str:
        """The first service URL: where traffic is sent from this machine."""
        return next(s.url for s in self.services if s.url).rstrip("/")  # load() ensures one

    @property
    def kustomize(self) -> bool:
        return (self.manifests / "kustomization.yaml").is_file()

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


_TOP = {
    "splits",
    "deployment",
    "selector",
    "manifests",
    "replicas",
    "namespace",
    "image",
    "services",
    "identity",
    "probe",
    "cluster",
    "container",
    "shutdown",
    "verdicts",
}


def load(path: str | Path) -> Target:
    path = Path(path).expanduser()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise TargetError(f"target file {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise TargetError(f"target file {path} is not valid TOML: {error}") from error
    return parse(document, path.resolve())


def parse(document: dict[str, Any], source: Path) -> Target:
    fields = _Fields(document, source)
    fields.unknown(document, _TOP, "")
    here = source.parent
    manifests = here / fields.text(document, "manifests")
    if not manifests.is_dir():
        fields.fail("manifests", f"{manifests} is not a directory")
    image_table = fields.table(document, "image")
    fields.unknown(image_table, {"tag", "build", "dockerfile"}, "image.")
    context = fields.text(image_table, "build", "image.", required=False)
    dockerfile = fields.text(image_table, "dockerfile", "image.", required=False)
    if dockerfile and not context:
        fields.fail("image.dockerfile", "needs image.build, the context it builds in")
    image = Image(
        tag=fields.text(image_table, "tag", "image."),
        context=here / context if context else None,
        dockerfile=here / context / dockerfile if context and dockerfile else None,
    )
    if image.context and not (image.dockerfile or image.context / "Dockerfile").is_file():
        fields.fail("image.build", f"no Dockerfile in {image.context}")
    services = tuple(fields.service(entry, i) for i, entry in enumerate(fields.services()))
    if not any(service.url for service in services):
        fields.fail("services", "at least one service needs a url this machine reaches it at")
    identity = fields.table(document, "identity", required=False)
    fields.unknown(identity, {"pod_header", "node_header", "connection_header"}, "identity.")
    probe_table = fields.table(document, "probe")
    fields.unknown(probe_table, {"method", "path", "json", "status", "expect_json"}, "probe.")
    probe_path = fields.text(probe_table, "path", "probe.")
    if not probe_path.startswith("/"):
        fields.fail("probe.path", f"must start with '/', not {probe_path!r}")
    expect_json = probe_table.get("expect_json")
    if expect_json is not None and not isinstance(expect_json, dict):
        fields.fail("probe.expect_json", "must be a table (the subset the answer must contain)")
    cluster = fields.table(document, "cluster", required=False)
    fields.unknown(cluster, {"name", "kind_config", "workers", "kube_proxy_mode"}, "cluster.")
    kind_config = fields.text(cluster, "kind_config", "cluster.", required=False)
    if kind_config and not (here / kind_config).is_file():
        fields.fail("cluster.kind_config", f"{here / kind_config} does not exist")
    kube_proxy_mode = fields.text(cluster, "kube_proxy_mode", "cluster.", required=False)
    if kube_proxy_mode and kube_proxy_mode not in KUBE_PROXY_MODES:
        fields.fail(
            "cluster.kube_proxy_mode",
            f"must be one of {', '.join(KUBE_PROXY_MODES)}, not {kube_proxy_mode!r}",
        )
    if kube_proxy_mode and kind_config:
        fields.fail(
            "cluster.kube_proxy_mode",
            "is for the generated kind config; with cluster.kind_config, set "
            "networking.kubeProxyMode in that file",
        )
    shutdown = fields.table(document, "shutdown", required=False)
    fields.unknown(shutdown, {"enforce_sigterm_exit"}, "shutdown.")
    verdicts = fields.table(document, "verdicts", required=False)
    fields.unknown(verdicts, {"enforce_power"}, "verdicts.")
    return Target(
        source=source,
        name=fields.text(document, "deployment"),
        selector=fields.text(document, "selector"),
        manifests=manifests,
        image=image,
        services=services,
        probe=Probe(
            method=fields.text(probe_table, "method", "probe.", required=False, default="GET"),
            path=probe_path,
            json=probe_table.get("json"),
            status=fields.integer(probe_table, "status", "probe.", default=200, low=100, high=599),
            expect_json=expect_json,
        ),
        replicas=fields.integer(document, "replicas", default=3, low=2, high=50),
        namespace=fields.text(document, "namespace", required=False, default="default"),
        pod_header=fields.text(
            identity, "pod_header", "identity.", required=False, default=DEFAULT_POD_HEADER
        ),
        node_header=fields.text(identity, "node_header", "identity.", required=False),
        connection_header=fields.text(identity, "connection_header", "identity.", required=False),
        cluster_name=fields.text(cluster, "name", "cluster.", required=False, default="kubeverify"),
        kind_config=here / kind_config if kind_config else None,
        workers=fields.integer(
            cluster, "workers", "cluster.", default=DEFAULT_WORKERS, low=1, high=10
        ),
        kube_proxy_mode=kube_proxy_mode,
        container=fields.text(document, "container", required=False),
        splits=tuple(fields.split(entry, i, here) for i, entry in enumerate(fields.splits())),
        enforce_sigterm_exit=fields.boolean(shutdown, "enforce_sigterm_exit", "shutdown."),
        enforce_power=fields.boolean(verdicts, "enforce_power", "verdicts."),
    )


class _Fields:
    """Typed reads from the parsed TOML, each error naming the file and the field."""

    def __init__(self, document: dict[str, Any], source: Path) -> None:
        self.document = document
        self.source = source

    def fail(self, name: str, why: str):
        raise TargetError(f"{self.source}: {name}: {why}")

    def unknown(self, table: dict[str, Any], known: set[str], prefix: str) -> None:
        extra = sorted(set(table) - known)
        if extra:
            self.fail(prefix + extra[0], f"unknown field (known: {', '.join(sorted(known))})")

    def table(self, parent: dict, key: str, required: bool = True) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(key, "missing table")
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, not {type(value).__name__}")
        return value

    def text(
        self,
        parent: dict,
        key: str,
        prefix: str = "",
        required: bool = True,
        default: str | None = None,
    ):
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(prefix + key, "missing")
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(prefix + key, f"must be a non-empty string, not {value!r}")
        return value

    def boolean(self, table: dict[str, Any], key: str, prefix: str = "") -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.fail(f"{prefix}{key}", f"must be true or false, not {value!r}")
        return value

    def integer(
        self, parent: dict, key: str, prefix: str = "", *, default: int, low: int, high: int
    ) -> int:
        value = parent.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(prefix + key, f"must be a whole number in {low}..{high}, not {value!r}")
        return value

    def splits(self) -> list[dict[str, Any]]:
        entries = self.document.get("splits", [])
        if not isinstance(entries, list):
            self.fail("splits", "must be [[splits]] tables")
        return entries

    def split(self, entry: Any, index: int, here: Path) -> Split:
        prefix = f"splits[{index}]."
        if not isinstance(entry, dict):
            self.fail(prefix[:-1], "must be a table")
        self.unknown(
            entry, {"name", "url", "manifests", "deviation", "groups", "httproute"}, prefix
        )
        httproute = self.text(entry, "httproute", prefix, required=False)
        url = self.text(entry, "url", prefix, required=False)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            self.fail(prefix + "url", f"must be an http(s) URL, not {url!r}")
        manifests = self.text(entry, "manifests", prefix, required=False)
        if manifests and not (here / manifests).is_dir():
            self.fail(prefix + "manifests", f"{here / manifests} is not a directory")
        deviation = entry.get("deviation", 0.08)
        if (
            isinstance(deviation, bool)
            or not isinstance(deviation, int | float)
            or not (0 < deviation <= 0.5)
        ):
            self.fail(prefix + "deviation", f"must be a share in (0, 0.5], not {deviation!r}")
        entries = entry.get("groups")
        if httproute and entries is not None:
            self.fail(prefix + "groups", "the HTTPRoute's backendRefs are the groups: give one")
        if httproute:
            entries = []
        elif not isinstance(entries, list) or len(entries) < 2:
            self.fail(prefix + "groups", "needs two [[splits.groups]] tables at least")
        groups = tuple(self.group(g, f"{prefix}groups[{i}].") for i, g in enumerate(entries))
        if len({group.name for group in groups}) < len(groups):
            self.fail(prefix + "groups", "two groups share a name")
        weighted = [group.weight is not None for group in groups]
        if any(weighted) and not all(weighted):
            self.fail(prefix + "groups", "give every group a weight, or none (then: their "
                      "shares of the ready replicas)")  # fmt: skip
        if groups and all(weighted) and not sum(group.weight for group in groups) > 0:
            self.fail(prefix + "groups", "the weights add up to 0: no group gets traffic")
        return Split(
            name=self.text(entry, "name", prefix),
            groups=groups,
            url=url,
            manifests=here / manifests if manifests else None,
            deviation=float(deviation),
            httproute=httproute,
        )

    def group(self, entry: Any, prefix: str) -> Group:
        if not isinstance(entry, dict):
            self.fail(prefix[:-1], "must be a table")
        self.unknown(entry, {"name", "selector", "weight"}, prefix)
        weight = entry.get("weight")
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0
        ):
            self.fail(prefix + "weight", f"must be a number, 0 or more, not {weight!r}")
        return Group(
            name=self.text(entry, "name", prefix),
            selector=self.text(entry, "selector", prefix),
            weight=None if weight is None else float(weight),
        )

    def services(self) -> list[dict[str, Any]]:
        entries = self.document.get("services")
        if not isinstance(entries, list) or not entries:
            self.fail("services", "missing: at least one [[services]] table")
        return entries

    def service(self, entry: Any, index: int) -> Service:
        prefix = f"services[{index}]."
        if not isinstance(entry, dict):
            self.fail(prefix[:-1], "must be a table")
        self.unknown(entry, {"name", "port", "url"}, prefix)
        url = self.text(entry, "url", prefix, required=False)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            self.fail(prefix + "url", f"must be an http(s) URL, not {url!r}")
        port = entry.get("port")
        if port is not None:
            port = self.integer(entry, "port", prefix, default=0, low=1, high=65535)
        return Service(name=self.text(entry, "name", prefix), port=port, url=url)
