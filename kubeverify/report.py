"""The run's record in reports/: a JSON summary and a per-pod request-share chart."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and scipy only where verdicts are made
    from kubeverify.balance import BalanceVerdict


@dataclass
class RunReport:
    toolchain: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    distributions: dict[str, BalanceVerdict] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)

    def add_distribution(self, label: str, verdict: BalanceVerdict) -> None:
        self.distributions[label] = verdict

    def write(
        self,
        phases: list[tuple[str, float]],
        suites: dict[str, float],
        checks: dict[str, str],
        directory: Path,
    ) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        summary = directory / "e2e-summary.json"
        summary.write_text(
            json.dumps(
                {
                    "result": overall(checks),
                    "checks": checks,
                    "toolchain": self.toolchain,
                    "versions": self.versions,
                    "phases_seconds": dict(phases),
                    "suites": suite_outcomes(suites, checks),
                    "distributions": {
                        label: _verdict_json(v) for label, v in self.distributions.items()
                    },
                    "figures": self.figures,
                },
                indent=2,
            )
            + "\n"
        )
        written = [summary]
        if self.distributions:
            written.append(self._chart(directory / "e2e-pod-shares.png"))
        return written

    def _chart(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        count = len(self.distributions)
        figure, axes = plt.subplots(1, count, figsize=(5 * count, 4), squeeze=False)
        for axis, (label, verdict) in zip(axes[0], self.distributions.items(), strict=True):
            pods = list(verdict.expected_pods)
            shares = [verdict.shares[pod] for pod in pods]
            axis.bar(range(len(pods)), shares, color="tab:blue" if verdict.balanced else "tab:red")
            axis.axhline(1 / len(pods), color="black", linestyle="--", linewidth=1, label="uniform")
            axis.set_xticks(range(len(pods)), [pod.rsplit("-", 1)[-1] for pod in pods])
            axis.set_ylabel("share of requests")
            axis.set_title(
                f"{label}\n{verdict.total} requests, p = {verdict.p_value:.3g}", fontsize=9
            )
            axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


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


def _verdict_json(verdict: BalanceVerdict) -> dict:
    return {
        "balanced": verdict.balanced,
        "counts": verdict.counts,
        "expected_pods": list(verdict.expected_pods),
        "chi_square": verdict.statistic,
        "p_value": verdict.p_value,
        "alpha": verdict.alpha,
        "max_min_ratio": ratio if math.isfinite(ratio := verdict.max_min_ratio) else None,
        "missing": list(verdict.missing),
        "unexpected": list(verdict.unexpected),
    }
