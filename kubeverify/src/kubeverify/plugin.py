"""The pytest plugin: options, the stage as session fixtures, failure reports, the timing table.

Registered through the `pytest11` entry point, so it is loaded in every pytest run of an
environment that has it installed; it stays idle until a test asks for one of its fixtures.
Only pytest and the standard library are imported here: the cluster, HTTP and statistics
libraries load when a fixture first needs them.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kubeverify import providers
from kubeverify.preflight import PreflightError
from kubeverify.processes import interrupt_on_termination
from kubeverify.report import RunReport, suite_of
from kubeverify.target import Target, TargetError, load
from kubeverify.timing import PhaseTimer, format_table
from kubeverify.verdict import Verdict

if TYPE_CHECKING:
    from kubeverify.deployment import Deployment
    from kubeverify.kube import KubeTarget
    from kubeverify.stage import Stage
    from kubeverify.traffic import Endpoint

PYTEST_KIND_DEFAULT_NAME = "pytest-kind"  # pytest-kind's --cluster-name default
JUNIT_FILE = "e2e-junit.xml"


@dataclass
class Run:
    """What one pytest session of the plugin gathers: phases, suite times, the report."""

    timer: PhaseTimer
    report: RunReport = field(default_factory=RunReport)
    target: Target | None = None
    stage: Stage | None = None
    suites: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed, failed, ...
    started: float = field(default_factory=time.monotonic)


RUN = pytest.StashKey[Run]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubeverify", "kubeverify: verify a Deployment and its Service")
    group.addoption(
        "--target",
        default=None,
        help="the target file (TOML) describing what to verify; default: the "
        "kubeverify_target ini value",
    )
    installed = providers.registered()
    group.addoption(
        "--provider",
        choices=sorted(installed),
        default=None,
        help="where the cluster comes from; default: existing when --kubeconfig or --context "
        "is given, else kind (a cluster of the run's own)",
    )
    # Each provider's own options. pytest-kind already declares some of them, which keep
    # their names; their help is told anew in pytest_load_initial_conftests.
    for option in providers.all_options(installed):
        if not option.pytest_kind:
            group.addoption(option.flag, default=None, help=option.help, **option.kwargs)
    group.addoption(
        "--image",
        default=None,
        help="deploy this image as it is, never rebuilt (kind: loaded into the nodes; "
        "existing cluster: one it can pull); default: the target's [image]",
    )
    group.addoption(
        "--base-url",
        default=None,
        help="where the Service is reached from this machine; default: the target's first "
        "service url",
    )
    group.addoption(
        "--balance-test",
        choices=("sequential", "fixed"),
        default="sequential",
        help="sequential: requests in groups until the test decides (about half the fixed "
        "size on a balanced Service); fixed: the fixed size. Both: alpha 0.001, power 0.99 "
        "against every split whose largest/smallest share is 1.5 or more",
    )
    group.addoption(
        "--reports-dir",
        default="reports",
        help="where the JSON summary, the chart and the JUnit XML go (reports; --junitxml "
        "puts the XML elsewhere)",
    )
    parser.addini("kubeverify_target", "the target file, relative to the ini file", default=None)


CLUSTER_NAME_GIVEN = pytest.StashKey[bool]()


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Every installed plugin has registered its options by now, and none is parsed for good:
    pytest-kind's get help that says what they do under kubeverify, and whether --cluster-name
    was given at all is noted (its default, pytest-kind's own name, is not used here; the same
    name given is)."""
    told = {o.flag: o.help for o in providers.all_options(providers.registered()) if o.pytest_kind}
    for option in parser.getgroup("kind").options:
        for name in option.names():
            if name in told:
                option.attrs()["help"] = told[name]
    # args holds the command line with addopts and PYTEST_ADDOPTS in front.
    unset = argparse.Namespace(cluster_name=None)
    given = parser.parse_known_args(args, namespace=unset).cluster_name
    early_config.stash[CLUSTER_NAME_GIVEN] = given is not None


def cluster_name(config: pytest.Config) -> str | None:
    """The kind cluster's name asked for, or None for the target's own."""
    name = config.getoption("cluster_name", None)
    if name == PYTEST_KIND_DEFAULT_NAME and not config.stash.get(CLUSTER_NAME_GIVEN, False):
        return None  # pytest-kind's default, not a name anyone gave
    return name


