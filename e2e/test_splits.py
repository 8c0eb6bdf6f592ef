"""Declared splits on the iris Service: kubeverify's standard check (a canary at its replica
ratio, verify.toml's [[splits]]), a canary progression (1, 2, 3 canary replicas beside the 3
stable ones, the split tracking each step) with its negative control (a canary declared at 10%
that gets its pod-count share fails, naming both shares)."""

import re

from kubeverify import Splits, judge_split, objects_of

CANARY = "iris-classifier-canary"  # manifests/canary's Deployment


class TestSplits(Splits):
    __doc__ = Splits.__doc__


def test_a_canary_progression_splits_as_each_step_declares(
    stage, deployment, settled_pods, target, record, run, pytestconfig
):
    (split,) = target.splits
    how = pytestconfig.getoption("balance_test")
    with objects_of(stage.kube, split.manifests, target, deployment.image):
        # The negative control first, on one canary replica: declared at 10%, it gets a
        # quarter of the connections (its pod-count share), and the verdict must say so.
        wrong = record(
            judge_split(
                stage, split, how, run.timer.note, weights={"stable": 90, "canary": 10},
                control=True, label="split, negative control: a canary declared at 10%",
            )
        )  # fmt: skip
        assert not wrong.passed, wrong.explain()
        assert re.search(r"stable \d+\.\d% \(declared 90\.0%\)", wrong.summary), wrong.summary
        assert re.search(r"canary \d+\.\d% \(declared 10\.0%\)", wrong.summary), wrong.summary
        for replicas in (1, 2, 3):
            stage.kube.kubectl("scale", f"deployment/{CANARY}", f"--replicas={replicas}")
            verdict = record(
                judge_split(
                    stage, split, how, run.timer.note,
                    label=f"canary progression: {replicas} canary beside {target.replicas} "
                    "stable replicas",
                )
            )  # fmt: skip
            assert verdict.passed, verdict.explain()
            declared = verdict.figures["declared"]["canary"]
            assert declared == replicas / (replicas + target.replicas)
