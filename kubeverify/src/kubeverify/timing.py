"""Phase timing: progress lines while a phase runs, and the table printed at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class PhaseTimer:
    say: Callable[[str], None] = print
    prefix: str = "[e2e]"
    phases: list[tuple[str, float]] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.say(f"{self.prefix} {message}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.note(f"{name} ...")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            elapsed = time.monotonic() - start
            self.phases.append((f"{name} (failed)", elapsed))
            self.note(f"{name} failed after {elapsed:.1f} s")
            raise
        elapsed = time.monotonic() - start
        self.phases.append((name, elapsed))
        self.note(f"{name} done in {elapsed:.1f} s")

    def record(self, name: str, seconds: float) -> None:
        self.phases.append((name, seconds))

    def total(self) -> float:
        return sum(seconds for _, seconds in self.phases)


def format_table(rows: list[tuple[str, float]], title: str = "phase") -> str:
    """A plain two-column table with a total, readable in a CI log."""
    if not rows:
        return ""
    width = max(len(title), len("total"), *(len(name) for name, _ in rows))
    lines = [f"{title:<{width}}  {'seconds':>8}", f"{'-' * width}  {'-' * 8}"]
    lines += [f"{name:<{width}}  {seconds:>8.1f}" for name, seconds in rows]
    lines.append(f"{'-' * width}  {'-' * 8}")
    lines.append(f"{'total':<{width}}  {sum(s for _, s in rows):>8.1f}")
    return "\n".join(lines)
