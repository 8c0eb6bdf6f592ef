"""The memory a Locust process used, for its report: its peak, beside the limit it runs under.

An in-cluster master is killed (OOMKilled) when its container outgrows its memory limit; its
report says how close the run came. The peak is the process's resident high-water mark: on
Linux its VmHWM (/proc/self/status), since `ru_maxrss` keeps, across exec, the resident size of
the parent it was forked from (a Locust started by a large pytest reports pytest's); elsewhere
`ru_maxrss`. The limit is its cgroup's (v2 `memory.max`, else v1 `memory.limit_in_bytes`), none
when unlimited or unreadable (not Linux).
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
# cgroup v1 writes "unlimited" as the largest page-aligned 63-bit number.
UNLIMITED = 1 << 60


@dataclass(frozen=True)
class PeakMemory:
    """What `role` (the master, Locust) held at most, and its limit (None: none)."""

    peak_bytes: int
    limit_bytes: int | None = None
    role: str = "Locust"

    def text(self) -> str:
        peak = f"{self.role} peak memory {self.peak_bytes / MIB:.0f} MiB"
        if self.limit_bytes is None:
            return f"{peak}; no memory limit"
        share = self.peak_bytes / self.limit_bytes
        return f"{peak}, {share:.0%} of its {self.limit_bytes / MIB:.0f} MiB limit"

    def to_json(self) -> dict:
        return {
            "role": self.role,
            "peak_mib": round(self.peak_bytes / MIB, 1),
            "limit_mib": None if self.limit_bytes is None else round(self.limit_bytes / MIB, 1),
            "summary": self.text(),
        }


def peak_bytes(status: Path = Path("/proc/self/status")) -> int:
    """This process's resident high-water mark so far."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # in kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes there, KiB on Linux


def limit_bytes(
    proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The memory limit of this process's cgroup; None when unlimited or not found."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2: one hierarchy
            candidates += [root / relative / "memory.max", root / "memory.max"]
        elif "memory" in controllers.split(","):
            v1 = root / "memory"
            candidates += [v1 / relative / "memory.limit_in_bytes", v1 / "memory.limit_in_bytes"]
    for candidate in candidates:
        try:
            value = candidate.read_text().strip()
        except OSError:
            continue
        if value == "max":
            return None
        try:
            limit = int(value)
        except ValueError:
            continue
        return None if limit >= UNLIMITED else limit
    return None


def peak_memory(role: str = "Locust") -> PeakMemory:
    return PeakMemory(peak_bytes(), limit_bytes(), role)
