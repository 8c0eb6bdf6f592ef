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


def chart(verdicts: list[Verdict], path: Path) -> Path:
    """One panel per verdict that judged a split: each group's share, coloured by node, against
    the share it was expected to get and the band that share stays in when the expectation
    holds; and a last panel listing every verdict with the error rates it claims."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    splits = [verdict for verdict in verdicts if verdict.shares is not None]
    count = len(splits) + 1
    figure, axes = plt.subplots(1, count, figsize=(5 * count, 4.6), squeeze=False)
    palette = plt.get_cmap("tab10")
    nodes = sorted({node for v in splits for node in v.shares.colour_by.values()})
    for axis, verdict in zip(axes[0], splits, strict=False):
        shares = verdict.shares
        groups = sorted(shares.expected, key=lambda group: (shares.colour_by.get(group, ""), group))
        colours = [
            palette(nodes.index(shares.colour_by[group]) % 10)
            if group in shares.colour_by
            else "grey"
            for group in groups
        ]
        places = range(len(groups))
        axis.bar(places, [shares.share(group) for group in groups], color=colours)
        for place, group in zip(places, groups, strict=True):
            low, high = shares.band[group]
            axis.add_patch(
                matplotlib.patches.Rectangle(
                    (place - 0.45, low), 0.9, high - low, color="black", alpha=0.12, lw=0
                )
            )
            axis.hlines(shares.expected[group], place - 0.45, place + 0.45, colors="black",
                        linestyles="--", linewidth=1)  # fmt: skip
        axis.set_xticks(
            places,
            [f"{group.rsplit('-', 1)[-1]}\n{shares.colour_by.get(group, '')}" for group in groups],
            fontsize=7,
            # Node names side by side run into each other past three groups.
            rotation=30 if len(groups) > 3 else 0,
            ha="right" if len(groups) > 3 else "center",
        )
        axis.set_ylabel("share (dashed: expected; grey: its band)")
        axis.set_title(
            "\n".join(textwrap.wrap(verdict.check, 48)) + f"\n{verdict.outcome.split(',')[0]}: "
            f"{shares.total} draws" + (f"; {verdict.rates.text()}" if verdict.rates else ""),
            fontsize=8,
            color="black" if verdict.passed else "tab:red",
            wrap=True,
        )
    panel = axes[0][-1]
    panel.axis("off")
    panel.text(0, 1, _listing(verdicts), va="top", fontsize=7, family="monospace")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _listing(verdicts: list[Verdict]) -> str:
    lines = []
    for verdict in verdicts:
        lines += textwrap.wrap(f"{verdict.outcome.split(',')[0]}  {verdict.check}", 60)
        if verdict.rates and verdict.rates.text():
            lines += textwrap.wrap(verdict.rates.text(), 58, initial_indent="  ",
                                   subsequent_indent="  ")  # fmt: skip
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
