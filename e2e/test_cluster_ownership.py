"""A run deletes only a cluster it created: another run, given this session's kind cluster
(created outside that run), reuses it with a kubeconfig fetched fresh when its config matches,
refuses it in one line when it does not, and leaves it running either way."""

import subprocess
import sys
from pathlib import Path

import pytest

from kubeverify import KindProvider

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 300


@pytest.fixture
def kind_cluster(stage, deployment):
    if stage.provider.name != KindProvider.name:
        pytest.skip(f"the {stage.provider.name} provider: no kind cluster of this session's")
    return stage.provider.cluster


def another_run(kind_cluster, pytestconfig, cwd: Path, target: Path, *args: str):
    """`python -m kubeverify` in its own directory (its own .pytest-kind), on this cluster."""
    command = [
        sys.executable, "-m", "kubeverify", str(target), "--cluster-name", kind_cluster.name,
        "--reports-dir", str(cwd / "reports"), "-p", "no:cacheprovider", *args,
    ]  # fmt: skip
    if toolchain_env := pytestconfig.getoption("toolchain_env"):
        command += ["--toolchain-env", toolchain_env]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


def assert_still_serving(kind_cluster, kube, settled_pods):
    assert kind_cluster.exists(), f"{kind_cluster.name} was deleted by another run"
    assert {pod.name for pod in kube.pods("app=iris-classifier") if pod.ready} == set(settled_pods)


def test_a_run_whose_config_differs_refuses_the_cluster_in_one_line_and_leaves_it(
    kind_cluster, kube, settled_pods, pytestconfig, tmp_path
):
    # The echo example publishes 127.0.0.1:30081, which this cluster does not.
    done = another_run(kind_cluster, pytestconfig, tmp_path, ROOT / "examples/echo/verify.toml")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if "does not match" in line]
    assert f"a kind cluster named {kind_cluster.name} exists" in line
    assert "--cluster-name" in line
    assert f"delete cluster --name {kind_cluster.name}" in line
    assert_still_serving(kind_cluster, kube, settled_pods)


def test_a_run_with_a_stale_kubeconfig_reuses_the_cluster_and_leaves_it(
    kind_cluster, kube, settled_pods, pytestconfig, tmp_path
):
    stale = tmp_path / ".pytest-kind" / kind_cluster.name / "kubeconfig"
    stale.parent.mkdir(parents=True)
    stale.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: gone, cluster: "
        "{server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: gone, context: {cluster: gone}}]\n"
        "current-context: gone\n"
    )
    done = another_run(
        kind_cluster, pytestconfig, tmp_path, ROOT / "verify.toml", "-k", "probe_is_answered"
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"reuse cluster {kind_cluster.name}" in done.stdout
    assert "was there before this run: left as it was" in done.stdout
    assert "127.0.0.1:1" not in stale.read_text()  # replaced by kind's own
    assert_still_serving(kind_cluster, kube, settled_pods)
