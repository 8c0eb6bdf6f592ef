"""Declared splits on the iris Service, with a canary (manifests/canary: the second model
version, beside the 3 stable replicas, behind the same Services):

- its negative control: a canary declared at 10% that gets its pod-count share fails, naming
  both shares;
- weighted routes, the way ingress canary weights and Gateway API backendRefs weights work:
  HAProxy (from Debian's package, e2e/route/) routes by path prefix to a stable and a canary
  Service with the weights in its configuration, checked at 90/10 and 70/30, a canary weighted
  0 that must get nothing, and a route really weighted 50/50 declared 90/10, which must fail;
- a canary progression: 1, 2, 3 canary replicas, the split tracking each step;
- first, kubeverify's standard check (verify.toml's [[splits]]: the canary at its replica
  ratio), which applies the canary as declared (1 replica) and deletes it after.

One canary and one route serve all of them, made once for the module.
"""

import re

import pytest

from e2e import route as route_image
from kubeverify import Split, SplitGroup, Splits, judge_split, objects_of

CANARY = "iris-classifier-canary"  # manifests/canary's Deployment


def route(path: str, stable: float, canary: float) -> Split:
    """The split a route at `path` is declared to make."""
    return Split(
        name=f"weighted route /{path}, declared {stable:g}/{canary:g}",
        groups=(
            SplitGroup("stable", "app=iris-classifier,track=stable", stable),
            SplitGroup("canary", "app=iris-classifier,track=canary", canary),
        ),
        url=f"{route_image.URL}/{path}",
    )


class TestSplits(Splits):
    # First, before this module's canary: the standard check applies the canary as declared
    # and deletes it after, and it starts from the stable track alone, every pod answering.
    __doc__ = Splits.__doc__


@pytest.fixture(scope="module")
def canary(stage, deployment, target):
    """The canary beside the settled stable track, and the route in front of both (where the
    provider builds images), for this module's checks."""
    routed = route_image.made_available(stage)
    # The stable track settled first: with the canary up, the Services' endpoints are not the
    # target's pods alone, which is what settling waits for.
    if not deployment.settled(target.replicas).done:
        deployment.apply(replicas=target.replicas)
    deployment.wait_settled(target.replicas)
    (split,) = target.splits
    with (
        objects_of(stage.kube, split.manifests, target, deployment.image),
        objects_of(stage.kube, route_image.DIRECTORY if routed else None, target, deployment.image),
    ):
        yield split, routed


@pytest.fixture
def judged(stage, record, run, pytestconfig):
    """Judge a split as the standard check does, and record the verdict."""
    how = pytestconfig.getoption("balance_test")

    def judge(split, **given):
        return record(judge_split(stage, split, how, run.timer.note, **given))

    return judge


def test_a_canary_declared_at_10_percent_that_gets_its_pod_share_fails(canary, judged):
    split, _ = canary
    wrong = judged(split, weights={"stable": 90, "canary": 10}, control=True,
                   label="split, negative control: a canary declared at 10%")  # fmt: skip
    assert not wrong.passed, wrong.explain()
    assert re.search(r"stable \d+\.\d% \(declared 90\.0%\)", wrong.summary), wrong.summary
    assert re.search(r"canary \d+\.\d% \(declared 10\.0%\)", wrong.summary), wrong.summary


@pytest.mark.parametrize(
    ("path", "stable", "canary_weight"), [("w9010", 90, 10), ("w7030", 70, 30), ("w1000", 100, 0)]
)
def test_a_weighted_route_splits_as_its_weights_declare(
    canary, judged, path, stable, canary_weight
):
    if not canary[1]:
        pytest.skip("the route's image is built here; this provider pulls images")
    split = route(path, stable, canary_weight)
    verdict = judged(split, label=split.name)
    assert verdict.passed, verdict.explain()


def test_a_route_whose_real_weights_differ_from_those_declared_fails(canary, judged):
    if not canary[1]:
        pytest.skip("the route's image is built here; this provider pulls images")
    split = route("w5050", 90, 10)  # HAProxy weighs it 50/50
    verdict = judged(split, control=True, label=f"{split.name}, really 50/50 (negative control)")
    assert not verdict.passed, verdict.explain()
    assert "(declared 90.0%)" in verdict.summary


def test_a_canary_progression_splits_as_each_step_declares(canary, judged, stage, target):
    split, _ = canary
    for replicas in (1, 2, 3):
        stage.kube.kubectl("scale", f"deployment/{CANARY}", f"--replicas={replicas}")
        # Every canary pod of this step ready before the count: one that turns ready halfway
        # would answer from outside the groups counted.
        stage.kube.kubectl("rollout", "status", f"deployment/{CANARY}", "--timeout=120s")
        verdict = judged(
            split,
            label=f"canary progression: {replicas} canary beside {target.replicas} stable replicas",
        )
        assert verdict.passed, verdict.explain()
        assert verdict.figures["declared"]["canary"] == replicas / (replicas + target.replicas)
