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

from kubeverify.preflight import MIN_KIND, PINNED_KIND, PreflightError
from kubeverify.processes import interrupt_on_termination
from kubeverify.report import RunReport, suite_of
from kubeverify.target import Target, TargetError, load
from kubeverify.timing import PhaseTimer, format_table
from kubeverify.toolchain import ENV_FILE_VARIABLE

if TYPE_CHECKING:
    from kubeverify.deployment import Deployment
    from kubeverify.kube import KubeTarget
    from kubeverify.stage import Stage
    from kubeverify.traffic import Endpoint

PYTEST_KIND_DEFAULT_NAME = "pytest-kind"  # pytest-kind's --cluster-name default
JUNIT_FILE = "e2e-junit.xml"

# pytest-kind's options that kubeverify honours, told as they work here (pytest-kind's own help
# describes its kind_cluster fixture, which kubeverify does not use).
PYTEST_KIND_HELP = {
    "--cluster-name": "the kind cluster's name; kubeverify's default: the target's [cluster] "
    "name (pytest-kind's kind_cluster fixture: pytest-kind)",
    "--keep-cluster": "kubeverify: keep a kind cluster this run created (the next run reuses it "
    "and leaves it) or, in existing-cluster mode, the run's namespace; a cluster the run did "
    "not create is never deleted, kept or not",
    "--kubeconfig": "kubeverify: existing-cluster mode, on the cluster of this kubeconfig (see "
    "--context), where the run creates nothing but a namespace of its own (pytest-kind's "
    "kind_cluster fixture: this kubeconfig instead of the one kind writes)",
    "--kind-image": "the kind node image; kubeverify's default: the offline toolchain's, else "
    "the one the kind release pins by digest",
    "--kind-bin": f"the kind to run, at least {'.'.join(map(str, MIN_KIND[:2]))} (an older one "
    f"stops the run); kubeverify's default: the offline toolchain's, else PATH's if new "
    f"enough, else kind {PINNED_KIND}, downloaded once and checksum-verified",
    "--kind-kubectl-bin": "the kubectl to run, in kind and in existing-cluster mode; "
    "kubeverify's default: the offline toolchain's, else PATH's; never downloaded",
}


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
    # pytest-kind already offers --cluster-name, --keep-cluster, --kubeconfig, --kind-image,
    # --kind-bin and --kind-kubectl-bin, which this plugin honours (their help is retold in
    # pytest_load_initial_conftests); these complete them.
    group = parser.getgroup("kubeverify", "kubeverify: verify a Deployment and its Service")
    group.addoption(
        "--target",
        default=None,
        help="the target file (TOML) describing what to verify; default: the "
        "kubeverify_target ini value",
    )
    group.addoption(
        "--toolchain-env",
        default=None,
        help=f"offline toolchain env file, for machines that reach no registry "
        f"(default: ${ENV_FILE_VARIABLE})",
    )
    group.addoption(
        "--context",
        default=None,
        help="existing-cluster mode (with or without --kubeconfig): the kubeconfig context",
    )
    group.addoption(
        "--namespace",
        default=None,
        help="existing-cluster mode: a namespace to use as it is; default: one created for "
        "the run and deleted after it (--keep-cluster keeps it)",
    )
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
        "--publish-port",
        type=int,
        default=None,
        help="kind: publish the Service on this 127.0.0.1 port instead of the target url's "
        "(the kind config is rewritten to match)",
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
    for option in parser.getgroup("kind").options:
        for name in option.names():
            if name in PYTEST_KIND_HELP:
                option.attrs()["help"] = PYTEST_KIND_HELP[name]
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


@pytest.fixture(scope="session")
def stage(pytestconfig: pytest.Config, run: Run, target: Target):
    """The cluster, up for the session and down after it (only what the run created goes)."""
    from kubeverify.stage import Options, Stage

    option = pytestconfig.getoption
    options = Options(
        toolchain_env=option("toolchain_env"),
        # pytest-kind's own options, honoured here as PYTEST_KIND_HELP tells.
        kind_bin=option("kind_bin", None),
        kubectl_bin=option("kind_kubectl_bin", None),
        node_image=option("kind_image", None),
        publish_port=option("publish_port"),
        cluster_name=cluster_name(pytestconfig),
        keep=bool(option("keep_cluster", False)),
        kubeconfig=Path(option("kubeconfig")) if option("kubeconfig", None) else None,
        context=option("context"),
        namespace=option("namespace"),
        image=option("image"),
        base_url=option("base_url"),
    )
    run.stage = Stage(target, options, run.timer)
    interrupt_on_termination()
    try:
        try:
            run.stage.up()
        except PreflightError as error:
            pytest.exit(f"kubeverify: {error}", returncode=pytest.ExitCode.USAGE_ERROR)
        run.report.toolchain = "; ".join(run.stage.notes)
        run.report.versions = run.stage.versions
        yield run.stage
    finally:
        run.stage.down()


@pytest.fixture(scope="session")
def kube(stage: Stage) -> KubeTarget:
    """The cluster and namespace the checks run in: kubectl and the API client."""
    return stage.kube


@pytest.fixture(scope="session")
def image(stage: Stage, run: Run) -> str:
    tag = stage.image()
    if stage.image_info:
        run.report.figures["image"] = stage.image_info.describe()
    return tag


@pytest.fixture(scope="session")
def endpoint(stage: Stage) -> Endpoint:
    """Where the probe request goes, and which headers name the pod and node."""
    return stage.endpoint


@pytest.fixture(scope="session")
def deployment(stage: Stage, image: str) -> Deployment:
    return stage.roll_out(image)


@pytest.fixture
def settled_pods(deployment: Deployment, endpoint: Endpoint, target: Target) -> list[str]:
    """Every assessment starts from the target's replica count, settled, each pod having
    answered through the Service (the assessment before may have replaced or removed pods)."""
    from kubeverify.traffic import wait_until_every_pod_answers

    if not deployment.settled(target.replicas).done:
        deployment.apply(replicas=target.replicas)
    pods = deployment.wait_settled(target.replicas)
    wait_until_every_pod_answers(endpoint, pods)
    return pods


@pytest.fixture
def report(run: Run) -> RunReport:
    return run.report


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
    for label, verdict in run.report.distributions.items():
        terminalreporter.write_line(f"{label}: {verdict.explain()}")
    directory = Path(config.getoption("reports_dir"))
    for path in run.report.write(run.timer.phases, run.suites, run.outcomes, directory):
        terminalreporter.write_line(f"report: {path}")
