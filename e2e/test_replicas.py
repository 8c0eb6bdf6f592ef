"""The Deployment as applied (kubeverify's standard replica checks), and the iris service's own
answers through the Service."""

import httpx
import pytest

from kubeverify import Replicas
from service.app import HEALTHY


class TestReplicas(Replicas):
    __doc__ = Replicas.__doc__


@pytest.mark.usefixtures("settled_pods")
def test_healthcheck_answers_through_the_service(endpoint, target):
    response = httpx.get(f"{endpoint.base_url}/healthcheck", timeout=5)
    assert response.status_code == 200
    assert response.json() == HEALTHY
    assert response.headers[endpoint.pod_header].startswith(f"{target.name}-")
