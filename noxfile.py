"""Every job of the project is a nox session; README.md says which to run when."""

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


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
    """Build iris-classifier:poc (on the offline base image where no registry answers)."""
    session.run("python", "-m", "e2e.harness.image", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Inference microseconds and requests per second, side by side."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session(name="offline-kind", venv_backend="none")
def offline_kind(session: nox.Session) -> None:
    """Docker engine, kind, Kubernetes and images from Debian's packages, for machines with no
    registry; where the public registry answers, there is nothing to do."""
    session.run("python3", "-m", "ci.offline_kind", "ensure", *session.posargs, external=True)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """Create the kind cluster, deploy, and run the e2e suites: `nox -s e2e -- <pytest args>`."""
    session.install("-e", ".[e2e]")
    session.run("pytest", "e2e", *session.posargs)
