"""Fixtures for the service tests: one trained model per session, apps driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from service import train
from service.app import create_app
from service.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def fitted() -> tuple[LogisticRegression, np.ndarray, tuple[str, ...]]:
    """scikit-learn's estimator, the data it was fitted on, and its class names."""
    return train.fit()


@pytest.fixture(scope="session")
def iris_names() -> list[str]:
    """The true species of every row of the iris data, by name."""
    iris = load_iris()
    return [str(iris.target_names[t]) for t in iris.target]


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact exactly as the image build writes it."""
    path = tmp_path_factory.mktemp("model") / "model.json"
    assert train.main([str(path)]) == 0
    return path


@pytest.fixture
def settings(artifact: Path) -> Settings:
    return Settings(pod_name="test-pod", node_name="test-node", model_path=artifact)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: a 500 is a response to inspect, as a real server would send.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A started app: its lifespan has loaded the model, as under uvicorn."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def unstarted_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose lifespan has not run: the model is not loaded."""
    async with client_for(create_app(settings)) as client:
        yield client
