"""Two commits side by side (`python -m bench.compare`): what each side serves, and the verdict
on AFTER's requests per second over BEFORE's."""

from __future__ import annotations

import numpy as np
import pytest

from bench import compare, judging
from bench.throughput import CLASSIFY, ROOT, Run


def rounds(after_share, count=12, noise=0.03, seed=0, server_cpu=0.99):
    """Rounds of classify on both sides, BEFORE drifting between rounds, AFTER its share."""
    rng = np.random.default_rng(seed)
    made = []
    for before in 3000 * rng.lognormal(0, 0.1, count):
        after = before * after_share * rng.lognormal(0, noise)
        made.append(
            {
                (side, CLASSIFY.name): Run(CLASSIFY, rps, 5.0, 9.0, server_cpu, 0.0, 0.3)
                for side, rps in (("before", before), ("after", after))
            }
        )
    return made


@pytest.mark.parametrize(
    ("after_share", "verdict"),
    [(1.0, judging.MET), (0.80, judging.MISSED), (0.95, judging.UNRESOLVED)],
)
def test_a_change_is_called_slower_only_when_its_interval_lies_below_the_line(
    after_share, verdict, capsys
):
    assert compare.compared(rounds(after_share), CLASSIFY, tolerance=0.05) == verdict
    printed = capsys.readouterr().out
    assert compare.VERDICTS[verdict] in printed
    assert "12 of 12 rounds server-bound" in printed
    if verdict == judging.UNRESOLVED:
        assert "rounds would resolve it" in printed


def test_rounds_the_server_did_not_bound_are_not_judged(capsys):
    assert compare.compared(rounds(0.5, server_cpu=0.6), CLASSIFY, 0.05) == judging.UNRESOLVED
    assert "0 of 12 rounds server-bound: not resolved" in capsys.readouterr().out


def test_a_commit_is_served_from_a_worktree_of_its_own_removed_after(tmp_path):
    place = tmp_path / "before"
    with compare.checkout("HEAD", place) as (root, what):
        assert root == place
        assert (root / "service" / "server.py").is_file()
        assert compare.served_from(root).is_relative_to(place.resolve())
        assert compare.git("rev-parse", "HEAD").startswith(what.split()[0])
    assert not place.exists()
    assert str(place) not in compare.git("worktree", "list")
    with compare.checkout(".", tmp_path / "unused") as (root, what):
        assert root == ROOT
        assert what.startswith("the working tree")
    with (
        pytest.raises(SystemExit, match="failed"),
        compare.checkout("no-such-revision-anywhere", tmp_path / "x"),
    ):
        pass
