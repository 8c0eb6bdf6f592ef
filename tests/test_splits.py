"""The declared-split verdict's statistics, on counts drawn here: the hardest split a deviation
allows, the draws it needs, its power and false alarms (fixed and sequential) at 70/30, 75/25
and 90/10, a group declared at 0, answers from no group, and the target file's [[splits]]."""

import itertools

import numpy as np
import pytest

from kubeverify import sequential, splits
from kubeverify.balance import effect_size
from kubeverify.target import TargetError, load
from tests.test_target import MINIMAL

DECLARED = [(0.7, 0.3), (0.75, 0.25), (0.9, 0.1)]


@pytest.mark.parametrize(
    ("declared", "draws"), [((0.7, 0.3), 1103), ((0.75, 0.25), 1005), ((0.9, 0.1), 538)]
)
def test_the_draws_for_each_declared_split_are_pinned(declared, draws):
    # Found by simulating the test against the hardest splits (with a margin for the
    # simulation's own error); a size 5% smaller falls short.
    assert splits.required_draws(declared) == draws
    hardest = splits.worst_splits(declared)
    assert min(splits.rejection_rate(draws, w, expected=declared) for w in hardest) >= 0.99
    short = round(draws * 0.95)
    assert min(splits.rejection_rate(short, w, expected=declared) for w in hardest) < 0.99


def test_the_hardest_splits_move_the_group_nearest_one_half_by_the_deviation():
    assert [tuple(round(s, 6) for s in w) for w in splits.worst_splits((0.7, 0.3))] == [
        (0.78, 0.22),
        (0.62, 0.38),
    ]
    # Three groups: the 0.5 group moves, the others make up the difference by their shares.
    up, down = splits.worst_splits((0.5, 0.3, 0.2))
    assert up == pytest.approx((0.58, 0.3 * 0.42 / 0.5, 0.2 * 0.42 / 0.5))
    assert down == pytest.approx((0.42, 0.3 * 0.58 / 0.5, 0.2 * 0.58 / 0.5))
    # A share cannot leave [0, 1]: 95/5 moves down alone.
    assert len(splits.worst_splits((0.95, 0.05))) == 1


@pytest.mark.parametrize("declared", [(0.7, 0.3), (0.5, 0.3, 0.2), (0.6, 0.25, 0.1, 0.05)])
def test_no_split_as_far_off_is_easier_to_miss(declared):
    """Every other split with some group 8 points off has at least the hardest one's effect."""
    least = min(effect_size(w, declared) for w in splits.worst_splits(declared))
    rng = np.random.default_rng(11)
    for _ in range(3000):
        moved = rng.integers(len(declared))
        shift = splits.DEVIATION * rng.choice([-1, 1]) * rng.uniform(1, 1.5)
        rest = rng.dirichlet(np.ones(len(declared) - 1)) * -shift
        other = np.array(declared, dtype=float)
        other[moved] += shift
        other[np.arange(len(declared)) != moved] += rest
        if (other <= 0).any() or (other >= 1).any():
            continue
        assert effect_size(list(other), declared) >= least - 1e-12


def _verdict(counts, declared):
    groups = [f"g{i}" for i in range(len(declared))]
    return splits.judge_split(
        dict(zip(groups, map(int, counts), strict=True)),
        dict(zip(groups, declared, strict=True)),
        label="test",
    )


# Seeds of this file's own: the draws are independent of the calculation's.
@pytest.mark.parametrize(("declared", "seed"), list(zip(DECLARED, (101, 202, 303), strict=True)))
def test_the_fixed_size_test_has_its_stated_power_and_false_alarm_rate(declared, seed):
    draws = splits.required_draws(declared)
    rng = np.random.default_rng(seed)
    for worst in splits.worst_splits(declared):
        rows = rng.multinomial(draws, worst, size=4000)
        caught = sum(not _verdict(row, declared).passed for row in rows) / 4000
        assert caught >= 0.985, worst  # 0.99, less the noise of 4,000 runs
    rows = rng.multinomial(draws, declared, size=5000)
    alarms = sum(not _verdict(row, declared).passed for row in rows) / 5000
    assert alarms <= 0.004  # 0.001 expected: 5 of 5,000


