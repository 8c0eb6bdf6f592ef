"""Weighted routes: the declared-split verdict on a split made by a proxy in front of two
Services, the way ingress canary weights and Gateway API backendRefs weights work. HAProxy (from
Debian's package, e2e/route/) routes by path prefix to the stable and the canary Service with
the weights in its configuration; each route is checked against the weights declared for it:
90/10 and 70/30, a canary weighted 0 that must get nothing, and, as the negative control, a
route really weighted 50/50 declared 90/10, which must fail."""

from pathlib import Path

import pytest

from kubeverify import Image, KindProvider, judge_split, objects_of
from kubeverify.target import Group, Split

ROOT = Path(__file__).resolve().parents[1]
ROUTE = ROOT / "e2e" / "route"
IMAGE = "iris-route:e2e"  # route.yaml's tag
URL = "http://127.0.0.1:30082"  # route.yaml's NodePort, which kind-config.yaml publishes


def route(path: str, stable: float, canary: float) -> Split:
    """The split a route at `path` is declared to make."""
    return Split(
        name=f"weighted route /{path}, declared {stable:g}/{canary:g}",
        groups=(
            Group("stable", "app=iris-classifier,track=stable", stable),
            Group("canary", "app=iris-classifier,track=canary", canary),
        ),
        url=f"{URL}/{path}",
    )


@pytest.fixture(scope="module")
def routes(stage, deployment, target):
    """The canary and the route in front of both tracks, for this module's checks."""
    if stage.provider.name != KindProvider.name:
        pytest.skip(f"the route's image is built here; the {stage.provider.name} provider pulls")
    stage.provider.make_available(Image(IMAGE, ROUTE, ROUTE / "Dockerfile"))
    # The stable track settled first: with the canary up, the Services' endpoints are not the
    # target's pods alone, which is what settling waits for.
    if not deployment.settled(target.replicas).done:
        deployment.apply(replicas=target.replicas)
    deployment.wait_settled(target.replicas)
    (canary,) = target.splits
    with (
        objects_of(stage.kube, canary.manifests, target, deployment.image),
        objects_of(stage.kube, ROUTE, target, deployment.image),
    ):
        yield


@pytest.mark.usefixtures("routes")
@pytest.mark.parametrize(
    ("path", "stable", "canary"), [("w9010", 90, 10), ("w7030", 70, 30), ("w1000", 100, 0)]
)
def test_a_weighted_route_splits_as_its_weights_declare(
    stage, record, run, pytestconfig, path, stable, canary
):
    split = route(path, stable, canary)
    how = pytestconfig.getoption("balance_test")
    verdict = record(judge_split(stage, split, how, run.timer.note, label=split.name))
    assert verdict.passed, verdict.explain()


@pytest.mark.usefixtures("routes")
def test_a_route_whose_real_weights_differ_from_those_declared_fails(
    stage, record, run, pytestconfig
):
    split = route("w5050", 90, 10)  # HAProxy weighs it 50/50
    how = pytestconfig.getoption("balance_test")
    verdict = record(
        judge_split(stage, split, how, run.timer.note, control=True,
                    label=f"{split.name}, really 50/50 (negative control)")
    )  # fmt: skip
    assert not verdict.passed, verdict.explain()
    assert "(declared 90.0%)" in verdict.summary