@pytest.hookimpl(tryfirst=True)  # before pytest's junitxml plugin reads --junitxml
def pytest_configure(config: pytest.Config) -> None:
    # A run with a target writes JUnit XML beside its JSON summary unless told where.
    if target_path(config) is not None and not config.option.xmlpath:
        config.option.xmlpath = str(Path(config.getoption("reports_dir")) / JUNIT_FILE)

    def say(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        with capture.global_and_fixture_disabled():
            if reporter:
                reporter.write_line(message)
            else:
                print(message, flush=True)

    config.stash[RUN] = Run(timer=PhaseTimer(say=say, prefix="[kubeverify]"))


def target_path(config: pytest.Config) -> Path | None:
    given = config.getoption("target")
    if given:
        return Path(given)
    ini = config.getini("kubeverify_target")
    if ini:
        return Path(config.inipath).parent / ini if config.inipath else Path(ini)
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """A target file given is checked before anything runs: one line names the mistake."""
    path = target_path(session.config)
    if path is not None:
        try:
            session.config.stash[RUN].target = load(path)
        except TargetError as error:
            raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def run(pytestconfig: pytest.Config) -> Run:
    return pytestconfig.stash[RUN]


@pytest.fixture(scope="session")
def target(run: Run) -> Target:
    """The target description, loaded and checked once, at the start of the session."""
    if run.target is None:
        raise pytest.UsageError(
            "kubeverify needs a target file: --target PATH (or the kubeverify_target ini value)"
        )
    return run.target


def given_options(config: pytest.Config) -> dict[str, object]:
    """Every provider option's value, by dest (pytest-kind's --cluster-name default as None)."""
    given = {
        option.dest: config.getoption(option.dest, option.default)
        for option in providers.all_options(providers.registered())
    }
    given["cluster_name"] = cluster_name(config)
    return given


@pytest.fixture(scope="session")
def stage(pytestconfig: pytest.Config, run: Run, target: Target):
    """The cluster, up for the session and down after it (only what the run created goes)."""
    from kubeverify.stage import Stage

    installed = providers.registered()
    given = given_options(pytestconfig)
    chosen = providers.choose(given, installed, pytestconfig.getoption("provider"))
    for warning in providers.ignored(chosen, given, installed):
        run.timer.note(f"warning: {warning}")
    interrupt_on_termination()
    try:
        run.stage = Stage(
            target,
            chosen.from_options(given, target, run.timer),
            run.timer,
            image_given=pytestconfig.getoption("image"),
            base_url_given=pytestconfig.getoption("base_url"),
        )
        run.stage.up()
        yield run.stage
    except PreflightError as error:
        pytest.exit(f"kubeverify: {error}", returncode=pytest.ExitCode.USAGE_ERROR)
    finally:
        if run.stage is not None:
            run.stage.down()


@pytest.fixture(scope="session")
def kube(stage: Stage) -> KubeTarget:
    """The cluster and namespace the checks run in: kubectl and the API client."""
    return stage.kube


@pytest.fixture(scope="session")
def images_too() -> list:
    """Images besides the target's that the checks will need, made available with it in one
    pass where the provider builds images: kubeverify's in-cluster client. A conftest adds its
    own by overriding this fixture, asking for it by name and extending the list."""
    from kubeverify.clients import IMAGE

    return [IMAGE]


@pytest.fixture(scope="session")
def image(stage: Stage, images_too: list) -> str:
    return stage.image(also=images_too)


@pytest.fixture(scope="session")
def endpoint(stage: Stage) -> Endpoint:
    """Where the probe request goes, and which headers name the pod and node."""
    return stage.endpoint


@pytest.fixture(scope="session")
def shutdowns(stage: Stage, target: Target):
    """How each of the target's pods deleted during the session shut down (a watch on them,
    from before the Deployment is rolled out)."""
    from kubeverify.shutdown import ShutdownWatch

    with ShutdownWatch(stage.kube, target.selector).running() as watch:
        yield watch


@pytest.fixture(scope="session")
def deployment(stage: Stage, image: str, shutdowns) -> Deployment:
    return stage.roll_out(image)


@pytest.fixture
def settled_pods(deployment: Deployment, endpoint: Endpoint, target: Target) -> list[str]:
    """Every assessment starts from the target's replica count, settled, each pod having
    answered through the Service (the assessment before may have replaced or removed pods)."""
    from kubeverify.stage import settle

    return settle(deployment, endpoint, target.replicas)


@pytest.fixture
def record(request: pytest.FixtureRequest, run: Run):
    """`record(verdict)`: the verdict into the run's report (terminal, JSON, chart) and into
    this check's JUnit `<properties>`; returns it, for the assertion that follows."""

    def record_verdict(verdict: Verdict) -> Verdict:
        run.report.add(request.node.nodeid, verdict)
        request.node.user_properties.append((f"verdict: {verdict.check}", verdict.line()))
        return verdict

    return record_verdict


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """Suite time: wall time of its tests, less the session phases they happened to set up."""
    run = item.config.stash[RUN]
    before, started = run.timer.total(), time.monotonic()
    yield
    if run.stage is None:
        return
    spent = time.monotonic() - started - (run.timer.total() - before)
    run.suites[suite_of(item.nodeid)] += spent


def record_outcome(outcomes: dict[str, str], report: pytest.TestReport) -> None:
    """Each check's outcome for the JSON summary: passed, failed, skipped, or error (its setup
    or teardown failed, so the check itself said nothing)."""
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcomes[report.nodeid] = (
            "error" if report.when == "setup" and report.failed else report.outcome
        )
    elif report.when == "teardown" and report.failed:
        outcomes[report.nodeid] = "error"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    run = item.config.stash[RUN]
    if run.target is not None:
        record_outcome(run.outcomes, report)
    stage = run.stage
    if report.failed and stage is not None and stage.kube is not None:
        from kubeverify.diagnostics import cluster_state

        report.sections.append(("cluster state", cluster_state(stage.kube, stage.target.selector)))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is None or run.stage is None or run.stage.kube is None:
        return  # the stage was never set: nothing was timed or judged
    suites = [(f"suite {name}", seconds) for name, seconds in run.suites.items()]
    rows = run.timer.phases + suites
    terminalreporter.section("kubeverify timing")
    terminalreporter.write_line(format_table(rows))
    terminalreporter.write_line(f"wall time of the session: {time.monotonic() - run.started:.1f} s")
    for _, verdict in run.report.verdicts:
        terminalreporter.write_line(verdict.explain())
    directory = Path(config.getoption("reports_dir"))
    run.report.versions = run.stage.versions
    for path in run.report.write(run.timer.phases, run.suites, run.outcomes, directory):
        terminalreporter.write_line(f"report: {path}")
