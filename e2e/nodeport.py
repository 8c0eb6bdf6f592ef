"""The iris NodePort Service made to select other pods for a while, as the negative controls
of the balance verdicts do, and given back as it was however the block ends."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from kubeverify import Observation, wait_until

NODE_PORT_SERVICE = "iris-classifier-nodeport"  # verify.toml's service with a url
ENDPOINTS_TIMEOUT = 60


def endpoints_are(kube, pods: Collection[str]) -> Observation:
    """Whether the Service's endpoints are exactly `pods`, every one of them ready."""
    ready, not_ready = kube.endpoint_pods(NODE_PORT_SERVICE)
    return Observation(ready == set(pods) and not not_ready, f"ready {sorted(ready)}")


@contextmanager
def selecting(
    kube,
    labels: dict[str, str],
    pods: Collection[str],
    back_to: Collection[str],
    *,
    added: bool = False,
) -> Iterator[None]:
    """For the block, the NodePort Service selects by `labels` (`added`: by its own selector
    and these labels too), and the block starts once its endpoints are exactly `pods`. After
    it, the Service's own selector again, and its endpoints back to exactly `back_to`."""
    service = kube.core.read_namespaced_service(NODE_PORT_SERVICE, kube.namespace)
    selector = {**service.spec.selector, **labels} if added else labels
    try:
        with kube.service_changed(NODE_PORT_SERVICE, {"selector": selector}):
            wait_until(
                lambda: endpoints_are(kube, pods),
                what=f"{NODE_PORT_SERVICE} sending only to {sorted(pods)}",
                timeout=ENDPOINTS_TIMEOUT,
            )
            yield
    finally:
        wait_until(
            lambda: endpoints_are(kube, back_to),
            what=f"{NODE_PORT_SERVICE} back to its {len(back_to)} pods",
            timeout=ENDPOINTS_TIMEOUT,
        )
