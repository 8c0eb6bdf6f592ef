"""A Service changed for a block (the affinity check's ClientIP, the negative controls'
selectors) and given back as it was however the block ends, on a stand-in for the cluster that
applies the JSON patches kubectl would send."""

import json
from types import SimpleNamespace

import pytest

from kubeverify.kube import KubeTarget

SERVICE = "web"


class StandInCluster:
    """One Service's spec, changed only by `kubectl patch --type=json`."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.patches: list[list[dict]] = []

    def kube(self) -> KubeTarget:
        kube = KubeTarget("/nonexistent", "kubectl", namespace="default")
        kube.core = SimpleNamespace(read_namespaced_service=self._read)
        kube.api = SimpleNamespace(sanitize_for_serialization=lambda spec: dict(spec.fields))
        kube.kubectl = self._kubectl
        return kube

    def _read(self, name, namespace):
        assert (name, namespace) == (SERVICE, "default")
        return SimpleNamespace(spec=SimpleNamespace(fields=json.loads(json.dumps(self.spec))))

    def _kubectl(self, *args):
        assert args[:4] == ("patch", "service", SERVICE, "--type=json")
        operations = json.loads(args[args.index("-p") + 1])
        self.patches.append(operations)
        for operation in operations:
            key = operation["path"].removeprefix("/spec/")
            if operation["op"] == "remove":
                del self.spec[key]
            else:
                assert operation["op"] == "add"
                self.spec[key] = operation["value"]


def test_a_selector_is_replaced_for_the_block_and_its_own_given_back():
    cluster = StandInCluster({"selector": {"app": "web"}, "type": "NodePort"})
    with cluster.kube().service_changed(SERVICE, {"selector": {"app": "skew"}}):
        assert cluster.spec["selector"] == {"app": "skew"}  # replaced, not merged
    assert cluster.spec == {"selector": {"app": "web"}, "type": "NodePort"}


def test_fields_the_service_lacked_are_removed_again_after_the_block():
    cluster = StandInCluster({"selector": {"app": "web"}, "sessionAffinity": "None"})
    affinity = {
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 3}},
    }
    with cluster.kube().service_changed(SERVICE, affinity):
        assert cluster.spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 3}}
    assert cluster.spec == {"selector": {"app": "web"}, "sessionAffinity": "None"}
    assert len(cluster.patches) == 2  # one patch each way: applied together, as the API needs


def test_a_block_that_fails_still_gives_the_service_back():
    cluster = StandInCluster({"selector": {"app": "web"}})
    with (
        pytest.raises(RuntimeError, match="the check failed"),
        cluster.kube().service_changed(SERVICE, {"selector": {"app": "skew"}}),
    ):
        raise RuntimeError("the check failed")
    assert cluster.spec == {"selector": {"app": "web"}}
