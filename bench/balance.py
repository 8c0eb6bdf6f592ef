"""`python -m bench.balance`: the fixed-size and the group-sequential balance tests compared by
simulation: false alarms on an even Service, power against the worst 1.5 split, and the
requests each sends (kubeverify's sequential_design and simulate_sequential)."""

from __future__ import annotations

import argparse

from kubeverify import sequential_design, simulate_sequential, worst_shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.balance", description=__doc__)
    parser.add_argument("--draws", type=int, default=50_000, help="simulated runs per figure")
    parser.add_argument("--pods", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    args = parser.parse_args(argv)
    print(
        f"{'pods':>4}  {'fixed N':>7}  {'seq. max':>8}  {'alpha':>7}  {'power':>6}  "
        f"{'sent, even':>10}  {'of fixed':>8}  {'sent, 1.5 split':>15}"
    )
    for pods in args.pods:
        design = sequential_design(pods)
        even, worst = [1 / pods] * pods, worst_shares(pods)
        # Seeds apart from the design's (1 and 2): these runs did not shape the bounds.
        alpha, sent_even = simulate_sequential(design, even, args.draws, seed=1000 + pods)
        power, sent_worst = simulate_sequential(design, worst, args.draws, seed=2000 + pods)
        print(
            f"{pods:>4}  {design.fixed:>7}  {design.sizes[-1]:>8}  {alpha:>7.4f}  {power:>6.4f}  "
            f"{sent_even:>10.0f}  {sent_even / design.fixed:>8.0%}  {sent_worst:>15.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
