"""The run's record in reports/: a JSON summary and a chart, both rendered from the verdicts
(`kubeverify.verdict.Verdict`) the checks recorded, whatever they judged."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from kubeverify.verdict import Verdict

SUMMARY = "e2e-summary.json"
CHART = "e2e-pod-shares.png"


@dataclass
class RunReport:
    versions: dict[str, str] = field(default_factory=dict)
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)  # (check id, verdict)

    def add(self, check: str, verdict: Verdict) -> None:
        self.verdicts.append((check, verdict))

    def write(
        self,
        phases: list[tuple[str, float]],
        suites: dict[str, float],
        checks: dict[str, str],
        directory: Path,
    ) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        summary = directory / SUMMARY
        summary.write_text(
            json.dumps(
                {
                    "result": overall(checks),
                    "checks": checks,
                    "versions": self.versions,
                    "phases_seconds": dict(phases),
                    "suites": suite_outcomes(suites, checks),
                    "verdicts": [
                        {"in": check, **verdict.to_json()} for check, verdict in self.verdicts
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        written = [summary]
        if self.verdicts:
            written.append(chart([verdict for _, verdict in self.verdicts], directory / CHART))
        return written


COLUMNS = 3  # split panels side by side
WRAP = 52  # characters a panel's title line holds


def chart(verdicts: list[Verdict], path: Path) -> Path:
    """A panel per verdict that judged a split: each group's share, coloured by node, against
    the share it was expected to get (dashed) and the band that share stays in when the
    expectation holds (grey); below them, every verdict listed with the error rates it claims."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    splits = [verdict for verdict in verdicts if verdict.shares is not None]
    listing = _listing(verdicts)
    rows = -(-len(splits) // COLUMNS)
    text_height = 0.16 * (listing.count("\n") + 1)
    figure = plt.figure(figsize=(5.2 * COLUMNS, 4.4 * rows + text_height), layout="constrained")
    grid = figure.add_gridspec(rows + 1, COLUMNS, height_ratios=[4.4] * rows + [text_height])
    palette = plt.get_cmap("tab10")
    nodes = sorted({node for v in splits for node in v.shares.colour_by.values()})
    for place, verdict in enumerate(splits):
        axis = figure.add_subplot(grid[place // COLUMNS, place % COLUMNS])
        shares = verdict.shares
        groups = sorted(shares.expected, key=lambda group: (shares.colour_by.get(group, ""), group))
        colours = [
            palette(nodes.index(shares.colour_by[group]) % 10)
            if group in shares.colour_by
            else "grey"
            for group in groups
        ]
        at = range(len(groups))
        axis.bar(at, [shares.share(group) for group in groups], color=colours, zorder=2)
        for x, group in zip(at, groups, strict=True):
            low, high = shares.band[group]
            axis.add_patch(Rectangle((x - 0.45, low), 0.9, high - low, color="black",
                                     alpha=0.12, lw=0, zorder=3))  # fmt: skip
            axis.hlines(shares.expected[group], x - 0.45, x + 0.45, colors="black",
                        linestyles="--", linewidth=1, zorder=4)  # fmt: skip
        axis.set_xticks(
            at,
            [f"{group.rsplit('-', 1)[-1]}\n{shares.colour_by.get(group, '')}" for group in groups],
            fontsize=7,
            # Node names side by side run into each other past three groups.
            rotation=30 if len(groups) > 3 else 0,
            ha="right" if len(groups) > 3 else "center",
        )
        axis.set_ylabel("share of draws", fontsize=8)
        title = f"{verdict.check}. {verdict.outcome}: {shares.total} draws"
        if verdict.rates and verdict.rates.text():
            title += f"; {verdict.rates.text()}"
        axis.set_title(
            "\n".join(textwrap.wrap(title, WRAP)),
            fontsize=7.5,
            color="black" if verdict.as_it_must else "tab:red",
        )
    panel = figure.add_subplot(grid[rows, :])
    panel.axis("off")
    panel.text(0, 1, listing, va="top", fontsize=7, family="monospace")
    figure.suptitle(
        "Each split against its expected share (dashed) and the band it stays in when that "
        "holds (grey); every verdict with the error rates it claims",
        fontsize=9,
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _listing(verdicts: list[Verdict]) -> str:
    lines = []
    for verdict in verdicts:
        claim = f" [{verdict.rates.text()}]" if verdict.rates and verdict.rates.text() else ""
        control = " (a negative control: it must fail)" if verdict.control else ""
        lines += textwrap.wrap(
            f"{verdict.outcome.split(',')[0]:<7} {verdict.check}{control}{claim}",
            150,
            subsequent_indent=" " * 8,
        )
    return "\n".join(lines)


def overall(checks: dict[str, str]) -> str:
    """passed when every check passed or was skipped and one at least passed."""
    if not checks:
        return "no checks ran"
    if all(outcome in ("passed", "skipped") for outcome in checks.values()):
        return "passed" if "passed" in checks.values() else "no checks ran"
    return "failed"


def suite_of(check: str) -> str:
    """`e2e/test_scaling.py::TestScaling::test_x` -> `scaling`: the module, as timed."""
    return Path(check.split("::", 1)[0]).stem.removeprefix("test_")


def suite_outcomes(seconds: dict[str, float], checks: dict[str, str]) -> dict[str, dict]:
    """Per suite: its outcome (errored when a check's setup or teardown failed, failed when a
    check did) and its seconds, which an errored suite does not get: they timed no checks."""
    outcomes: dict[str, set[str]] = {}
    for check, outcome in checks.items():
        outcomes.setdefault(suite_of(check), set()).add(outcome)
    result = {}
    for suite, seen in outcomes.items():
        outcome = "errored" if "error" in seen else "failed" if "failed" in seen else "passed"
        if seen == {"skipped"}:
            outcome = "skipped"
        result[suite] = {
            "outcome": outcome,
            "seconds": None if outcome == "errored" else round(seconds.get(suite, 0.0), 1),
        }
    return result
