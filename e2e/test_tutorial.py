"""The tutorial's steps by hand, as README.md prints them for the path this run is on: the
apply, the port-forward and the two curls, and the scale to 2 replicas by re-applying, run as
written (kubectl and curl, in a copy of the manifests) on the e2e cluster, whose stage kind made
from the same kind-config.yaml, image and tag. What each printed goes to
reports/e2e-tutorial.txt. On the offline path, with the PATH line the README gives it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kubeverify import KindProvider, Observation, wait_until
from service.app import HEALTHY
from service.schemas import TUTORIAL_SAMPLE

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## The tutorial's steps by hand"
COMMAND_TIMEOUT = 180
FORWARD_TIMEOUT = 30


def tutorial_blocks(readme: str) -> list[list[str]]:
    """The commands of the section's ```sh blocks: the steps, then the offline path's lines."""
    section = readme[readme.index(HEADING) :]
    section = section[: section.index("\n## ", len(HEADING))]
    return [
        [line.strip() for line in block.splitlines() if line.strip()]
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
    ]


def the(commands: list[str], start: str) -> str:
    (found,) = [command for command in commands if command.startswith(start)]
    return found


class Replay:
    """README lines run as a person runs them: by a shell, in a directory holding a copy of
    the manifests, with this cluster's kubeconfig and kubectl."""

    def __init__(self, kube, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix = ""  # a line every command runs after (the offline path's PATH)
        self.env = {
            **os.environ,
            "KUBECONFIG": str(Path(kube.kubeconfig).resolve()),
            "PATH": f"{Path(kube.kubectl_path).parent}{os.pathsep}{os.environ['PATH']}",
        }
        self.transcript: list[str] = []

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-c", f"{self.prefix}{command}"], cwd=self.workdir, env=self.env,
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
        )  # fmt: skip
        # stderr where the command failed: on success it holds curl's progress meter alone.
        said = done.stdout + (done.stderr if done.returncode else "")
        self.transcript.append(f"$ {command}\n{said.rstrip()}\n(exit {done.returncode})")
        return done

    def background(self, command: str) -> subprocess.Popen:
        """`command &`, as one process that this test stops."""
        self.transcript.append(f"$ {command}")
        foreground = command.removesuffix("&").strip()
        return subprocess.Popen(
            ["bash", "-c", f"{self.prefix}exec {foreground}"], cwd=self.workdir, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


@pytest.fixture
def replay(stage, kube, tmp_path, pytestconfig):
    if stage.provider.name != KindProvider.name:
        pytest.skip("the tutorial's steps are for the kind cluster kind-config.yaml makes")
    # A copy of the manifests (the scale step edits one) beside the repository's ci/ (the
    # offline path's lines ask it for the toolchain's paths), as in a checkout's root.
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests", symlinks=True)
    (tmp_path / "ci").symlink_to(ROOT / "ci")
    replay = Replay(kube, tmp_path)
    if stage.provider.toolchain.offline:
        path = the(tutorial_blocks((ROOT / "README.md").read_text())[1], "export PATH=")
        replay.transcript.append(f"$ {path}")
        replay.prefix = f"{path}\n"
    yield replay
    reports = Path(pytestconfig.getoption("reports_dir"))
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "e2e-tutorial.txt").write_text("\n\n".join(replay.transcript) + "\n")


def test_the_tutorials_steps_work_as_the_readme_prints_them(
    replay, settled_pods, deployment, kube, target, run
):
    steps, _ = tutorial_blocks((ROOT / "README.md").read_text())
    apply = the(steps, "kubectl apply")
    try:
        applied = replay.run(apply)
        assert applied.returncode == 0, applied.stderr
        rolled = replay.run(the(steps, "kubectl rollout status"))
        assert rolled.returncode == 0, rolled.stderr
        forward = replay.background(the(steps, "kubectl port-forward"))
        try:
            said = forward.stdout.readline()  # kubectl says where it listens, then serves
            assert said.startswith("Forwarding from 127.0.0.1:8080"), said
            health = replay.run(the(steps, "curl http"))
            classify = replay.run(the(steps, "curl -X POST"))
        finally:
            forward.terminate()
            forward.wait(FORWARD_TIMEOUT)
        assert json.loads(health.stdout) == HEALTHY
        body = shlex.split(the(steps, "curl -X POST"))[-1]
        assert json.loads(body) == TUTORIAL_SAMPLE
        assert json.loads(classify.stdout)["class"] == "setosa"

        # "change replicas: 3 to replicas: 2 in manifests/deployment.yaml and apply again"
        manifest = replay.workdir / "manifests" / "deployment.yaml"
        assert manifest.read_text().count("replicas: 3") == 1
        manifest.write_text(manifest.read_text().replace("replicas: 3", "replicas: 2"))
        replay.transcript.append("(manifests/deployment.yaml: replicas: 3 -> replicas: 2)")
        rescaled = replay.run(apply)
        assert rescaled.returncode == 0, rescaled.stderr
        two = deployment.wait_settled(2)
        assert len(two) == 2
        assert set(two) < set(settled_pods)
        # The removed pod has exited; a person's `kubectl get pods` lists it until the kubelet
        # removes it from the API, some seconds later: the listing is taken after that.
        wait_until(
            lambda: Observation(len(kube.pods("app=iris-classifier")) == 2, "pods in the API"),
            what="the removed pod gone from the API",
            timeout=60,
        )
        listed = replay.run("kubectl get pods -l app=iris-classifier --no-headers")
        assert len(listed.stdout.splitlines()) == 2, listed.stdout
    finally:
        deployment.apply(replicas=target.replicas)
    run.timer.note("the tutorial's steps, replayed:\n" + "\n".join(replay.transcript))
