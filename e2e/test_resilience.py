"""The Deployment heals, rolls and moves off a drained node while traffic runs (kubeverify's
standard resilience checks), and the drain's negative controls: a lone pod with no
PodDisruptionBudget, whose drain must be seen to fail requests; and pods two budgets select,
which the eviction API refuses, and the drain must say so."""

import pytest
import yaml

from e2e.controls import iris_copy, ready_pods, selected
from kubeverify import (
    EvictionRefused,
    Resilience,
    drain_node,
    drain_under_traffic,
    fullest_node,
    schedulable_workers,
    wait_until,
)


class TestResilience(Resilience):
    __doc__ = Resilience.__doc__


LONE_APP = "iris-lone"
# Seconds the lone pod's replacement takes to be ready, as a model server that loads its model
# at start does; with no other pod the Service refuses every request until then. (The iris image
# alone is ready in about a second, which a drain of 2 s spans with too few requests for a
# verdict either way; the first pod waits as long, so every second here is two of the run's.)
LOADING_SECONDS = 3
# The lone pod has no preStop sleep. Since Kubernetes 1.28 kube-proxy sends to a terminating pod
# that still serves when a Service has no ready one: with iris's 5 s sleep, a replacement ready
# in 4 s took over with no request lost (0 of 485), and the control lost requests only when its
# replacement was slower than the sleep (27 to 68 of 600-700 at 5 s + 1 s to start).


def test_a_drain_that_takes_a_lone_pod_without_a_budget_fails_requests(
    settled_pods, deployment, kube, endpoint, record, run
):
    """The negative control of the drain check: a Deployment of one pod that takes some
    seconds to be ready, with no preStop sleep and no budget; its eviction leaves the Service
    nothing to send to until the replacement is ready, and the zero-failure verdict must see
    the requests lost and say the budget is missing."""
    lone = iris_copy(deployment, LONE_APP, LONE_APP, 1)
    (server,) = lone["spec"]["template"]["spec"]["containers"]
    server["readinessProbe"]["initialDelaySeconds"] = LOADING_SECONDS
    server.pop("lifecycle", None)
    selector = f"app={LONE_APP}"
    with selected(kube, [lone], LONE_APP, 1, settled_pods, 120):
        node, _ = fullest_node(kube, selector)
        _, lost, budget = drain_under_traffic(
            kube,
            endpoint,
            selector,
            node,
            lambda: (
                wait_until(
                    lambda: ready_pods(kube, LONE_APP, 1), what=f"{LONE_APP} replaced", timeout=120
                ).value
            ),
            say=run.timer.note,
            control=True,
        )
    record(lost)
    record(budget)
    assert not lost.passed, lost.explain()
    assert lost.details[0].startswith("no PodDisruptionBudget selects these pods"), lost.details
    assert lost.figures["failed"] > 0, lost.explain()  # failures seen, not too few requests
    assert not budget.passed, budget.explain()
    assert budget.advisory, budget.explain()


SECOND_BUDGET = "iris-second-budget"


def test_a_drain_of_pods_two_budgets_select_is_refused_and_says_why(
    settled_pods, kube, target, run
):
    """A second PodDisruptionBudget over the iris pods: the eviction API evicts no pod that
    more than one budget selects (it answers 500), and the drain must say so, naming both,
    and leave the node schedulable and every pod where it was."""
    second = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": SECOND_BUDGET},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "iris-classifier"}}},
    }
    node, why_not = fullest_node(kube, target.selector)
    if node is None:
        pytest.skip(why_not)
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(second))
    try:
        with pytest.raises(EvictionRefused) as refused:
            drain_node(kube, target.selector, node, lambda: [], say=run.timer.note)
    finally:
        kube.kubectl("delete", "-f", "-", stdin=yaml.safe_dump(second))
    run.timer.note(str(refused.value))
    assert "PodDisruptionBudgets iris-classifier, iris-second-budget all select it" in str(
        refused.value
    ), refused.value
    assert node in schedulable_workers(kube), f"{node} left cordoned"
    assert sorted(p.name for p in kube.pods(target.selector)) == sorted(settled_pods)
