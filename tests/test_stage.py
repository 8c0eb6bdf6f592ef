"""The provider seam: the stage needs nothing of a provider but its protocol; providers are
found by their entry points, own their options, and are chosen from what was given; an option
given to a provider the run does not use is warned about."""

from pathlib import Path
from textwrap import dedent

import pytest
from kubernetes.config.config_exception import ConfigException

from kubeverify import providers
from kubeverify.kube import KubeTarget
from kubeverify.preflight import PreflightError
from kubeverify.providers.existing import ExistingClusterProvider
from kubeverify.providers.kind import KindProvider
from kubeverify.stage import Stage
from kubeverify.target import Image, load
from kubeverify.timing import PhaseTimer
from tests.test_target import MINIMAL

pytest_plugins = ["pytester"]


@pytest.fixture
def target(tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "verify.toml").write_text(MINIMAL)
    return load(tmp_path / "verify.toml")


@pytest.fixture
def said():
    return []


@pytest.fixture
def timer(said):
    return PhaseTimer(say=said.append, prefix="[test]")


@pytest.fixture
def no_path(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no kubectl, no kind, no docker


class StandIn:
    """A provider that is none of kubeverify's: it records what the stage asks of it."""

    name = "stand-in"
    builds = False
    options = (providers.Option("--stand-in-flavour", "what the stand-in is"),)

    def __init__(self, kubeconfig: Path) -> None:
        self.calls: list[tuple] = []
        self.kube = KubeTarget(kubeconfig, "/nonexistent/kubectl", namespace="ns")

    @classmethod
    def wanted(cls, given):
        return bool(given.get("stand_in_flavour"))

    @classmethod
    def from_options(cls, given, target, timer):
        raise AssertionError("not through options here")

    def up(self):
        self.calls.append(("up",))
        return self.kube

    def make_available(self, image):
        self.calls.append(("make_available", image))
        return f"registry.example/{image.tag}"

    def reach(self, url):
        return url.replace("127.0.0.1", "lb.example")

    def facts(self):
        self.calls.append(("facts",))
        return {"cluster": "a stand-in"}

    def proxy_mode(self):
        return None

    def down(self):
        self.calls.append(("down",))


def test_the_stage_needs_nothing_of_a_provider_but_its_protocol(target, timer, said, tmp_path):
    provider = StandIn(tmp_path / "no-kubeconfig")
    assert isinstance(provider, providers.Provider)
    stage = Stage(target, provider, timer)
    assert stage.up() is provider.kube
    assert stage.versions["cluster"] == "a stand-in"
    # What the API would tell is unknown here (no cluster answers), and said so, not an error.
    assert stage.versions["kubernetes"].startswith("unknown")
    assert said[0].startswith("[test] verifying on: kubernetes unknown")
    assert stage.image() == "registry.example/web:1"
    assert Stage(target, provider, timer, image_given="mine:2").image() == "registry.example/mine:2"
    assert stage.base_url == "http://lb.example:30099"
    assert Stage(target, provider, timer, base_url_given="http://x:1").base_url == "http://x:1"
    stage.down()
    assert provider.calls == [
        ("up",),
        ("facts",),
        ("make_available", target.image),
        ("facts",),
        ("make_available", Image("mine:2")),
        ("facts",),
        ("down",),
    ]


def test_kubeverifys_providers_are_found_by_their_entry_points():
    found = providers.registered()
    assert found == {"kind": KindProvider, "existing": ExistingClusterProvider}
    assert all(isinstance(name, str) for name in found)


@pytest.mark.parametrize(
    ("given", "asked", "chosen"),
    [
        ({}, None, "kind"),
        ({"kubeconfig": "k"}, None, "existing"),
        ({"context": "c"}, None, "existing"),
        ({"kubeconfig": "k"}, "kind", "kind"),  # asked for by name wins
        ({"stand_in_flavour": "mint"}, None, "stand-in"),
    ],
)
def test_a_provider_is_chosen_by_name_else_by_its_own_options_else_kind(given, asked, chosen):
    installed = {**providers.registered(), "stand-in": StandIn}
    assert providers.choose(given, installed, asked).name == chosen


def test_an_unknown_provider_name_is_refused_naming_those_installed():
    with pytest.raises(ValueError, match="no provider named k3d: installed are existing, kind"):
        providers.choose({}, providers.registered(), "k3d")


def test_an_option_of_another_provider_is_warned_about_with_what_happens_instead():
    installed = providers.registered()
    assert providers.ignored(ExistingClusterProvider, {"publish_port": 31000}, installed) == [
        "--publish-port 31000 is for the kind provider; this run uses existing: ignored, "
        "--base-url says where the Service is reached"
    ]
    assert providers.ignored(KindProvider, {"namespace": "mine"}, installed) == [
        "--namespace mine is for the existing provider; this run uses kind: ignored, the "
        "target's namespace is used"
    ]
    # Options both read, and options of the provider in use, say nothing.
    assert (
        providers.ignored(KindProvider, {"keep_cluster": True, "cluster_name": "x"}, installed)
        == []
    )
    assert (
        providers.ignored(ExistingClusterProvider, {"namespace": "n", "context": "c"}, installed)
        == []
    )


def test_an_existing_cluster_is_driven_with_the_kubectl_given(tmp_path, timer, no_path):
    given = str(tmp_path / "my-kubectl")
    provider = ExistingClusterProvider(timer, kubeconfig=tmp_path / "absent", kubectl=given)
    with pytest.raises(ConfigException):  # the API is asked first; no such kubeconfig here
        provider.up()
    assert provider.kube.kubectl_path == given
    assert not provider.created


def test_an_existing_cluster_with_no_kubectl_stops_the_run_naming_the_option(timer, no_path):
    with pytest.raises(PreflightError) as error:
        ExistingClusterProvider(timer, Path("kubeconfig"), "mine")
    assert str(error.value) == (
        "no kubectl on PATH: install it (https://kubernetes.io/docs/tasks/tools/#kubectl), or "
        "pass --kind-kubectl-bin PATH"
    )


def test_kind_reaches_the_service_on_the_port_it_publishes(target, timer):
    assert KindProvider(target, timer).reach("http://127.0.0.1:30080") == "http://127.0.0.1:30080"
    moved = KindProvider(target, timer, publish_port=31000)
    assert moved.reach("http://127.0.0.1:30080/x") == "http://127.0.0.1:31000/x"


def test_a_provider_from_a_package_of_its_own_runs_the_stage_through_pytest(pytester):
    """A package that is not kubeverify adds a provider with an entry point (its dist-info on
    the path, as pip would install it): pytest lists its option, --provider picks it, and the
    session fixtures drive it up, make the image available and take it down."""
    package = pytester.path / "site"
    (package / "standin_provider-1.0.dist-info").mkdir(parents=True)
    (package / "standin_provider-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: standin-provider\nVersion: 1.0\n"
    )
    (package / "standin_provider-1.0.dist-info" / "entry_points.txt").write_text(
        "[kubeverify.providers]\nstand-in = standin_provider:Provider\n"
    )
    (package / "standin_provider.py").write_text(
        dedent(
            """
            from kubeverify import KubeTarget, Option

            CALLS = []

            class Provider:
                name = "stand-in"
                builds = False
                options = (Option("--stand-in-flavour", "what flavour the stand-in is"),)

                def __init__(self, flavour):
                    self.flavour = flavour

                @classmethod
                def wanted(cls, given):
                    return bool(given.get("stand_in_flavour"))

                @classmethod
                def from_options(cls, given, target, timer):
                    return cls(given["stand_in_flavour"])

                def up(self):
                    CALLS.append("up " + self.flavour)
                    return KubeTarget("/nonexistent", "/nonexistent/kubectl", namespace="ns")

                def make_available(self, image):
                    CALLS.append("image " + image.tag)
                    return image.tag

                def reach(self, url):
                    return url

                def facts(self):
                    return {"cluster": "stand-in"}

                def proxy_mode(self):
                    return None

                def down(self):
                    CALLS.append("down")
                    open("calls.txt", "w").write(repr(CALLS))
            """
        )
    )
    pytester.syspathinsert(package)
    (pytester.path / "manifests").mkdir()
    pytester.makefile(".toml", verify=MINIMAL)
    pytester.makepyfile("def test_uses_the_stage(stage, image):\n    assert image == 'web:1'\n")
    shown = pytester.runpytest("--help").stdout.str()
    assert "what flavour the stand-in is" in shown
    result = pytester.runpytest("--target", "verify.toml", "--stand-in-flavour", "mint")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "calls.txt").read_text() == "['up mint', 'image web:1', 'down']"
