"""The target file: what a user writes once, checked field by field before any cluster."""

from pathlib import Path

import pytest

from kubeverify.providers.kind.cluster import kind_config
from kubeverify.target import TargetError, load
from service.schemas import TUTORIAL_SAMPLE

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
deployment = "web"
selector = "app=web"
manifests = "manifests"

[image]
tag = "web:1"

[[services]]
name = "web"
url = "http://127.0.0.1:30099"

[probe]
path = "/"
"""


@pytest.fixture
def write(tmp_path):
    (tmp_path / "manifests").mkdir()

    def write(text: str) -> Path:
        path = tmp_path / "verify.toml"
        path.write_text(text)
        return path

    return write


def test_a_minimal_target_takes_the_defaults(write):
    target = load(write(MINIMAL))
    assert (target.name, target.selector, target.replicas, target.namespace) == (
        "web",
        "app=web",
        3,
        "default",
    )
    assert target.image.context is None  # loaded as it is, never built
    assert (target.probe.method, target.probe.status, target.pod_header) == (
        "GET",
        200,
        "X-Pod-Name",
    )
    assert target.base_url == "http://127.0.0.1:30099"
    assert target.manifests == write(MINIMAL).parent / "manifests"
    assert target.enforce_sigterm_exit is False  # a pod that ignores SIGTERM is a finding
    enforced = load(write(MINIMAL + "\n[shutdown]\nenforce_sigterm_exit = true\n"))
    assert enforced.enforce_sigterm_exit is True
    assert target.enforce_power is False  # a pass short of its power says so, and passes
    assert load(write(MINIMAL + "\n[verdicts]\nenforce_power = true\n")).enforce_power is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('deployment = "web"', ""), "deployment: missing"),
        (('deployment = "web"', "deployment = 3"), "deployment: must be a non-empty string"),
        (('[probe]\npath = "/"', '[probe]\npath = "x"'), "probe.path: must start with '/'"),
        (("[probe]", "[probe]\nstatus = 999"), "probe.status: must be a whole number"),
        (("[probe]", "[probe]\nexpect_json = 3"), "probe.expect_json: must be a table"),
        (('manifests = "manifests"', 'manifests = "nowhere"'), "is not a directory"),
        (('manifests = "manifests"', 'manifests = "manifests"\nreplicas = 1'), "replicas"),
        (('manifests = "manifests"', 'manifests = "manifests"\ncolour = 1'), "colour: unknown"),
        (('url = "http://127.0.0.1:30099"', 'url = "ftp://x"'), "services[0].url"),
        (('url = "http://127.0.0.1:30099"', ""), "at least one service needs a url"),
        (('tag = "web:1"', 'tag = "web:1"\nbuild = "."'), "image.build: no Dockerfile"),
        (('tag = "web:1"', 'tag = "web:1"\ndockerfile = "D"'), "needs image.build"),
        (("[probe]", "[shutdown]\nenforce_sigterm_exit = 1\n[probe]"), "must be true or false"),
        (("[probe]", "[shutdown]\nenforce = true\n[probe]"), "shutdown.enforce: unknown"),
        (("[probe]", "[verdicts]\nenforce_power = 'yes'\n[probe]"), "verdicts.enforce_power: must"),
    ],
)
def test_each_mistake_names_the_file_and_the_field(write, change, message):
    path = write(MINIMAL.replace(*change))
    with pytest.raises(TargetError, match=r"verify\.toml") as error:
        load(path)
    assert message in str(error.value)


def test_a_missing_or_broken_file_is_a_target_error(tmp_path):
    with pytest.raises(TargetError, match="does not exist"):
        load(tmp_path / "nothing.toml")
    (tmp_path / "bad.toml").write_text("deployment = ")
    with pytest.raises(TargetError, match="not valid TOML"):
        load(tmp_path / "bad.toml")


def test_the_probe_judges_status_and_the_expected_json_subset(write):
    probe = load(write(MINIMAL + 'expect_json = { class = "setosa" }\n')).probe
    assert probe.json_problem(lambda: {"class": "setosa", "probability": 0.99}) is None
    assert "expected" in probe.json_problem(lambda: {"class": "virginica"})
    assert "not a JSON object" in probe.json_problem(lambda: ["setosa"])

    def not_json():
        raise ValueError("Expecting value")

    assert "not JSON" in probe.json_problem(not_json)


def test_kind_config_is_generated_from_workers_and_loopback_urls(write):
    target = load(write(MINIMAL + "\n[cluster]\nworkers = 3\n"))
    config = kind_config(target)
    roles = [node["role"] for node in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker"]
    (mapping,) = config["nodes"][0]["extraPortMappings"]
    assert mapping == {
        "containerPort": 30099,
        "hostPort": 30099,
        "listenAddress": "127.0.0.1",
        "protocol": "TCP",
    }


def test_kube_proxy_mode_goes_into_the_generated_kind_config(write):
    target = load(write(MINIMAL + '\n[cluster]\nkube_proxy_mode = "nftables"\n'))
    assert kind_config(target)["networking"] == {"kubeProxyMode": "nftables"}
    assert "kubeadmConfigPatches" not in kind_config(target)
    assert "networking" not in kind_config(load(write(MINIMAL)))


@pytest.mark.parametrize(
    ("cluster", "says"),
    [
        ('kube_proxy_mode = "userspace"', "must be one of iptables, nftables, ipvs"),
        ('kube_proxy_mode = "ipvs"\nkind_config = "kind.yaml"', "set networking.kubeProxyMode"),
    ],
)
def test_a_kube_proxy_mode_kind_cannot_run_is_refused(write, cluster, says):
    (write(MINIMAL).parent / "kind.yaml").write_text("kind: Cluster\n")
    with pytest.raises(TargetError, match=r"cluster\.kube_proxy_mode") as refused:
        load(write(MINIMAL + f"\n[cluster]\n{cluster}\n"))
    assert says in str(refused.value)


def test_the_iris_and_echo_targets_load(write):
    iris = load(ROOT / "verify.toml")
    assert iris.probe.json == TUTORIAL_SAMPLE  # the tutorial's sample, the same as the service's
    # The tutorial's own numbers, pinned here once; every other test uses the constant.
    assert TUTORIAL_SAMPLE == {
        "sepal_length": 2, "sepal_width": 4, "petal_length": 2, "petal_width": 4
    }  # fmt: skip
    assert kind_config(iris)["nodes"][0]["extraPortMappings"][0]["hostPort"] == 30080
    echo = load(ROOT / "examples/echo/verify.toml")
    assert (echo.name, echo.pod_header, echo.replicas) == ("echo", "X-Served-By", 2)
    assert [node["role"] for node in kind_config(echo)["nodes"]].count("worker") == 2
    assert echo.kube_proxy_mode == "nftables"  # iris runs kind's default, iptables