@pytest.mark.parametrize(("declared", "seed"), list(zip(DECLARED, (404, 505, 606), strict=True)))
def test_the_sequential_test_keeps_the_error_rates_with_fewer_draws(declared, seed):
    draws = splits.required_draws(declared)
    design = sequential.design_for(declared, splits.hardest(declared), draws)
    alarms, sent = sequential.simulate(design, list(declared), 100_000, seed=seed)
    assert alarms <= 0.001 + 0.0004  # alpha, and the noise of 100,000 runs
    assert sent < 0.65 * draws  # about half of the fixed size on a split as declared
    for worst in splits.worst_splits(declared):
        caught, _ = sequential.simulate(design, list(worst), 20_000, seed=seed + 1)
        assert caught >= 0.99 - 0.003, worst


def test_a_verdict_names_each_share_measured_and_declared():
    verdict = splits.judge_split(
        {"stable": 750, "canary": 250}, {"stable": 0.9, "canary": 0.1}, label="canary"
    )
    assert not verdict.passed
    assert "stable 75.0% (declared 90.0%), canary 25.0% (declared 10.0%)" in verdict.summary
    assert verdict.shares.expected == {"stable": 0.9, "canary": 0.1}
    low, high = verdict.shares.band["canary"]
    assert low < 0.1 < high < 0.25
    assert verdict.rates.text() == (
        "false alarms 0.001, power 0.99 against a split 8% or more off the declared 90%/10% "
        "in any group"
    )


def test_a_group_declared_at_zero_must_get_nothing():
    declared = {"stable": 1.0, "old": 0.0}
    clean = splits.judge_split({"stable": 600}, declared, label="route")
    assert clean.passed
    assert clean.details == (
        "old, declared at 0, got none of 600: its share is below 0.50% with 95% confidence",
    )
    leaked = splits.judge_split({"stable": 599, "old": 1}, declared, label="route")
    assert not leaked.passed
    assert leaked.details == ("old, declared at 0, got 1 of 600",)


def test_answers_from_pods_in_no_group_fail_the_split():
    verdict = splits.judge_split(
        {"stable": 700, "canary": 300}, {"stable": 0.7, "canary": 0.3}, label="x",
        unexpected={"<no group: stray-pod>": 2},
    )  # fmt: skip
    assert not verdict.passed
    assert "answers from pods in no group" in verdict.explain()


def test_weights_are_relative_and_never_negative():
    assert splits.normalised({"a": 90, "b": 10}) == {"a": 0.9, "b": 0.1}
    with pytest.raises(ValueError, match="0 or more"):
        splits.normalised({"a": 1, "b": -1})
    with pytest.raises(ValueError, match="one at least more"):
        splits.normalised({"a": 0, "b": 0})


SPLIT = """
[[splits]]
name = "canary"
manifests = "manifests"
[[splits.groups]]
name = "stable"
selector = "track=stable"
{stable}
[[splits.groups]]
name = "canary"
selector = "track=canary"
{canary}
"""


def _target(tmp_path, text: str):
    (tmp_path / "manifests").mkdir(exist_ok=True)
    (tmp_path / "verify.toml").write_text(MINIMAL + text)
    return load(tmp_path / "verify.toml")


def test_a_split_without_weights_takes_the_groups_shares_of_the_ready_replicas(tmp_path):
    (split,) = _target(tmp_path, SPLIT.format(stable="", canary="")).splits
    assert split.weights({"stable": 3, "canary": 1}) == {"stable": 3.0, "canary": 1.0}
    assert split.manifests == tmp_path / "manifests"
    assert split.deviation == 0.08
    (weighted,) = _target(tmp_path, SPLIT.format(stable="weight = 90", canary="weight = 10")).splits
    assert weighted.weights({"stable": 3, "canary": 1}) == {"stable": 90.0, "canary": 10.0}


