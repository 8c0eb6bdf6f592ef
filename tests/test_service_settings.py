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


def test_environment_overrides_every_default():
    settings = Settings.from_env(
        {
            "POD_NAME": "iris-7d9f-abcde",
            "NODE_NAME": "kind-worker2",
            "MODEL_PATH": "/tmp/m.json",
            "MAX_BODY_BYTES": "1024",
            "MAX_BATCH_SIZE": "7",
        }
    )
    assert settings == Settings(
        pod_name="iris-7d9f-abcde",
        node_name="kind-worker2",
        model_path=Path("/tmp/m.json"),
        max_body_bytes=1024,
        max_batch_size=7,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_BATCH_SIZE": "many"}, "MAX_BATCH_SIZE must be an integer"),
        ({"MAX_BODY_BYTES": "0"}, "max_body_bytes must be at least 1"),
        ({"POD_NAME": "pod\r\nSet-Cookie: x=1"}, "pod_name must be non-empty printable ASCII"),
        ({"NODE_NAME": "nœud"}, "node_name must be non-empty printable ASCII"),
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
