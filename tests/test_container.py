"""The image as Kubernetes runs it: read-only root, no capabilities, uid 10001, SIGTERM at the end.

Builds through the kind provider (its image module) from verify.toml's [image], the one way
the image is built.
Skipped where no Docker engine answers, except under CI (env CI set), where a skip would hide
a missing check.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ci.offline_kind import env_file
from kubeverify.providers.kind.image import build_target_image
from kubeverify.providers.kind.toolchain import detect
from kubeverify.target import load
from kubeverify.waiting import Observation, wait_until
from service.schemas import TUTORIAL_SAMPLE as SAMPLE

pytestmark = pytest.mark.container

TARGET = Path(__file__).resolve().parents[1] / "verify.toml"
READY_TIMEOUT_S = 60
EXIT_TIMEOUT_S = 30  # more than the image's 20 s graceful-shutdown timeout


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def docker_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def image() -> str:
    if not docker_answers():
        if os.environ.get("CI"):
            pytest.fail("CI is set but no Docker engine answers: CI must run the container test")
        pytest.skip("no Docker engine answers (`docker info` fails); under CI this fails instead")
    return build_target_image(load(TARGET).image, detect(env_file())).tag


@dataclass(frozen=True)
class Container:
    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def logs(self) -> str:
        done = docker("logs", self.name)
        return done.stdout + done.stderr


def start(image: str) -> Container:
    name = f"iris-smoke-{uuid.uuid4().hex[:8]}"
    run = docker(
        "run", "--detach", "--name", name,
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", "10001", "--env", "POD_NAME=smoke-pod",
        # No host port given: Docker picks a free one, with no race between choosing and binding.
        "--publish", "127.0.0.1::5000",
        image,
    )  # fmt: skip
    if run.returncode != 0:
        docker("rm", "--force", name)
        raise AssertionError(f"docker run failed: {run.stderr}")
    port = docker("port", name, "5000/tcp").stdout.split()[0].rsplit(":", 1)[1]
    container = Container(name, "127.0.0.1", int(port))
    try:
        wait_until(lambda: _readiness(container), what=f"{name} ready", timeout=READY_TIMEOUT_S)
    except Exception:
        print(container.logs())
        docker("rm", "--force", name)
        raise
    return container


def _readiness(container: Container) -> Observation:
    state = docker("inspect", "--format", "{{.State.Status}}", container.name).stdout.strip()
    if state != "running":
        raise AssertionError(f"{container.name} is {state}:\n{container.logs()}")
    try:
        status = httpx.get(container.url + "/readyz", timeout=2).status_code
    except httpx.HTTPError as e:
        return Observation(False, f"/readyz: {type(e).__name__}")
    return Observation(status == 200, f"/readyz answered {status}")


@contextmanager
def running(image: str) -> Iterator[Container]:
    container = start(image)
    try:
        yield container
    finally:
        docker("rm", "--force", container.name)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    with running(image) as container:
        yield container


@pytest.fixture
def fresh_container(image: str) -> Iterator[Container]:
    """A container of its own, for a test that stops it."""
    with running(image) as container:
        yield container


def test_serves_the_tutorial_sample_with_identity_headers(container):
    with httpx.Client(base_url=container.url, timeout=5) as client:
        health = client.get("/healthcheck")
        classify = client.post("/iris/classify_iris", json=SAMPLE)
        missing = client.get("/missing")
        bad = client.post("/iris/classify_iris", json={**SAMPLE, "sepal_length": "5.1"})
        # A generator goes out chunked, without Content-Length: the limit applies as it streams.
        chunked = client.post(
            "/iris/classify_iris",
            content=iter([b"x" * (64 * 1024 + 1)]),
            headers={"content-type": "application/json"},
        )
    assert (health.status_code, health.json()) == (200, "Iris classifier is ready!")
    assert classify.status_code == 200
    assert classify.json()["class"] == "setosa"
    assert classify.json()["probability"] >= 0.98
    assert (missing.status_code, bad.status_code, chunked.status_code) == (404, 422, 413)
    for response in (health, classify, missing, bad, chunked):
        assert response.headers["x-pod-name"] == "smoke-pod"
        assert response.headers["x-node-name"] == "unknown"
        assert "server" not in response.headers


def test_logs_one_access_line_per_request_naming_the_pod(container):
    marker = f"/missing-{uuid.uuid4().hex}"
    httpx.get(container.url + marker, timeout=5)
    lines = [line for line in container.logs().splitlines() if f"path={marker} " in line]
    assert len(lines) == 1
    assert "method=GET" in lines[0]
    assert "status=404" in lines[0]
    assert "pod=smoke-pod" in lines[0]


def test_runtime_has_the_model_and_sleep_but_no_scikit_learn_numpy_or_pip(container):
    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", container.name, *command)

    assert run("id", "-u").stdout.strip() == "10001"
    assert run("sleep", "0").returncode == 0  # the Deployment's preStop hook runs it
    assert run("python", "-c", "import sklearn").returncode != 0
    assert run("python", "-c", "import numpy").returncode != 0
    assert run("test", "-s", "/opt/iris/model.json").returncode == 0
    assert run("python", "-m", "pip", "--version").returncode != 0
    assert run("touch", "/app/x").returncode != 0  # the root filesystem really is read-only
    config = json.loads(docker("inspect", "--format", "{{json .Config}}", container.name).stdout)
    assert config["User"] == "10001"


def _send_headers(container: Container, body: bytes) -> socket.socket:
    """A classify request whose body is withheld until the server asks for it."""
    sock = socket.create_connection((container.host, container.port), timeout=10)
    sock.sendall(
        b"POST /iris/classify_iris HTTP/1.1\r\n"
        + f"Host: {container.host}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Expect: 100-continue\r\n\r\n"
    )
    return sock


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)  # the socket's timeout bounds the wait
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_lets_in_flight_requests_finish_and_exits_0(fresh_container):
    body = json.dumps(SAMPLE).encode()
    sockets = [_send_headers(fresh_container, body) for _ in range(3)]
    try:
        # uvicorn answers "100 Continue" only once the app reads the body: the request is now
        # in flight inside the service, not waiting in a queue.
        for sock in sockets:
            assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
        assert docker("kill", "--signal", "TERM", fresh_container.name).returncode == 0
        wait_until(
            lambda: Observation("service.server draining" in fresh_container.logs(), "not yet"),
            what="the server to begin its drain",
            timeout=10,
            interval=0.1,
        )
        for sock in sockets:
            sock.sendall(body)
            response = _read_until(sock, b"}")
            assert response.startswith(b"HTTP/1.1 200 "), response
            assert b'"class":"setosa"' in response
            assert b"x-pod-name: smoke-pod" in response
    finally:
        for sock in sockets:
            sock.close()
    exit_code = docker("wait", fresh_container.name, timeout=EXIT_TIMEOUT_S).stdout.strip()
    assert exit_code == "0", fresh_container.logs()
