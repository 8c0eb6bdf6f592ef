"""Phase timing table and the choice between the online and the offline toolchain."""

import json

import pytest

from kubeverify import balance
from kubeverify.preflight import PreflightError
from kubeverify.providers.kind import toolchain
from kubeverify.providers.kind.image import containerd_reference
from kubeverify.report import RunReport
from kubeverify.timing import PhaseTimer, format_table
from kubeverify.verdict import ErrorRates, Verdict, from_json, no_failures


def test_table_lists_phases_and_their_total():
    table = format_table([("create cluster", 50.04), ("load image", 20.0)])
    lines = table.splitlines()
    assert lines[2].split() == ["create", "cluster", "50.0"]
    assert lines[-1].split() == ["total", "70.0"]


def test_a_failed_phase_is_recorded_as_failed():
    said = []
    timer = PhaseTimer(say=said.append)
    with pytest.raises(RuntimeError), timer.phase("rollout"):
        raise RuntimeError("boom")
    assert timer.phases[0][0] == "rollout (failed)"
    assert said[-1].startswith("[e2e] rollout failed after")


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    monkeypatch.setenv(toolchain.ENV_FILE_VARIABLE, str(path))
    monkeypatch.delenv(toolchain.CHOICE_VARIABLE, raising=False)
    return path


def test_online_is_chosen_when_the_registry_answers(offline_env, monkeypatch):
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: True)
    chosen = toolchain.detect(choice="auto")
    assert not chosen.offline
    assert chosen.node_image is None


def test_offline_env_is_used_when_no_registry_answers(offline_env, monkeypatch):
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: False)
    offline_env.write_text(
        json.dumps({"kind": "/k", "kubectl": "/kc", "node_image": "n:1", "base_image": "b:1"})
    )
    chosen = toolchain.detect(choice="auto")
    assert (chosen.offline, chosen.kind, chosen.node_image, chosen.base_image) == (
        True,
        "/k",
        "n:1",
        "b:1",
    )
    assert "offline path" in chosen.describe()
    assert chosen.build_args() == {"BASE_IMAGE": "b:1"}


def test_an_env_file_given_outright_wins_over_the_variable(offline_env, tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: False)
    given = tmp_path / "given.json"
    given.write_text(
        json.dumps({"kind": "/k2", "kubectl": "/kc", "node_image": "n:2", "base_image": "b:2"})
    )
    assert toolchain.detect(given, "auto").node_image == "n:2"


def test_offline_without_env_file_names_the_option_and_variable(offline_env, monkeypatch):
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: False)
    with pytest.raises(RuntimeError, match="--toolchain-env or KUBEVERIFY_TOOLCHAIN_ENV"):
        toolchain.detect(choice="auto")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"kind": "/k"}', "lacks ['base_image', 'kubectl', 'node_image']"),
        ('{"kind": "/k",', "cannot be read as JSON (Expecting"),
        ('["/k"]', "holds a JSON list, not an object naming ['base_image', 'kind', "),
    ],
)
def test_a_bad_env_file_is_one_preflight_line_naming_the_file_and_the_way_out(
    offline_env, text, what
):
    offline_env.write_text(text)
    with pytest.raises(PreflightError) as error:
        toolchain.detect(choice="offline")
    message = str(error.value)
    assert message.startswith(f"offline toolchain env file {offline_env} {what}")
    assert message.endswith(
        ": rebuild the offline toolchain, or name another file with --toolchain-env or "
        "KUBEVERIFY_TOOLCHAIN_ENV"
    )
    assert "\n" not in message


def test_an_unknown_choice_is_one_preflight_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv(toolchain.CHOICE_VARIABLE, "Sideways")
    with pytest.raises(PreflightError) as error:
        toolchain.detect()
    assert str(error.value) == (
        "KUBEVERIFY_TOOLCHAIN is 'sideways': set it to auto, online, offline, or unset it "
        "(auto: offline only when no registry answers)"
    )


