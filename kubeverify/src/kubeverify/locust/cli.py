"""The one way the plugin starts Locust headless: command line, bounded run, its figures."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kubeverify.processes import stop

# Locust stops itself at --run-time; past it by this much, it is hung and gets killed.
OVERRUN_S = 60


def headless_command(
    locustfile: Path,
    host: str,
    *,
    users: int,
    seconds: int,
    spawn_rate: float | None = None,
    csv_prefix: Path | None = None,
    html: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--host", host, "--headless",
        "--users", str(users), "--spawn-rate", f"{spawn_rate or users:g}",
        "--run-time", f"{seconds}s", "--only-summary",
        # Users finish the request in flight at the end instead of being cut off mid-answer.
        "--stop-timeout", "5",
    ]  # fmt: skip
    if csv_prefix:
        command += ["--csv", str(csv_prefix)]
    if html:
        command += ["--html", str(html)]
    return [*command, *extra]


@contextmanager
def started(
    command: Sequence[str], log: Path, *, preexec_fn: Callable[[], None] | None = None
) -> Iterator[subprocess.Popen]:
    """Locust in the background, its output in `log`; it never outlives the block."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
        )
    try:
        yield process
    finally:
        stop(process, grace=10)


def run(
    command: Sequence[str],
    seconds: int,
    *,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run Locust to its end; an interrupt or a hang kills it (subprocess.run does), so no
    Locust outlives the caller. Uncaptured, its output goes to this process's terminal."""
    return subprocess.run(
        command,
        capture_output=capture,
        text=True,
        timeout=seconds + OVERRUN_S,
        check=False,
    )


def aggregated(csv_prefix: Path) -> dict[str, str]:
    """The Aggregated row of Locust's `<prefix>_stats.csv`."""
    with Path(f"{csv_prefix}_stats.csv").open(newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
