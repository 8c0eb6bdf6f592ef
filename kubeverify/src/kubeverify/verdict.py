"""The one verdict type: what was judged, whether it passed, the error rates it claims, and the
figures it rests on. Every check that decides something returns one: the balance tests (fixed
and sequential, fresh connections or keep-alive connections), kube-proxy's mode, session
affinity, every zero-failure bound, and Locust's checks. The terminal lines, the JSON summary,
JUnit's `<properties>` and the chart all render this type, so a new verdict needs no new code
in any of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorRates:
    """What a verdict claims of itself. `false_alarm`: the chance it fails a sound service;
    `power`: the chance it fails a service with `effect`. Either may be None where the check
    states no such figure (a plain threshold on what was measured states neither). `aim`: the
    power the check draws for, where what it reached may fall short (a budget ran out)."""

    false_alarm: float | None
    power: float | None
    effect: str = ""
    aim: float | None = None

    @property
    def short(self) -> bool:
        """The power reached falls short of the power aimed at."""
        return self.aim is not None and self.power is not None and self.power < self.aim

    def text(self) -> str:
        parts = []
        if self.false_alarm is not None:
            parts.append(f"false alarms {_rate(self.false_alarm)}")
        if self.power is not None:
            if self.short:  # rounded down: 0.9899 must not read as the 0.99 it falls short of
                reached = math.floor(self.power * 1000) / 1000
                power = f"{reached:g}, below the {_rate(self.aim)} aimed at,"
            else:
                power = _rate(self.power)
            parts.append(f"power {power} against {self.effect}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "false_alarm": self.false_alarm,
            "power": self.power,
            "effect": self.effect,
            "aim": self.aim,
        }


def _rate(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}" if value >= 1e-3 or value == 1 else f"{value:.1e}"


@dataclass(frozen=True)
class Shares:
    """A split to draw: what each group (a pod, or a group of pods) received, the share it was
    expected to get, and the band its share stays in, with the verdict's false-alarm rate, when
    the expectation holds. `colour_by` names each group's node, for colouring."""

    counts: Mapping[str, int]
    expected: Mapping[str, float]
    band: Mapping[str, tuple[float, float]]
    colour_by: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.get(group, 0) for group in self.expected)

    def share(self, group: str) -> float:
        return self.counts.get(group, 0) / (self.total or 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "expected": dict(self.expected),
            "band": {group: list(limits) for group, limits in self.band.items()},
            "nodes": dict(self.colour_by),
        }


@dataclass(frozen=True)
class Verdict:
    """One judgement. `check` names what was judged; `summary` says in one line what was seen;
    `details` add lines (the pods that got nothing, say); `figures` are the numbers it rests on,
    as JSON; `control`: a negative control, which must fail for the check to mean anything;
    `advisory`: a finding the run reports and does not fail on (the target did not ask it to)."""

    check: str
    passed: bool
    summary: str
    rates: ErrorRates | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    shares: Shares | None = None
    control: bool = False
    advisory: bool = False

    @property
    def underpowered(self) -> bool:
        """It reached less power than it aimed at: a pass says less than a pass at full power."""
        return bool(self.rates and self.rates.short)

    @property
    def outcome(self) -> str:
        if self.advisory and not self.passed and not self.control:
            return "FINDING, reported and not failed on: the target does not enforce it"
        if not self.control:
            if self.passed and self.underpowered:
                return "PASSED AT LOW POWER, short of the power it aims at"
            return "PASSED" if self.passed else "FAILED"
        if self.passed:
            return "PASSED, but it is a negative control, which must fail: the check is blind"
        return "FAILED, as its negative control must"

    @property
    def as_it_must(self) -> bool:
        """Whether the run is content with it: passed, a negative control that failed, or a
        finding the target does not enforce."""
        return self.passed != self.control or (self.advisory and not self.control)

    def line(self) -> str:
        """One line: check, outcome, what was seen, the error rates claimed."""
        rates = f" [{self.rates.text()}]" if self.rates and self.rates.text() else ""
        return f"{self.check}: {self.outcome}: {self.summary}{rates}"

    def explain(self) -> str:
        return "\n".join([self.line(), *(f"  {detail}" for detail in self.details)])

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "control": self.control,
            "advisory": self.advisory,
            "underpowered": self.underpowered,
            "summary": self.summary,
            "details": list(self.details),
            "rates": self.rates.to_json() if self.rates else None,
            "figures": _finite(dict(self.figures)),
            "shares": self.shares.to_json() if self.shares else None,
        }


def from_json(data: Mapping[str, Any]) -> Verdict:
    """A verdict as `Verdict.to_json` wrote it (by another process: Locust's, say)."""
    rates, shares = data.get("rates"), data.get("shares")
    return Verdict(
        check=data["check"],
        passed=data["passed"],
        summary=data["summary"],
        rates=ErrorRates(**rates) if rates else None,
        figures=data.get("figures") or {},
        details=tuple(data.get("details") or ()),
        shares=Shares(
            counts=shares["counts"],
            expected=shares["expected"],
            band={group: tuple(limits) for group, limits in shares["band"].items()},
            colour_by=shares.get("nodes") or {},
        )
        if shares
        else None,
        control=data.get("control", False),
        advisory=data.get("advisory", False),
    )


def _finite(value: Any) -> Any:
    """JSON has no infinity: an infinite ratio (a pod that got nothing) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def no_failures(
    change: str,
    requests: int,
    failures: int,
    *,
    minimum: int,
    seconds: float | None = None,
    **figures,
) -> Verdict:
    """The zero-failure bound of a change made under traffic: 0 failures of n requests put the
    failure rate below 3/n with 95% confidence (the rule of three), so a service failing 3/n of
    its requests or more passes at most 5% of the time; one that fails none never fails this.
    Fewer than `minimum` requests spanning the change bound too little, and fail the verdict."""
    bound = 3 / requests if requests else 1.0
    rates = ErrorRates(0.0, 0.95, f"a failure rate of {bound:.2%} or more")
    numbers = {"requests": requests, "failed": failures, "bound_95": bound, "seconds": seconds}
    during = "during it" if seconds is None else f"during its {seconds:.1f} s"
    check = f"no request fails: {change}"
    if failures:  # a failed request is evidence however few spanned the change
        summary = f"{failures} of {requests} requests {during} failed"
    elif requests < minimum:
        summary = (
            f"only {requests} requests spanned it, fewer than {minimum}: 0 failures of so few "
            "bound nothing"
        )
    else:
        summary = (
            f"0 of {requests} requests {during} failed: the failure rate is below {bound:.2%} "
            "with 95% confidence"
        )
    passed = requests >= minimum and not failures
    return Verdict(check, passed, summary, rates, {**numbers, **figures})
