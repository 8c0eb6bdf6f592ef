"""The Deployment heals, rolls and moves off a drained node while traffic runs (kubeverify's
standard resilience checks), and the drain's negative control: a lone pod with no
PodDisruptionBudget, whose drain must be seen to fail requests."""

from e2e.controls import iris_copy, ready_pods, selected
from kubeverify import Resilience, drain_under_traffic, fullest_node, wait_until


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
