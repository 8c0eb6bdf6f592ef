"""Every job of the project is a nox session; README.md says which to run when."""

import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def offline_env_file(session: nox.Session) -> str:
    """ci/offline_kind's record of what it built, which kubeverify reads on machines with no
    registry (`ci` is importable from the repository root, where sessions run)."""
    code = "from ci.offline_kind import env_file; print(env_file())"
    return session.run("python", "-c", code, silent=True).strip()


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
    session.run("pytest", "tests", *session.posargs)


@nox.session(python=PYTHON)
def image(session: nox.Session) -> None:
    """Build iris-classifier:poc as verify.toml names it (on the offline base where needed)."""
    toolchain_env = offline_env_file(session)
    session.run("python", "-m", "kubeverify.image", "verify.toml", "--toolchain-env", toolchain_env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Inference µs, classify vs healthcheck requests per second (wrk), one Locust worker's
    capacity against one pod."""
    if not shutil.which("wrk"):
        session.error("the throughput bench needs wrk: `apt-get install wrk` (or brew install wrk)")
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench", *session.posargs)
    session.run("python", "-m", "bench.locust_capacity")


@nox.session(name="offline-kind", venv_backend="none")
def offline_kind(session: nox.Session) -> None:
    """Docker engine, kind, Kubernetes and images from Debian's packages, for machines with no
    registry; where the public registry answers, there is nothing to do."""
    session.run("python3", "-m", "ci.offline_kind", "ensure", *session.posargs, external=True)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The iris example on a kind cluster, every suite: `nox -s e2e -- <pytest args>`."""
    session.install("-e", ".[e2e]")
    session.run("pytest", "e2e", *session.posargs)


@nox.session(python=PYTHON)
def example(session: nox.Session) -> None:
    """The echo example: kubeverify's standard checks on a service that is not iris."""
    session.install(".")
    toolchain_env = offline_env_file(session)
    session.run(
        "python", "-m", "kubeverify", "examples/echo/verify.toml",
        "--toolchain-env", toolchain_env, "--reports-dir", "reports/echo", *session.posargs,
    )  # fmt: skip


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Headless, bounded Locust run on the iris cluster; reports in reports/, verdict as exit
    code. `nox -s load -- --in-cluster --workers N`: Locust's master and workers in-cluster."""
    session.install("-e", ".[e2e]")
    session.run("python", "-m", "loadtest.run", *session.posargs)
