"""The drain check's rules, without a cluster: which pods a budget counts healthy, the fewest
healthy pods a watch saw in a window, a budget's selector as list-request text, and the
verdicts a drain gets (the budget held or not, and the finding when there is none)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kubeverify.drain import (
    Budget,
    Drained,
    Evictions,
    HealthyCount,
    budget_verdict,
    healthy,
    refusal,
    selector_text,
)


def pod(name: str, *, ready: bool = True, deleting: bool = False, labels=None) -> dict:
    metadata = {"name": name, **({"deletionTimestamp": "2026-12-06T19:00:00Z"} if deleting else {})}
    metadata["labels"] = labels or {"app": "web"}
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {"metadata": metadata, "status": status}


def test_a_pod_is_healthy_when_ready_and_not_being_deleted():
    assert healthy(pod("a"))
    assert not healthy(pod("a", ready=False))
    # Still serving through its preStop sleep, but a budget counts it gone: so does the check.
    assert not healthy(pod("a", deleting=True))
    assert not healthy({"metadata": {"name": "a"}, "status": {}})


def _count_seeing(*events) -> HealthyCount:
    times = iter(range(100))
    count = HealthyCount(kube=None, selector="app=web", clock=lambda: next(times))
    for kind, state in events:
        count._seen(kind, state)
    return count


def test_the_fewest_healthy_pods_counts_every_change_in_the_window_and_the_state_before_it():
    count = _count_seeing(  # the clock ticks once a change: at 0, 1, 2, ...
        ("ADDED", pod("a")),  # 1 healthy
        ("ADDED", pod("b")),  # 2
        ("ADDED", pod("c")),  # 3
        ("MODIFIED", pod("a", deleting=True)),  # 2
        ("ADDED", pod("d", ready=False)),  # no change
        ("MODIFIED", pod("b", deleting=True)),  # 1: a dip between two samples
        ("MODIFIED", pod("d")),  # 2
        ("DELETED", pod("a", deleting=True)),  # no change: it counted for nothing already
    )
    assert [(at, len(pods)) for at, pods in count.history] == [
        (0, 1), (1, 2), (2, 3), (3, 2), (4, 1), (5, 2)
    ]  # fmt: skip
    assert count.fewest(2, 2.5) == 3  # the state the window starts in
    assert count.fewest(2, 3.5) == 2
    assert count.fewest(2, 10) == 1  # the brief dip is seen: a sample at the end would say 2


def test_a_watch_that_died_says_so_rather_than_a_count():
    count = _count_seeing(("ADDED", pod("a")))
    count.error = ConnectionError("the API server went away")
    with pytest.raises(RuntimeError, match="stopped: the API server went away"):
        count.fewest(0, 1)


def test_a_budget_selector_is_the_label_selector_text_the_api_lists_by():
    assert selector_text({"matchLabels": {"app": "web", "tier": "a"}}) == "app=web,tier=a"
    assert (
        selector_text(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                    {"key": "zone", "operator": "NotIn", "values": ["x"]},
                    {"key": "owner", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            }
        )
        == "app=web,track in (stable,canary),zone notin (x),owner,!legacy"
    )


def test_a_budget_is_what_its_controller_resolved():
    budget = Budget.of(
        {"metadata": {"name": "web"}, "status": {"desiredHealthy": 2, "expectedPods": 3}}
    )
    assert budget == Budget("web", 2, 3)


def drained(fewest: int, budgets: list[Budget]) -> Drained:
    return Drained(
        node="worker",
        before={"a": "worker", "b": "worker", "c": "worker2"},
        after={"d": "worker2", "e": "worker2", "c": "worker2"},
        evictions=Evictions(["a", "b"], refused=3),
        budgets=budgets,
        fewest_healthy=fewest,
        started=0.0,
        ended=10.0,
    )


def test_a_drain_that_kept_the_budget_passes_and_one_that_dipped_below_it_fails():
    budget = Budget("web", desired_healthy=2, expected=3)
    kept = budget_verdict(drained(2, [budget]))
    assert kept.passed, kept.explain()
    assert "the fewest healthy pods seen was 2 of 3; web allows no fewer than 2" in kept.summary
    assert kept.rates.false_alarm == 0
    dipped = budget_verdict(drained(1, [budget]))
    assert not dipped.passed
    assert dipped.figures["fewest_healthy"] == 1


def test_a_drain_with_no_budget_is_a_finding_naming_what_it_did():
    verdict = budget_verdict(drained(1, []))
    assert not verdict.passed
    assert verdict.advisory
    assert verdict.as_it_must  # reported, not failed on
    assert "no PodDisruptionBudget selects these pods: the drain evicted 2 of them at once" in (
        verdict.summary
    )
    assert drained(1, []).left_on_node == []


def test_after_a_gap_in_the_watch_the_count_is_the_new_lists():
    # A pod deleted while the watch was away must not stay counted healthy.
    count = _count_seeing(("ADDED", pod("a")), ("ADDED", pod("b")))
    count._relisted([pod("b")])
    assert count.history[-1][1] == {"b"}


def test_where_budgets_differ_the_strictest_counts():
    loose = Budget("web-loose", desired_healthy=1, expected=3)
    strict = Budget("web-strict", desired_healthy=3, expected=3)
    for budgets in ([loose, strict], [strict, loose]):
        dipped = budget_verdict(drained(2, budgets))
        assert not dipped.passed, dipped.explain()
        assert (
            "of the pods each budget selects, the fewest healthy: web-strict 2, BELOW the 3 "
            "allowed, web-loose 2, within its 1 allowed"
        ) in dipped.summary
    assert budget_verdict(drained(3, [loose, strict])).passed


def test_budgets_over_different_pods_are_each_held_over_their_own():
    # A over the stable pods needs 2 of them, B over the canary 1: the stable pods can fall
    # to none while the canary keeps the total at 2, which a count over all pods never sees.
    stable = {"app": "web", "track": "stable"}
    canary = {"app": "web", "track": "canary"}
    a = Budget("web-stable", 2, 2, selector={"matchLabels": {"track": "stable"}})
    b = Budget("web-canary", 1, 1, selector={
        "matchExpressions": [{"key": "track", "operator": "In", "values": ["canary"]}]
    })  # fmt: skip
    count = _count_seeing(
        ("ADDED", pod("s1", labels=stable)),
        ("ADDED", pod("s2", labels=stable)),
        ("ADDED", pod("c1", labels=canary)),
        ("ADDED", pod("c2", labels=canary)),
        ("MODIFIED", pod("s1", labels=stable, deleting=True)),
        ("MODIFIED", pod("s2", labels=stable, deleting=True)),
        ("ADDED", pod("s3", labels=stable)),
    )
    assert count.fewest(3, 10) == 2
    assert (count.fewest(3, 10, a), count.fewest(3, 10, b)) == (0, 2)
    held = replace(drained(2, [a, b]), fewest_by_budget={"web-stable": 0, "web-canary": 2})
    verdict = budget_verdict(held)
    assert not verdict.passed, verdict.explain()
    assert "web-stable 0, BELOW the 2 allowed, web-canary 2, within its 1 allowed" in (
        verdict.summary
    )


def test_an_eviction_two_budgets_refuse_is_said_plainly_naming_them():
    # The eviction API's own words (pkg/registry/core/pod/storage/eviction.go, answered 500).
    message = (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
        "not support."
    )
    budgets = [
        Budget("web", 2, 3, frozenset({"a", "b", "c"})),
        Budget("web-canary", 0, 1, frozenset({"c"})),
    ]
    said = refusal("c", message, budgets)
    assert said.startswith(
        "the eviction API refuses to evict c: PodDisruptionBudgets web, web-canary all select it"
    ), said
    assert "Give each pod one budget." in said
    # Where the budgets seen do not say which (one created since), the API's word stands.
    assert refusal("x", message, budgets).startswith(
        "the eviction API refuses to evict x: more than one PodDisruptionBudget selects it"
    )