@pytest.mark.parametrize(
    ("tag", "reference"),
    [
        ("iris-classifier:poc", "docker.io/library/iris-classifier:poc"),
        ("me/iris:1", "docker.io/me/iris:1"),
        ("registry.example:5000/team/iris:1", "registry.example:5000/team/iris:1"),
        ("localhost/iris:1", "localhost/iris:1"),
    ],
)
def test_docker_tags_map_to_containerd_references(tag, reference):
    assert containerd_reference(tag) == reference


def test_the_report_writes_the_summary_and_a_chart_of_every_verdict(tmp_path):
    report = RunReport(versions={"kubernetes": "v1.20.2"})
    fresh = balance.Transport.NEW_CONNECTION_PER_REQUEST
    pods = ["p-a", "p-b", "p-c"]
    nodes = {"p-a": "worker", "p-b": "worker2", "p-c": "worker"}
    even = balance.judge_balance({"p-a": 300, "p-b": 310, "p-c": 290}, pods, fresh, nodes=nodes)
    skewed = balance.judge_balance({"p-a": 400, "p-b": 200, "p-c": 300}, pods, fresh)
    report.add("e2e/test_balance.py::test_x", even)
    report.add("e2e/test_balance.py::test_y", skewed)
    report.add("e2e/test_scaling.py::test_z", no_failures("scale 3 -> 2", 400, 0, minimum=100))
    # A verdict of a kind the report code has never heard of: rendered like any other.
    novel = Verdict("a check written next year", True, "it held", ErrorRates(0.01, 0.9, "x"))
    report.add("e2e/test_new.py::test_n", novel)
    checks = {"e2e/test_a.py::test_x": "passed", "e2e/test_a.py::test_y": "failed"}
    written = report.write([("create", 50.0)], {"a": 3.0}, checks, tmp_path)
    assert [path.name for path in written] == ["e2e-summary.json", "e2e-pod-shares.png"]
    summary = json.loads(written[0].read_text())
    assert summary["result"] == "failed"
    assert summary["versions"] == {"kubernetes": "v1.20.2"}
    by_check = {verdict["check"]: verdict for verdict in summary["verdicts"]}
    assert by_check["balance over 3 pods (a new connection per request through the Service)"]
    assert [v["passed"] for v in summary["verdicts"]] == [True, False, True, True]
    assert by_check["no request fails: scale 3 -> 2"]["rates"] == {
        "false_alarm": 0.0,
        "power": 0.95,
        "effect": "a failure rate of 0.75% or more",
        "aim": None,
    }
    assert by_check["a check written next year"]["rates"]["power"] == 0.9
    assert summary["verdicts"][0]["in"] == "e2e/test_balance.py::test_x"
    assert summary["verdicts"][1]["figures"]["max_min_ratio"] == 2.0
    # What one process writes, another reads back whole (Locust's verdicts, say).
    assert [from_json(v) for v in summary["verdicts"]][2:] == [
        report.verdicts[2][1],
        novel,
    ]
    assert written[1].read_bytes().startswith(b"\x89PNG")


def test_a_negative_control_says_it_failed_as_it_must():
    verdict = no_failures("x", 500, 3, minimum=100)
    control = Verdict(verdict.check, False, verdict.summary, control=True)
    assert verdict.line().startswith("no request fails: x: FAILED: 3 of 500 requests")
    assert control.outcome == "FAILED, as its negative control must"
    assert control.as_it_must
    assert not verdict.as_it_must


def test_zero_failures_of_too_few_requests_bound_nothing_and_fail():
    verdict = no_failures("rollout", 80, 0, minimum=100)
    assert not verdict.passed
    assert "only 80 requests spanned it, fewer than 100" in verdict.summary


def test_affinity_expires_often_enough_that_chance_fails_it_at_most_alpha():
    from kubeverify.suites.affinity import expires, expiry_cycles

    for pods in (2, 3, 5, 10):
        cycles = expiry_cycles(pods)
        assert pods ** -(cycles - 1) <= 0.001 < pods ** -(cycles - 2)
        assert expires(["p"] * cycles, pods).rates.false_alarm <= 0.001
    assert (expiry_cycles(2), expiry_cycles(3)) == (11, 8)
    assert not expires(["p"] * 8, 3).passed
    assert expires(["p"] * 7 + ["q"], 3).passed
