"""Every job of the project is a nox session; README.md says which to run when.

The iris project depends on kubeverify by path (pyproject.toml's [tool.uv.sources]): every
session's install of the iris project brings ./kubeverify along, editable. The echo example
is verified from kubeverify's built wheel instead, installed alone in a clean venv, as a user
installs it.
"""

import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
ROOT = Path(__file__).resolve().parent


def offline_toolchain(session: nox.Session) -> str:
    """Where no registry answers, build what the offline toolchain lacks (cached: seconds when
    warm); where one answers, nothing. Return the env file kubeverify reads on such machines.
    The toolchain is the standard library's alone, run by the machine's python3 (`ci` is
    importable from the repository root, where sessions run)."""
    session.run("python3", "-m", "ci.offline_kind", "ensure", external=True)
    code = "from ci.offline_kind import env_file; print(env_file())"
    return session.run("python3", "-c", code, silent=True, external=True).strip()


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Fast tests that need no cluster, and the container smoke test."""
    session.install("-e", ".[test]")
    offline_toolchain(session)  # the smoke test builds the image on its base
    session.run("pytest", "tests", *session.posargs)


@nox.session(python=PYTHON)
def image(session: nox.Session) -> None:
    """Build iris-classifier:poc as verify.toml names it (on the offline base where needed)."""
    session.install("-e", "./kubeverify")
    toolchain_env = offline_toolchain(session)
    session.run(
        "python", "-m", "kubeverify.providers.kind.image", "verify.toml",
        "--toolchain-env", toolchain_env,
    )  # fmt: skip


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: inference µs; classify, healthcheck, hello world rps (wrk); Locust's capacity."""
    if not shutil.which("wrk"):
        session.error("the throughput bench needs wrk: `apt-get install wrk` (or brew install wrk)")
    session.install("-e", ".[bench]")
    # Every step runs and prints its figures even when one before it missed its goal.
    missed = []
    for step in (["bench", *session.posargs], ["bench.locust_capacity"]):
        try:
            session.run("python", "-m", *step)
        except nox.command.CommandFailed:
            missed.append(step[0])
    if missed:
        session.error(f"failed (see above: a resolved miss, or a step that did not finish): "
                      f"{', '.join(missed)}")  # fmt: skip


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """Rewrite requirements/*.txt from pyproject.toml (`-- --upgrade`: the newest releases)."""
    session.install("uv>=0.4", "packaging>=24")
    session.run("python", "-m", "ci.locks", *session.posargs)


@nox.session(name="offline-kind", venv_backend="none")
def offline_kind(session: nox.Session) -> None:
    """The offline toolchain from Debian's packages and Go modules; nothing where a registry
    answers."""
    session.run("python3", "-m", "ci.offline_kind", "ensure", *session.posargs, external=True)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The iris example on a kind cluster, every suite: `nox -s e2e -- <pytest args>`."""
    session.install("-e", ".[e2e]")
    offline_toolchain(session)
    session.run("pytest", "e2e", *session.posargs)


@nox.session(python=PYTHON)
def example(session: nox.Session) -> None:
    """kubeverify as a user gets it: its wheel and sdist built and checked, the wheel installed
    alone in a clean venv, and from there the echo example verified by the standard checks, on
    a kind cluster of the run's own and on a cluster made outside the run (existing-cluster
    mode, which must leave that cluster as it found it)."""
    session.install("-e", "./kubeverify", "twine>=6.1")
    toolchain_env = offline_toolchain(session)
    reports = ROOT / "reports" / "echo"
    # Outside the repository, so that nothing of it (its pyproject.toml, its packages) is
    # what pytest or Python find there; removed at the end.
    with tempfile.TemporaryDirectory(prefix="kubeverify-wheel-") as place:
        session.run("python", "-m", "ci.package", "build", place)
        python = session.run("python", "-m", "ci.package", "venv", place, silent=True).strip()
        with session.chdir(place):
            session.run(
                python, "-m", "kubeverify", str(ROOT / "examples/echo/verify.toml"),
                "--toolchain-env", toolchain_env, "--reports-dir", str(reports),
                *session.posargs, external=True,
            )  # fmt: skip
        session.run(
            "python", "-m", "ci.existing_cluster", "--python", python,
            "--toolchain-env", toolchain_env, "--reports-dir", str(reports / "existing"),
        )  # fmt: skip


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """A bounded headless Locust run on the iris cluster; its verdict is the exit code.

    Reports in reports/; `nox -s load -- --in-cluster --workers N` runs Locust's master and
    workers in the cluster."""
    session.install("-e", ".[e2e]")
    offline_toolchain(session)
    session.run("python", "-m", "loadtest.run", *session.posargs)
