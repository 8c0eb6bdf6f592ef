"""The e2e negative controls' Service switch, on a stand-in for the cluster: the NodePort
Service selects other pods for the block, and gets its own selector back however it ends."""

import json
from types import SimpleNamespace

import pytest

from e2e import nodeport

PODS = {
    "iris-a": {"app": "iris-classifier", "skew": "only"},
    "iris-b": {"app": "iris-classifier"},
    "skew-a": {"app": "iris-skew"},
}


class FakeKube:
    """The Service's selector, changed only by `kubectl patch --type=json` as the e2e run
    sends it; its endpoints are the pods whose labels the selector matches."""

    namespace = "default"

    def __init__(self) -> None:
        self.selector = {"app": "iris-classifier"}
        self.core = SimpleNamespace(read_namespaced_service=self._read)

    def _read(self, name, namespace):
        assert (name, namespace) == (nodeport.NODE_PORT_SERVICE, self.namespace)
        return SimpleNamespace(spec=SimpleNamespace(selector=dict(self.selector)))

    def kubectl(self, *args):
        assert args[:4] == ("patch", "service", nodeport.NODE_PORT_SERVICE, "--type=json")
        (operation,) = json.loads(args[args.index("-p") + 1])
        assert (operation["op"], operation["path"]) == ("replace", "/spec/selector")
        self.selector = operation["value"]

    def endpoint_pods(self, service):
        chosen = {pod for pod, labels in PODS.items() if self.selector.items() <= labels.items()}
        return chosen, set()


def test_the_service_selects_the_given_pods_for_the_block_and_its_own_after():
    kube = FakeKube()
    with nodeport.selecting(kube, {"app": "iris-skew"}, {"skew-a"}, back_to=["iris-a", "iris-b"]):
        assert kube.selector == {"app": "iris-skew"}
    assert kube.selector == {"app": "iris-classifier"}
    with nodeport.selecting(kube, {"skew": "only"}, ["iris-a"], ["iris-a", "iris-b"], added=True):
        assert kube.selector == {"app": "iris-classifier", "skew": "only"}
    assert kube.selector == {"app": "iris-classifier"}


def test_a_block_that_fails_still_gives_the_service_its_own_selector_back():
    kube = FakeKube()
    with (
        pytest.raises(RuntimeError, match="the check failed"),
        nodeport.selecting(kube, {"app": "iris-skew"}, {"skew-a"}, ["iris-a", "iris-b"]),
    ):
        raise RuntimeError("the check failed")
    assert kube.selector == {"app": "iris-classifier"}
