"""Settings from the environment, and the limits they set on a running app."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.schemas import TUTORIAL_SAMPLE
from service.settings import DEFAULT_MODEL_PATH, Settings


def test_defaults_name_the_host_and_an_unknown_node():
    settings = Settings.from_env({})
    assert settings.pod_name == socket.gethostname()
    assert settings.node_name == "unknown"
    assert settings.model_path == Path(DEFAULT_MODEL_PATH)


def test_the_servers_limits_and_deadlines_default_to_the_stated_ones():
    settings = Settings.from_env({})
    limits = (settings.max_body_bytes, settings.max_head_bytes, settings.max_url_bytes)
    assert limits == (64 * 1024, 16 * 1024, 8 * 1024)
    deadlines = (
        settings.head_timeout,
        settings.body_timeout,
        settings.keep_alive_timeout,
        settings.shutdown_timeout,
        settings.drain_idle,
    )
    assert deadlines == (10, 10, 5, 20, 1)


def test_environment_overrides_every_default():
    settings = Settings.from_env(
        {
            "POD_NAME": "iris-7d9f-abcde",
            "NODE_NAME": "kind-worker2",
            "MODEL_PATH": "/tmp/m.json",
            "MAX_BODY_BYTES": "1024",
            "MAX_BATCH_SIZE": "7",
            "MAX_HEAD_BYTES": "4096",
            "MAX_URL_BYTES": "2048",
            "HEAD_TIMEOUT_SECONDS": "3",
            "BODY_TIMEOUT_SECONDS": "4.5",
            "KEEP_ALIVE_SECONDS": "2",
            "SHUTDOWN_TIMEOUT_SECONDS": "25",
            "DRAIN_IDLE_SECONDS": "0.5",
        }
    )
    assert settings == Settings(
        pod_name="iris-7d9f-abcde",
        node_name="kind-worker2",
        model_path=Path("/tmp/m.json"),
        max_body_bytes=1024,
        max_batch_size=7,
        max_head_bytes=4096,
        max_url_bytes=2048,
        head_timeout=3,
        body_timeout=4.5,
        keep_alive_timeout=2,
        shutdown_timeout=25,
        drain_idle=0.5,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_BATCH_SIZE": "many"}, "MAX_BATCH_SIZE must be an integer"),
        ({"MAX_BODY_BYTES": "0"}, "max_body_bytes must be at least 1"),
        ({"POD_NAME": "pod\r\nSet-Cookie: x=1"}, "pod_name must be non-empty printable ASCII"),
        ({"NODE_NAME": "nœud"}, "node_name must be non-empty printable ASCII"),
        ({"HEAD_TIMEOUT_SECONDS": "soon"}, "HEAD_TIMEOUT_SECONDS must be a number of seconds"),
        ({"BODY_TIMEOUT_SECONDS": "0"}, "body_timeout must be above 0 seconds"),
        ({"MAX_HEAD_BYTES": "0"}, "max_head_bytes must be at least 1"),
    ],
)
def test_bad_settings_fail_at_start_up(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


@pytest.fixture
async def small_client(artifact):
    settings = Settings(pod_name="p", model_path=artifact, max_batch_size=2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.mark.anyio
async def test_app_applies_the_configured_batch_limit(small_client):
    batch = "/iris/classify_batch"
    ok = await small_client.post(batch, json={"samples": [TUTORIAL_SAMPLE] * 2})
    assert ok.status_code == 200
    refused = await small_client.post(batch, json={"samples": [TUTORIAL_SAMPLE] * 3})
    assert refused.status_code == 422
    assert "at most 2 items" in refused.text
