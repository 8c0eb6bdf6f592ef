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
    nodes: dict[str, str] = field(default_factory=dict)  # pod -> the node it ran on
    figures: dict[str, object] = field(default_factory=dict)

    def add_distribution(
        self, label: str, verdict: BalanceVerdict, nodes: dict[str, str] | None = None
    ) -> None:
        self.distributions[label] = verdict
        self.nodes.update(nodes or {})

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
        """One panel per verdict: each pod's share, grouped and coloured by node, against the
        band an even split stays in (each pod at alpha / pods, two-sided); and a last panel
        with kube-proxy's mode and session affinity, when the run checked them."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
        from scipy import stats

        side = {
            k: self.figures[k] for k in ("kube_proxy_mode", "session_affinity") if k in self.figures
        }
        count = len(self.distributions) + bool(side)
        figure, axes = plt.subplots(1, count, figsize=(5 * count, 4.2), squeeze=False)
        palette = plt.get_cmap("tab10")
        node_names = sorted(set(self.nodes.values()))
        for axis, (label, verdict) in zip(axes[0], self.distributions.items(), strict=False):
            pods = sorted(verdict.expected_pods, key=lambda pod: (self.nodes.get(pod, ""), pod))
            shares = [verdict.shares[pod] for pod in pods]
            colours = [
                palette(node_names.index(self.nodes[pod]) % 10) if pod in self.nodes else "grey"
                for pod in pods
            ]
            axis.bar(range(len(pods)), shares, color=colours)
            even = 1 / len(pods)
            z = stats.norm.isf(verdict.alpha / len(pods) / 2)
            half = z * (even * (1 - even) / max(verdict.total, 1)) ** 0.5
            axis.axhspan(even - half, even + half, color="black", alpha=0.12, label="even split")
            axis.axhline(even, color="black", linestyle="--", linewidth=1)
            axis.set_xticks(
                range(len(pods)),
                [f"{pod.rsplit('-', 1)[-1]}\n{self.nodes.get(pod, '')}" for pod in pods],
                fontsize=7,
                # Node names side by side run into each other past three pods.
                rotation=30 if len(pods) > 3 else 0,
                ha="right" if len(pods) > 3 else "center",
            )
            axis.set_ylabel("share of requests")
            outcome = "balanced" if verdict.balanced else "UNBALANCED"
            axis.set_title(
                f"{label}\n{outcome}: {verdict.total} requests, p = {verdict.p_value:.3g}",
                fontsize=9,
                color="black" if verdict.balanced else "tab:red",
            )
            axis.legend(fontsize=8)
        if side:
            panel = axes[0][-1]
            panel.axis("off")
            panel.text(0, 1, _side_text(side), va="top", fontsize=8, family="monospace", wrap=True)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


def _side_text(side: dict) -> str:
    lines = []
    mode = side.get("kube_proxy_mode")
    if mode:
        lines += [
            "kube-proxy mode",
            f"  asked:      {mode.get('asked')}",
            f"  configured: {mode.get('configured')}",
            f"  observed:   {mode.get('observed')}",
            f"  ({mode.get('repeats')} repeats in {mode.get('connections')} connections)",
        ]
    affinity = side.get("session_affinity")
    if affinity:
        held = affinity.get("while_held", {})
        lines += [
            "",
            "ClientIP session affinity",
            f"  while held: {sum(held.values())} requests, {len(held)} pod(s)",
            f"  after expiries: {len(set(affinity.get('after_expiry', [])))} distinct pods",
        ]
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
