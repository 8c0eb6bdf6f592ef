"""How the stage reads the options before it makes anything: which kubectl an existing-cluster
run uses, and a warning for an option given in the mode that does not use it."""

from pathlib import Path

import pytest
from kubernetes.config.config_exception import ConfigException

from kubeverify.cluster import ExistingCluster
from kubeverify.preflight import PreflightError
from kubeverify.stage import Options, Stage
from kubeverify.target import load
from kubeverify.timing import PhaseTimer
from tests.test_target import MINIMAL


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


def test_an_existing_cluster_is_driven_with_the_kubectl_given(target, timer, tmp_path, no_path):
    given = str(tmp_path / "my-kubectl")
    stage = Stage(target, Options(kubeconfig=tmp_path / "absent", kubectl_bin=given), timer)
    with pytest.raises(ConfigException):  # the API is asked first; no such kubeconfig here
        stage.up()
    assert stage.cluster.kube.kubectl_path == given


def test_an_existing_cluster_with_no_kubectl_stops_the_run_naming_the_option(timer, no_path):
    with pytest.raises(PreflightError) as error:
        ExistingCluster(Path("kubeconfig"), "mine", timer)
    assert str(error.value) == (
        "no kubectl on PATH: install it (https://kubernetes.io/docs/tasks/tools/#kubectl), or "
        "pass --kind-kubectl-bin PATH"
    )


def test_publish_port_with_an_existing_cluster_is_warned_about(target, timer, said, no_path):
    stage = Stage(target, Options(context="mine", publish_port=31000), timer)
    with pytest.raises(PreflightError, match="no kubectl"):
        stage.up()
    assert said == [
        "[test] warning: --publish-port 31000 is for a kind cluster; this run uses an existing "
        "one (--kubeconfig or --context): ignored, --base-url says where the Service is reached"
    ]


def test_namespace_with_a_kind_cluster_is_warned_about(target, timer, said, monkeypatch):
    monkeypatch.setenv("KUBEVERIFY_TOOLCHAIN", "sideways")  # stops the run right after
    stage = Stage(target, Options(namespace="mine"), timer)
    with pytest.raises(PreflightError, match="KUBEVERIFY_TOOLCHAIN"):
        stage.up()
    assert said == [
        "[test] warning: --namespace mine is for an existing cluster (--kubeconfig or "
        "--context); this run makes a kind cluster: ignored, the target's namespace is used"
    ]


def test_options_of_the_mode_in_use_are_not_warned_about():
    assert Options(publish_port=31000).unused() == []
    assert Options(kubeconfig=Path("k"), namespace="mine").unused() == []
    assert Options(context="c", namespace="mine").unused() == []
