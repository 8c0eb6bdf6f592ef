"""Environment for the e2e suites: cluster, image and deployment as session fixtures.

Test files hold only assessments. Everything that sets the stage (toolchain, cluster, image,
rollout) is a session fixture here, timed as a phase; every failure is reported with the
cluster state a person needs.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e.harness import deploy, diagnostics, environment
from e2e.harness.cluster import CLUSTER_NAME, NODE_PORT_URL, ExistingCluster, KindProjectCluster
from e2e.harness.deploy import Deployment
from e2e.harness.kube import KubeTarget
from e2e.harness.report import RunReport
from e2e.harness.timing import PhaseTimer, format_table
from e2e.harness.toolchain import detect
from e2e.harness.traffic import wait_until_every_pod_answers

DEFAULT_IMAGE = "iris-classifier:poc"
PYTEST_KIND_DEFAULT_NAME = "pytest-kind"


@dataclass
class E2ERun:
    timer: PhaseTimer
    report: RunReport = field(default_factory=RunReport)
    target: KubeTarget | None = None
    suites: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    started: float = field(default_factory=time.monotonic)


RUN = pytest.StashKey[E2ERun]()


def pytest_addoption(parser: pytest.Parser) -> None:
    # pytest-kind already offers --cluster-name, --keep-cluster, --kubeconfig, --kind-image,
    # --kind-bin and --kind-kubectl-bin; these complete them for this project.
    group = parser.getgroup("iris e2e")
    group.addoption(
        "--context", default=None, help="existing-cluster mode: the kubeconfig context to use"
    )
    group.addoption(
        "--image",
        default=None,
        help=f"image to deploy; kind: the tag built and loaded ({DEFAULT_IMAGE}); "
        "existing cluster: an image the cluster can pull (required)",
    )
    group.addoption(
        "--base-url",
        default=NODE_PORT_URL,
        help="where the Service is reached from this machine (kind: the NodePort "
        "published by kind-config.yaml)",
    )
    group.addoption("--namespace", default="default", help="namespace to deploy into")


def pytest_configure(config: pytest.Config) -> None:
    def say(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        with capture.global_and_fixture_disabled():
            if reporter:
                reporter.write_line(message)
            else:
                print(message, flush=True)

    config.stash[RUN] = E2ERun(timer=PhaseTimer(say=say))

    # A terminated run (CI timeout, `kill`) tears down like Ctrl-C: no cluster is left behind.
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def _existing_cluster_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("kubeconfig") or config.getoption("context"))


@pytest.fixture(scope="session")
def run(pytestconfig: pytest.Config) -> E2ERun:
    return pytestconfig.stash[RUN]


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config, run: E2ERun):
    if _existing_cluster_mode(pytestconfig):
        kubeconfig = pytestconfig.getoption("kubeconfig") or str(Path.home() / ".kube/config")
        project_cluster = ExistingCluster(
            Path(kubeconfig),
            pytestconfig.getoption("context"),
            run.timer,
            pytestconfig.getoption("namespace"),
        )
        run.report.toolchain = "existing cluster"
    else:
        toolchain = detect()
        run.timer.note(f"toolchain: {toolchain.describe()}")
        run.report.toolchain = toolchain.describe()
        name = pytestconfig.getoption("cluster_name")
        project_cluster = KindProjectCluster(
            toolchain,
            run.timer,
            name=CLUSTER_NAME if name == PYTEST_KIND_DEFAULT_NAME else name,
            keep=pytestconfig.getoption("keep_cluster"),
        )
    try:
        run.target = project_cluster.up()
        yield project_cluster
    finally:
        project_cluster.down()


@pytest.fixture(scope="session")
def target(run: E2ERun, cluster) -> KubeTarget:
    return run.target


@pytest.fixture(scope="session")
def image(pytestconfig: pytest.Config, run: E2ERun, cluster) -> str:
    tag = pytestconfig.getoption("image")
    if isinstance(cluster, ExistingCluster):
        if not tag:
            raise pytest.UsageError(
                "existing-cluster mode needs --image: an image your "
                "cluster can pull (this harness builds only for kind)"
            )
        return tag
    tag = tag or DEFAULT_IMAGE
    run.report.figures["image"] = environment.build_and_load(cluster, tag, run.timer).describe()
    return tag


@pytest.fixture(scope="session")
def service_url(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("base_url").rstrip("/")


@pytest.fixture(scope="session")
def deployment(run: E2ERun, target: KubeTarget, image: str, service_url: str) -> Deployment:
    deployment = environment.roll_out(target, image, service_url, run.timer)
    return deployment


@pytest.fixture
def three_replicas(deployment: Deployment, service_url: str) -> list[str]:
    """Every assessment starts from the tutorial's state: 3 settled replicas, each answering
    through the Service (the assessment before may have replaced or removed pods)."""
    if not deployment.settled(deploy.DEFAULT_REPLICAS).done:
        deployment.apply(replicas=deploy.DEFAULT_REPLICAS)
    pods = deployment.wait_settled(deploy.DEFAULT_REPLICAS)
    wait_until_every_pod_answers(service_url, pods)
    return pods


@pytest.fixture
def report(run: E2ERun) -> RunReport:
    return run.report


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """Suite time: wall time of its tests, less the session phases they happened to set up."""
    run = item.config.stash[RUN]
    before, started = run.timer.total(), time.monotonic()
    yield
    spent = time.monotonic() - started - (run.timer.total() - before)
    run.suites[Path(str(item.path)).stem.removeprefix("test_")] += spent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    target = item.config.stash[RUN].target
    if report.failed and target is not None:
        report.sections.append(
            ("cluster state", diagnostics.cluster_state(target, deploy.SELECTOR))
        )


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is None or (not run.timer.phases and not run.suites):
        return
    suites = [(f"suite {name}", seconds) for name, seconds in run.suites.items()]
    rows = run.timer.phases + suites
    terminalreporter.section("e2e timing")
    terminalreporter.write_line(format_table(rows))
    terminalreporter.write_line(f"wall time of the session: {time.monotonic() - run.started:.1f} s")
    for label, verdict in run.report.distributions.items():
        terminalreporter.write_line(f"{label}: {verdict.explain()}")
    for path in run.report.write(run.timer.phases, suites):
        terminalreporter.write_line(f"report: {path}")
