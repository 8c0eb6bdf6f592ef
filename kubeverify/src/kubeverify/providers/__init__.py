"""Where the cluster comes from: one seam, as kind's `Provider` interface and e2e-framework's
`E2EClusterProvider` are one, so that the stage, the suites and the reports are blind to it.

A provider brings a cluster up (making one, or attaching to one the user has), makes an image
available to it, says how this machine reaches a Service, tells what only it can know (its own
version, the node image, kube-proxy's mode as kube-proxy itself says it), and takes down only
what it made. It owns its command-line options. Providers are found through the
`kubeverify.providers` entry point group, so a package of its own can add one (k3d, minikube, a
cloud cluster that pulls from its registry): `--provider NAME` picks it, else the first whose own
options were given, else kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kubeverify.kube import KubeTarget
    from kubeverify.target import Image, Target
    from kubeverify.timing import PhaseTimer

GROUP = "kubeverify.providers"
DEFAULT = "kind"


@dataclass(frozen=True)
class Option:
    """A command-line option a provider reads. `flag` is its pytest option (`dest` derived the
    pytest way); `instead` says what happens when it is given to another provider and ignored.
    `pytest_kind`: pytest-kind already declares it, so only its help is told anew."""

    flag: str
    help: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    instead: str = ""
    pytest_kind: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def default(self) -> Any:
        return self.kwargs.get("default", False if self.kwargs.get("action") else None)


@runtime_checkable
class Provider(Protocol):
    """One cluster for one run, from `up` to `down`."""

    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]]
    # Whether `make_available` builds an image from its context and puts it on the nodes (an
    # image of the run's own, kubeverify's client say, needs that); else the cluster pulls.
    builds: ClassVar[bool]

    @classmethod
    def wanted(cls, given: Mapping[str, Any]) -> bool:
        """Whether the options given ask for this provider (its own were given)."""

    @classmethod
    def from_options(cls, given: Mapping[str, Any], target: Target, timer: PhaseTimer) -> Provider:
        """The provider for a run, from the options given (by dest; absent ones: defaults)."""

    def up(self) -> KubeTarget:
        """Bring the cluster up, or attach to it; the namespace the run works in."""

    def make_available(self, image: Image, *also: Image) -> str:
        """Make `image` available to the cluster's nodes (built from its context when it names
        one and the provider builds); return the reference the manifests should use. `also`:
        images the run needs later, made available in the same pass (where the provider loads
        images, layers they share with `image` travel once)."""

    def reach(self, url: str) -> str:
        """The URL this machine reaches a Service at, given the target's url for it."""

    def facts(self) -> dict[str, str]:
        """What only the provider can tell: its own version, the node image, the image built."""

    def proxy_mode(self) -> str | None:
        """kube-proxy's mode as kube-proxy says it on a node (its /proxyMode), or None where
        the provider cannot ask."""

    def down(self) -> None:
        """Take down what this run made, and only that."""


# Options more than one provider reads, told once.
KEEP = Option(
    "--keep-cluster",
    "keep what the run made: a kind cluster it created (the next run reuses it and leaves it) "
    "or, on an existing cluster, the run's namespace; a cluster the run did not create is never "
    "deleted, kept or not",
    pytest_kind=True,
)
KUBECTL = Option(
    "--kind-kubectl-bin",
    "the kubectl to run, with any provider; default: the offline toolchain's, else PATH's; "
    "never downloaded",
    pytest_kind=True,
)


def registered() -> dict[str, type[Provider]]:
    """The providers installed, by name: kubeverify's own (kind, existing) and any package's."""
    found = {}
    for point in entry_points(group=GROUP):
        provider = point.load()
        if provider.name != point.name:
            raise TypeError(
                f"entry point {point.name} of {GROUP} loads a provider named {provider.name}"
            )
        found[point.name] = provider
    return found


def choose(
    given: Mapping[str, Any], providers: Mapping[str, type[Provider]], asked: str | None = None
) -> type[Provider]:
    """`asked` by name, else the first provider other than kind whose own options were given,
    else kind."""
    if asked:
        if asked not in providers:
            installed = ", ".join(sorted(providers))
            raise ValueError(f"no provider named {asked}: installed are {installed}")
        return providers[asked]
    for name, provider in providers.items():
        if name != DEFAULT and provider.wanted(given):
            return provider
    return providers[DEFAULT]


def ignored(
    chosen: type[Provider], given: Mapping[str, Any], providers: Mapping[str, type[Provider]]
) -> list[str]:
    """A warning for each option given that another provider reads and this one does not."""
    own = {option.dest for option in chosen.options}
    warnings, said = [], set()
    for other in providers.values():
        for option in other.options:
            value = given.get(option.dest, option.default)
            if option.dest in own or option.dest in said or value == option.default:
                continue
            said.add(option.dest)
            shown = "" if value is True else f" {value}"
            warnings.append(
                f"{option.flag}{shown} is for the {other.name} provider; this run uses "
                f"{chosen.name}: ignored" + (f", {option.instead}" if option.instead else "")
            )
    return warnings


def all_options(providers: Mapping[str, type[Provider]]) -> list[Option]:
    """Every provider's options, each once (two providers may read one, --keep-cluster say)."""
    seen: dict[str, Option] = {}
    for provider in providers.values():
        for option in provider.options:
            seen.setdefault(option.dest, option)
    return list(seen.values())
