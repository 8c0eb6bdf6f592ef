"""Manifests written for current Kubernetes go on a server that predates one of their API
versions in the older version it serves, said once a run; the iris manifests apply on
Kubernetes 1.20 and on current Kubernetes alike, all in the run's namespace."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kubeverify.apiversions import as_served
from kubeverify.deployment import Deployment, render
from kubeverify.target import load

ROOT = Path(__file__).resolve().parents[1]
# What the servers serve, in part: Kubernetes 1.20's `kubectl api-versions` (policy/v1 came in
# 1.21), and a current one's (policy/v1beta1 went in 1.25).
KUBERNETES_1_20 = frozenset(
    {"v1", "apps/v1", "batch/v1", "policy/v1beta1", "discovery.k8s.io/v1beta1"}
)
KUBERNETES_CURRENT = frozenset({"v1", "apps/v1", "batch/v1", "policy/v1", "discovery.k8s.io/v1"})
# What a run's own namespace holds, and so removes with it in existing-cluster mode.
NAMESPACED_KINDS = {"ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"}

BUDGET = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "web"},
    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}


def test_an_object_the_server_predates_goes_in_the_older_version_it_serves():
    written = copy.deepcopy([DEPLOYMENT, BUDGET])
    served, moved = as_served(written, KUBERNETES_1_20)
    assert served == [DEPLOYMENT, {**BUDGET, "apiVersion": "policy/v1beta1"}]
    assert moved == [
        "PodDisruptionBudget web: the server does not serve policy/v1; applied as policy/v1beta1"
    ]
    assert written == [DEPLOYMENT, BUDGET]  # the caller's documents are left as they were


@pytest.mark.parametrize(
    "api_versions",
    [KUBERNETES_CURRENT, KUBERNETES_CURRENT | {"policy/v1beta1"}, {"v1", "apps/v1"}],
    ids=["current", "both served (1.21 to 1.24)", "neither served"],
)
def test_an_object_goes_as_written_unless_only_the_older_version_is_served(api_versions):
    assert as_served([DEPLOYMENT, BUDGET], api_versions) == ([DEPLOYMENT, BUDGET], [])


def test_only_the_kinds_of_the_table_move():
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "w"}}
    served = KUBERNETES_1_20 | {"networking.k8s.io/v1beta1"}
    assert as_served([ingress], served) == ([ingress], [])


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"maxUnavailable": 1, "selector": {}}, "an empty selector selects no pod"),
        ({"maxUnavailable": 1}, "an empty selector selects no pod"),
        (
            {**BUDGET["spec"], "unhealthyPodEvictionPolicy": "AlwaysAllow"},
            "there is no unhealthyPodEvictionPolicy",
        ),
    ],
    ids=["empty selector", "no selector", "v1-only field"],
)
def test_an_object_the_older_version_would_read_otherwise_is_refused(spec, reason):
    with pytest.raises(ValueError, match=reason):
        as_served([{**BUDGET, "spec": spec}], KUBERNETES_1_20)


class FakeKube:
    namespace = "default"

    def __init__(self, api_versions):
        self.api_versions = api_versions
        self.applied: list[list[dict]] = []

    def kubectl(self, *args, stdin=None, **_):
        assert args == ("apply", "-f", "-")
        self.applied.append(list(yaml.safe_load_all(stdin)))
        return ""


def test_the_deployment_applies_what_the_server_serves_and_says_so_once_a_run():
    kube, said = FakeKube(KUBERNETES_1_20), []
    deployment = Deployment(kube, load(ROOT / "verify.toml"), "iris:test", say=said.append)
    deployment.apply(3)
    deployment.apply(2)
    assert len(said) == 1
    assert "PodDisruptionBudget iris-classifier" in said[0]
    for applied in kube.applied:
        assert {doc["apiVersion"] for doc in applied} <= KUBERNETES_1_20


@pytest.mark.parametrize(
    "api_versions", [KUBERNETES_1_20, KUBERNETES_CURRENT], ids=["1.20", "current"]
)
def test_every_iris_object_is_in_an_api_version_the_server_serves(api_versions):
    served, _ = as_served(render(load(ROOT / "verify.toml"), "iris:test"), api_versions)
    assert {doc["apiVersion"] for doc in served} <= api_versions


def test_every_iris_object_lives_in_the_runs_namespace_and_its_account_comes_first():
    documents = render(load(ROOT / "verify.toml"), "iris:test")
    assert {doc["kind"] for doc in documents} <= NAMESPACED_KINDS
    assert [doc for doc in documents if "namespace" in doc["metadata"]] == []
    kinds = [doc["kind"] for doc in documents]
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    account = kinds.index("ServiceAccount")
    assert documents[account]["metadata"]["name"] == pod["serviceAccountName"]
    assert account < kinds.index("Deployment")
    assert documents[account]["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    assert "PodDisruptionBudget" in kinds
