"""The service as a FastAPI user first starts it: `uvicorn service.app:app`, the command the
tutorial and FastAPI's own docs give, serves the healthcheck and classifies the tutorial's
sample (the image runs `python -m service.server`, which adds the pod's identity, the limits and
the drain; this is the app alone)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest

from kubeverify import Observation, stop_process, wait_until
from service.app import HEALTHY
from service.schemas import TUTORIAL_SAMPLE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answering(url: str, process: subprocess.Popen) -> Observation:
    if process.poll() is not None:
        raise AssertionError(f"uvicorn exited {process.returncode}: {process.stdout.read()}")
    try:
        return Observation(httpx.get(url, timeout=2).status_code == 200, f"{url} answered")
    except httpx.HTTPError as error:
        return Observation(False, repr(error))


@pytest.mark.parametrize(
    "target", [["service.app:app"], ["--factory", "service.app:create_app"]], ids=["app", "factory"]
)
def test_uvicorn_serves_the_app_as_fastapis_docs_start_it(artifact, target):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "MODEL_PATH": str(artifact)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answering(f"{base}/readyz", process), what="uvicorn serving", timeout=60)
        assert httpx.get(f"{base}/healthcheck").json() == HEALTHY
        answer = httpx.post(f"{base}/iris/classify_iris", json=TUTORIAL_SAMPLE)
        assert answer.json()["class"] == "setosa"
    finally:
        stop_process(process)


def test_importing_the_module_builds_no_app_and_reads_no_settings(monkeypatch):
    import importlib

    import service.app

    monkeypatch.setenv("MAX_BATCH_SIZE", "not a number")  # would fail Settings.from_env()
    module = importlib.reload(service.app)
    assert "app" not in vars(module)
    with pytest.raises(ValueError, match="MAX_BATCH_SIZE"):
        _ = module.app  # built when asked for: now the settings are read
