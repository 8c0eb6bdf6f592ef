"""Every job of the project is a nox session; README.md says which to run when."""

import shutil

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
    session.install("-e", ".[test,e2e]")
    session.run("pytest", "tests", *session.posargs)


@nox.session(python=PYTHON)
def image(session: nox.Session) -> None:
    """Build iris-classifier:poc (on the offline base image where no registry answers)."""
    session.run("python", "-m", "e2e.harness.image", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Inference microseconds, requests per second of classify vs healthcheck (wrk), and what one
    Locust worker sustains against one pod, keep-alive vs a new connection per request."""
    if not shutil.which("wrk"):
        session.error("the throughput bench needs wrk: `apt-get install wrk` (or brew install wrk)")
    session.install("-e", ".[bench,load]")
    session.run("python", "-m", "bench", *session.posargs)
    session.run("python", "-m", "loadtest.capacity")


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


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Headless, bounded Locust run on the e2e cluster; reports in reports/, verdict as exit code.
    `nox -s load -- --in-cluster --workers N` runs Locust's master and workers in the cluster."""
    session.install("-e", ".[e2e,load]")
    session.run("python", "-m", "loadtest.run", *session.posargs)