@pytest.mark.parametrize(
    ("stable", "canary", "problem"),
    [
        ("weight = 90", "", "splits[0].groups: give every group a weight, or none"),
        ("weight = 0", "weight = 0", "splits[0].groups: the weights add up to 0"),
        ("weight = -1", "weight = 1", "splits[0].groups[0].weight: must be a number, 0 or more"),
        ("weight = true", "weight = 1", "splits[0].groups[0].weight: must be a number"),
        ("colour = 1", "", "splits[0].groups[0].colour: unknown field"),
    ],
)
def test_a_wrong_split_is_refused_naming_the_field(tmp_path, stable, canary, problem):
    with pytest.raises(TargetError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        _target(tmp_path, SPLIT.format(stable=stable, canary=canary))


def test_a_split_needs_two_groups_and_a_fair_deviation(tmp_path):
    one = SPLIT.split('[[splits.groups]]\nname = "canary"')[0]
    with pytest.raises(TargetError, match=r"splits\[0\].groups: needs two"):
        _target(tmp_path, one.format(stable=""))
    deviated = SPLIT.replace('manifests = "manifests"', 'manifests = "manifests"\ndeviation = 0.6')
    with pytest.raises(TargetError, match=r"splits\[0\].deviation: must be a share in \(0, 0.5\]"):
        _target(tmp_path, deviated.format(stable="", canary=""))


def test_the_kind_config_publishes_a_split_url_on_loopback(tmp_path):
    from kubeverify.providers.kind.cluster import kind_config

    text = SPLIT.replace('manifests = "manifests"', 'url = "http://127.0.0.1:30082/r/9010"')
    target = _target(tmp_path, text.format(stable="", canary=""))
    ports = [m["hostPort"] for m in kind_config(target)["nodes"][0]["extraPortMappings"]]
    assert 30082 in ports


def test_every_shape_pinned_here_is_one_the_designs_hold():
    # The table the README and bench.splits print; the designs are cached and deterministic.
    for declared in DECLARED:
        design = sequential.design_for(
            declared, splits.hardest(declared), splits.required_draws(declared)
        )
        assert design.expected == declared
        assert list(itertools.accumulate(design.sizes, max)) == list(design.sizes)


ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "iris"},
    "spec": {
        "parentRefs": [{"name": "gateway"}],
        "rules": [
            {
                "backendRefs": [
                    {"name": "iris-stable", "port": 8080, "weight": 70},
                    {"name": "iris-canary", "port": 8080, "weight": 30},
                ]
            }
        ],
    },
}
SELECTORS = {
    "iris-stable": {"app": "iris-classifier", "track": "stable"},
    "iris-canary": {"app": "iris-classifier", "track": "canary"},
}


def test_an_httproutes_weights_are_the_declared_split_and_judge_simulated_traffic():
    declared = splits.from_httproute(ROUTE, SELECTORS)
    assert declared == {
        "iris-stable": ("app=iris-classifier,track=stable", 70.0),
        "iris-canary": ("app=iris-classifier,track=canary", 30.0),
    }
    weights = {name: weight for name, (_, weight) in declared.items()}
    shares = splits.normalised(weights)
    draws = splits.required_draws(tuple(shares.values()))
    rng = np.random.default_rng(5)
    for true, passes in (((0.7, 0.3), True), ((0.78, 0.22), False)):
        counts = dict(zip(shares, map(int, rng.multinomial(draws, true)), strict=True))
        verdict = splits.judge_split(counts, shares, label="HTTPRoute iris")
        assert verdict.passed is passes, verdict.summary
    # Gateway API's default weight is 1; a backend that is no Service cannot be counted.
    unweighted = {"spec": {"rules": [{"backendRefs": [{"name": "iris-stable"},
                                                       {"name": "iris-canary"}]}]},
                  "metadata": {"name": "even"}}  # fmt: skip
    assert [w for _, w in splits.from_httproute(unweighted, SELECTORS).values()] == [1.0, 1.0]
    with pytest.raises(ValueError, match="not a Service with a selector"):
        splits.from_httproute(ROUTE, {"iris-stable": SELECTORS["iris-stable"]})


def test_a_split_may_take_its_groups_from_an_httproute_and_then_names_none(tmp_path):
    text = '\n[[splits]]\nname = "gateway"\nurl = "http://127.0.0.1:8080"\nhttproute = "iris"\n'
    (split,) = _target(tmp_path, text).splits
    assert (split.httproute, split.groups) == ("iris", ())
    both = text + '[[splits.groups]]\nname = "a"\nselector = "x=y"\n'
    with pytest.raises(TargetError, match=r"splits\[0\].groups: the HTTPRoute's backendRefs"):
        _target(tmp_path, both)
