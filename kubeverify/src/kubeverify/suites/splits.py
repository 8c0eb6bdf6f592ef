"""Declared splits: for each split the target declares, its manifests applied (a canary
Deployment, say), its groups' pods ready, and the traffic through its entry point judged
against the declared shares; the manifests deleted after."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kubeverify import splits
from kubeverify.deployment import objects_of
from kubeverify.sampling import split_verdict
from kubeverify.target import Group, Split
from kubeverify.traffic import wait_until_every_pod_answers
from kubeverify.waiting import Observation, wait_until

READY_TIMEOUT = 180


def ready_groups(kube, split) -> Observation:
    """Every group's pods ready and none terminating but those gone (`PodState.gone`): {group:
    its ready pods}."""
    pods = {
        group.name: [pod for pod in kube.pods(group.selector) if not pod.gone]
        for group in split.groups
    }
    ready = {name: {p.name for p in found if p.ready} for name, found in pods.items()}
    settling = [p.name for found in pods.values() for p in found if not p.ready or p.terminating]
    done = not settling and any(ready.values())
    return Observation(done, f"ready {ready}; not yet {settling}", ready)


def judge(stage, split, how: str, say, *, weights=None, control: bool = False, label=None):
    """The split's verdict, its groups' pods as they are now: `weights` as declared (or given,
    for a negative control), else each group's share of the ready replicas."""
    if split.httproute:
        split = of_httproute(stage.kube, split)
    ready = wait_until(
        lambda: ready_groups(stage.kube, split),
        what=f"the pods of split {split.name} ready",
        timeout=READY_TIMEOUT,
    ).value
    weights = weights or split.weights({group: len(pods) for group, pods in ready.items()})
    endpoint = stage.reach(split.url)
    answering = {pod for group, pods in ready.items() if weights.get(group) for pod in pods}
    wait_until_every_pod_answers(endpoint, answering, timeout=READY_TIMEOUT)
    return split_verdict(
        endpoint,
        ready,
        weights,
        how,
        label=label or f"split {split.name}",
        deviation=split.deviation,
        say=say,
        control=control,
    )


def of_httproute(kube, split: Split) -> Split:
    """The split with the groups its HTTPRoute declares: each backend Service's pods, at the
    weight the route gives it."""
    route = kube.httproute(split.httproute)
    names = [backend["name"] for backend in route["spec"]["rules"][0].get("backendRefs") or []]
    selectors = {
        name: kube.core.read_namespaced_service(name, kube.namespace).spec.selector or {}
        for name in names
    }
    groups = tuple(
        Group(name, selector, weight)
        for name, (selector, weight) in splits.from_httproute(route, selectors).items()
    )
    return replace(split, groups=groups)


class Splits:
    """Traffic splits the way the target declares it, group by group: a goodness-of-fit test
    with the balance test's error rates, against every split 8 points or more off in a group."""

    def test_traffic_splits_over_the_groups_as_declared(
        self, stage, deployment, settled_pods, target, record, run, pytestconfig
    ):
        if not target.splits:
            pytest.skip("the target declares no splits ([[splits]])")
        verdicts = []
        for split in target.splits:
            how = pytestconfig.getoption("balance_test")
            with objects_of(stage.kube, split.manifests, target, deployment.image):
                verdicts.append(record(judge(stage, split, how, run.timer.note)))
        failed = [verdict.explain() for verdict in verdicts if not verdict.passed]
        assert not failed, "\n".join(failed)
