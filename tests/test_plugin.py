"""The plugin as pytest loads it from its entry point: options listed, idle until asked."""

import pytest

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
