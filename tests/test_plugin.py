"""The plugin as pytest loads it from its entry point: options listed, idle until asked."""

import pytest

from kubeverify.plugin import record_outcome
from kubeverify.report import overall, suite_outcomes

pytest_plugins = ["pytester"]


def test_help_lists_the_plugins_options(pytester):
    result = pytester.runpytest("--help")
    for option in ("--target", "--toolchain-env", "--image", "--base-url", "--namespace"):
        result.stdout.fnmatch_lines([f"*{option}*"])


def test_a_run_that_asks_for_no_fixture_of_the_plugin_touches_nothing(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "kubeverify timing" not in result.stdout.str()


def test_a_bad_target_file_stops_the_run_naming_the_field(pytester):
    pytester.makefile(".toml", verify='deployment = "web"\n')
    pytester.makepyfile("def test_uses_target(target):\n    pass\n")
    result = pytester.runpytest("--target", "verify.toml")
    result.stderr.fnmatch_lines(["ERROR: *verify.toml: manifests: missing"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test ran


@pytest.mark.parametrize("argv", [[], ["--verbose"]])
def test_python_m_kubeverify_needs_a_target_first(argv, capsys):
    from kubeverify.__main__ import main

    assert main(argv) == 2
    assert "TARGET.toml" in capsys.readouterr().err


def _report(when, outcome, nodeid="e2e/test_scaling.py::TestScaling::test_down"):
    return pytest.TestReport(nodeid, ("e2e/test_scaling.py", 0, ""), {}, outcome, None, when)


def test_each_checks_outcome_is_recorded_and_a_failed_setup_is_an_error():
    outcomes = {}
    record_outcome(outcomes, _report("setup", "passed"))
    assert outcomes == {}  # nothing said yet
    record_outcome(outcomes, _report("call", "passed"))
    assert outcomes == {"e2e/test_scaling.py::TestScaling::test_down": "passed"}
    record_outcome(outcomes, _report("teardown", "failed"))
    assert set(outcomes.values()) == {"error"}
    record_outcome(outcomes, _report("setup", "failed", "e2e/test_x.py::test_a"))
    record_outcome(outcomes, _report("setup", "skipped", "e2e/test_x.py::test_b"))
    assert outcomes["e2e/test_x.py::test_a"] == "error"
    assert outcomes["e2e/test_x.py::test_b"] == "skipped"


def test_the_summary_says_the_overall_result_and_each_suites_outcome():
    checks = {
        "e2e/test_scaling.py::TestScaling::test_down": "passed",
        "e2e/test_scaling.py::TestScaling::test_up": "failed",
        "e2e/test_locust.py::test_passes": "error",
        "e2e/test_deployment.py::test_a": "passed",
        "e2e/test_deployment.py::test_b": "skipped",
    }
    assert overall(checks) == "failed"
    suites = suite_outcomes({"scaling": 30.04, "locust": 0.48, "deployment": 1.0}, checks)
    assert suites == {
        "scaling": {"outcome": "failed", "seconds": 30.0},
        "locust": {"outcome": "errored", "seconds": None},  # it timed no check
        "deployment": {"outcome": "passed", "seconds": 1.0},
    }
    assert overall({"a::b": "passed", "a::c": "skipped"}) == "passed"
    assert overall({"a::c": "skipped"}) == "no checks ran"
    assert overall({}) == "no checks ran"


def test_a_run_with_a_target_writes_junit_xml_beside_its_summary(pytester):
    pytester.makefile(".toml", verify='deployment = "web"\n')
    pytester.makeconftest(
        "from pathlib import Path\n\n\n"
        "def pytest_configure(config):\n"
        "    Path('xmlpath.txt').write_text(str(config.option.xmlpath))\n"
    )
    told = pytester.path / "xmlpath.txt"
    pytester.runpytest("--target", "verify.toml")
    assert told.read_text() == "reports/e2e-junit.xml"
    pytester.runpytest("--target", "verify.toml", "--junitxml", "mine.xml")
    assert told.read_text() == "mine.xml"  # a path given wins
    pytester.runpytest()
    assert told.read_text() == "None"  # no target: the plugin writes nothing


@pytest.fixture
def staged(pytester, monkeypatch):
    """A target and three tests that each need the stage, as a suite's tests do."""
    from tests.test_target import MINIMAL

    (pytester.path / "manifests").mkdir()
    pytester.makefile(".toml", verify=MINIMAL)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_uses_the_stage(kube, n):
            pass
        """
    )
    for variable in ("KUBEVERIFY_TOOLCHAIN", "KUBEVERIFY_TOOLCHAIN_ENV"):
        monkeypatch.delenv(variable, raising=False)
    return pytester


def _stopped_in_one_line(result, message: str) -> None:
    """The run stops before any test with exit code 4 and `message`, once, and no tracebacks
    or test errors besides."""
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    (line,) = [line for line in output.splitlines() if "kubeverify: " in line]
    assert f"Exit: kubeverify: {message} !" in line
    assert "Traceback" not in output
    assert not [line for line in output.splitlines() if line.startswith(("E ", "ERROR"))]


def test_a_bad_toolchain_choice_stops_the_run_in_one_line(staged, monkeypatch):
    monkeypatch.setenv("KUBEVERIFY_TOOLCHAIN", "sideways")
    result = staged.runpytest("--target", "verify.toml")
    _stopped_in_one_line(
        result,
        "KUBEVERIFY_TOOLCHAIN is 'sideways': set it to auto, online, offline, or unset it "
        "(auto: offline only when no registry answers)",
    )


def test_a_bad_toolchain_env_file_stops_the_run_in_one_line(staged, monkeypatch):
    monkeypatch.setenv("KUBEVERIFY_TOOLCHAIN", "offline")
    (staged.path / "env.json").write_text('{"kind": "/k"}')
    result = staged.runpytest("--target", "verify.toml", "--toolchain-env", "env.json")
    _stopped_in_one_line(
        result,
        "offline toolchain env file env.json lacks ['base_image', 'kubectl', 'node_image']: "
        "rebuild the offline toolchain, or name another file with --toolchain-env or "
        "KUBEVERIFY_TOOLCHAIN_ENV",
    )
