"""Every shell command the README shows: replayed as printed, on a fresh clone in a fresh venv,
when it needs no cluster; named below, with where it does run, when it needs one. A command
added to the README and in neither list fails here, so the README cannot drift from what works.

The replays install from PyPI and start servers on 127.0.0.1 (ports 8000 and 8089, as printed):
marked `readme`, run by `nox -s tests` and CI.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kubeverify.waiting import Observation, wait_until
from service.schemas import TUTORIAL_SAMPLE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

INSTALL_NOX = "python3 -m pip install 'nox>=2024.4.15' 'uv>=0.4'"
IN_CLUSTER_LOAD = "nox -s load -- --in-cluster --workers 2"
TEST_COMMAND = (
    "python3 -m pip install -q 'nox>=2024.4.15' 'uv>=0.4' && "
    f"nox -s offline-kind lint tests e2e example && {IN_CLUSTER_LOAD}"
)
INSTALL_SERVE = "python3 -m pip install -e '.[serve,train]'"
RUN_LOCALLY = "python -m service.server --host 127.0.0.1 --port 8000"
RUN_APP_ALONE = "uvicorn service.app:app --host 127.0.0.1 --port 8000"
INSTALL_E2E = "python3 -m pip install -e ./kubeverify -e '.[e2e]'"
LOCUST_LOCALLY = "locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 --expected-pods 1"
INSTALL_PLUGIN = "python3 -m pip install ./kubeverify"
PLUGIN_VERSION = "python -m kubeverify --version"

REPLAYED = {
    INSTALL_SERVE,
    RUN_LOCALLY,
    RUN_APP_ALONE,
    INSTALL_E2E,
    LOCUST_LOCALLY,
    INSTALL_PLUGIN,
    PLUGIN_VERSION,
}
TUTORIAL = "e2e/test_tutorial.py, as written, on the e2e cluster"
# Each runs on a real cluster in CI, as part of what the second column names.
NEEDS_A_CLUSTER = {
    f"{INSTALL_NOX} && nox -s e2e": "the sessions of the test command",
    TEST_COMMAND: ".ci/run, word for word (checked below)",
    "python -m kubeverify examples/echo/verify.toml": "nox -s example",
    "pytest e2e/ -k scaling": "nox -s e2e (pytest e2e)",
    "pytest e2e/ --keep-cluster": "nox -s e2e (pytest e2e); e2e/test_cluster_ownership.py",
    "pytest e2e/ --kubeconfig ~/.kube/config --context my-cluster --image registry/iris:1.0 "
    "--base-url http://my-node:30080": "needs a cluster of the reader's own",
    "locust -f loadtest/locustfile.py --host http://127.0.0.1:30080": "e2e/test_locust.py",
    "nox -s load": "e2e/test_locust.py runs the same locustfile on the cluster",
    "nox -s load -- --users 50 --run-time 60 --max-skew 1.3 --max-p95-ms 200": "as nox -s load",
    IN_CLUSTER_LOAD: ".ci/run, the last command of the test command",
    # The tutorial's steps by hand: the stage makes the cluster, image and load the first
    # three say; e2e/test_tutorial.py runs the rest as written.
    "kind create cluster --config kind-config.yaml": "the kind provider, with --name iris-e2e",
    "docker build -t iris-classifier:poc .": "the kind provider (verify.toml's [image])",
    "kind load docker-image iris-classifier:poc": "the kind provider, into iris-e2e",
    "kubectl apply -f manifests/": TUTORIAL,
    "kubectl rollout status deployment/iris-classifier": TUTORIAL,
    "kubectl port-forward service/iris-classifier 8080:8080 &": TUTORIAL,
    "curl http://127.0.0.1:8080/healthcheck": TUTORIAL,
    "curl -X POST http://127.0.0.1:8080/iris/classify_iris -H 'Content-Type: application/json' "
    '-d \'{"sepal_length": 2, "sepal_width": 4, "petal_length": 2, "petal_width": 4}\'': (TUTORIAL),
    'export PATH="$(python3 -m ci.offline_kind env path):$PATH"': TUTORIAL,
    'kind create cluster --config kind-config.yaml --image "$(python3 -m ci.offline_kind env '
    'node_image)"': "the kind provider on the offline path, with --name iris-e2e",
    'docker build --build-arg BASE_IMAGE="$(python3 -m ci.offline_kind env base_image)" -t '
    "iris-classifier:poc .": "the kind provider on the offline path (nox -s image)",
}
SERVER_TIMEOUT = 120  # the service trains its model at start-up here; Locust imports scipy
STOP_GRACE = 10


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```sh blocks: continuations joined, comments dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def test_every_readme_command_is_replayed_or_named_as_needing_a_cluster():
    commands = set(readme_commands(README.read_text()))
    unaccounted = commands - REPLAYED - set(NEEDS_A_CLUSTER)
    assert not unaccounted, f"README commands neither replayed nor listed: {unaccounted}"
    stale = (REPLAYED | set(NEEDS_A_CLUSTER)) - commands
    assert not stale, f"listed here but no longer in the README: {stale}"


def test_ci_runs_the_test_command_exactly_as_the_readme_prints_it():
    run = (ROOT / ".ci" / "run").read_text().splitlines()
    assert run[-3:] == TEST_COMMAND.split(" && "), run[-3:]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh clone of this checkout's HEAD and a fresh venv, PATH set as if activated."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout: nothing to clone")
    where = tmp_path_factory.mktemp("readme")
    clone = where / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    return clone, env


def shell(command: str, fresh, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    clone, env = fresh
    return subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Started:
    """A README command that serves until stopped, with its output kept in a file."""

    def __init__(self, command: str, fresh, log: Path) -> None:
        clone, env = fresh
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.log.read_text()


def answers(url: str, process: subprocess.Popen) -> Observation:
    if process.poll() is not None:
        raise AssertionError(f"exited {process.returncode} before answering {url}")
    try:
        return Observation(httpx.get(url, timeout=2).status_code == 200, f"{url} answered")
    except httpx.HTTPError as error:
        return Observation(False, f"{url}: {error!r}")


@pytest.mark.readme
@pytest.mark.parametrize("command", [RUN_LOCALLY, RUN_APP_ALONE], ids=["server", "uvicorn"])
def test_run_it_locally_serves_the_tutorial_sample_and_logs_each_request_once(
    fresh, tmp_path, command
):
    installed = shell(INSTALL_SERVE, fresh)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    server = Started(command, fresh, tmp_path / "server.log")
    try:
        wait_until(
            lambda: answers("http://127.0.0.1:8000/healthcheck", server.process),
            what="the service answering",
            timeout=SERVER_TIMEOUT,
        )
        assert httpx.get("http://127.0.0.1:8000/docs", timeout=5).status_code == 200
        answer = httpx.post(
            "http://127.0.0.1:8000/iris/classify_iris", json=TUTORIAL_SAMPLE, timeout=5
        )
        assert answer.json()["class"] == "setosa"
    finally:
        log = server.stop()
    classify_lines = [line for line in log.splitlines() if "/iris/classify_iris" in line]
    assert len(classify_lines) == 1, log  # the server's own line, not uvicorn's besides


@pytest.mark.readme
def test_locust_web_ui_against_the_local_service_passes_with_one_pod(fresh, tmp_path):
    for install in (INSTALL_SERVE, INSTALL_E2E):
        installed = shell(install, fresh)
        assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    server = Started(RUN_LOCALLY, fresh, tmp_path / "server.log")
    locust = None
    try:
        wait_until(
            lambda: answers("http://127.0.0.1:8000/healthcheck", server.process),
            what="the service answering",
            timeout=SERVER_TIMEOUT,
        )
        locust = Started(LOCUST_LOCALLY, fresh, tmp_path / "locust.log")
        wait_until(
            lambda: answers("http://127.0.0.1:8089/", locust.process),
            what="Locust's web UI",
            timeout=SERVER_TIMEOUT,
        )
        httpx.post(
            "http://127.0.0.1:8089/swarm", data={"user_count": 2, "spawn_rate": 2}, timeout=5
        )
        verdict = wait_until(
            lambda: _verdict_passed(httpx.get("http://127.0.0.1:8089/kubeverify/verdict").json()),
            what="a passing verdict in Locust's web UI",
            timeout=60,
            interval=1,
        ).value
        httpx.get("http://127.0.0.1:8089/stop", timeout=5)
    finally:
        if locust:
            locust.stop()
        server.stop()
    assert len(verdict["pods"]) == 1, verdict


def _verdict_passed(verdict: dict) -> Observation:
    done = verdict["passed"] and sum(verdict["pods"].values()) >= 20
    return Observation(done, verdict["verdict"], verdict)


@pytest.mark.readme
def test_installing_kubeverify_gives_pytest_its_options_and_no_package_of_iris(
    fresh, tmp_path_factory
):
    clone, env = fresh
    venv = tmp_path_factory.mktemp("plugin") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    own = (clone, {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ['PATH']}"})
    installed = shell(INSTALL_PLUGIN, own)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    # From a directory of no project: the options come from the installed entry point alone.
    listed = subprocess.run(
        [str(venv / "bin" / "pytest"), "--help"],
        cwd=tmp_path_factory.mktemp("elsewhere"),
        env=own[1],
        capture_output=True,
        text=True,
        check=False,
    )
    for option in ("--target", "--toolchain-env", "--publish-port", "--image"):
        assert option in listed.stdout, listed.stdout[-3000:]
    # The plugin alone: no top-level package of this repository's, none of the service's
    # libraries.
    for module in ("service", "fastapi", "loadtest", "ci"):
        absent = subprocess.run(
            [str(venv / "bin" / "python"), "-c", f"import {module}"],
            cwd=tmp_path_factory.mktemp("elsewhere"),
            env=own[1],
            capture_output=True,
            check=False,
        )
        assert absent.returncode != 0, module
    version = shell(PLUGIN_VERSION, own)
    assert version.stdout.startswith("kubeverify 0."), version.stdout + version.stderr
