"""The memory a Locust process used, for its report: its peak, beside the limit it runs under.

An in-cluster master is killed (OOMKilled) when its container outgrows its memory limit; its
report says how close the run came. The peak is the process's resident high-water mark: on
Linux its VmHWM (/proc/self/status), since `ru_maxrss` keeps, across exec, the resident size of
the parent it was forked from (a Locust started by a large pytest reports pytest's); elsewhere
`ru_maxrss`. It counts the pages of the files the process maps (its shared libraries: numpy's
and scipy's, some 44 MiB), which the kernel drops under the limit rather than kill: the report
names them (RssFile), and a master at 194 MiB, 44 MiB of them files, lived under a 160Mi limit.
The limit is its cgroup's (v2 `memory.max`, else v1 `memory.limit_in_bytes`), none when
unlimited or unreadable (not Linux).
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
    file_bytes: int | None = None  # of the resident pages, those of mapped files, at the end

    def text(self) -> str:
        peak = f"{self.role} peak memory {self.peak_bytes / MIB:.0f} MiB"
        if self.file_bytes is not None:
            peak += f" ({self.file_bytes / MIB:.0f} MiB of it mapped files)"
        if self.limit_bytes is None:
            return f"{peak}; no memory limit"
        share = self.peak_bytes / self.limit_bytes
        return f"{peak}, {share:.0%} of its {self.limit_bytes / MIB:.0f} MiB limit"

    def to_json(self) -> dict:
        return {
            "role": self.role,
            "peak_mib": round(self.peak_bytes / MIB, 1),
            "file_mib": None if self.file_bytes is None else round(self.file_bytes / MIB, 1),
            "limit_mib": None if self.limit_bytes is None else round(self.limit_bytes / MIB, 1),
            "summary": self.text(),
        }


def _status_kib(status: Path, field: str) -> int | None:
    try:
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def file_bytes(status: Path = Path("/proc/self/status")) -> int | None:
    """This process's resident pages of mapped files now (RssFile); None where unknown."""
    kib = _status_kib(status, "RssFile")
    return None if kib is None else kib * 1024


def peak_bytes(status: Path = Path("/proc/self/status")) -> int:
    """This process's resident high-water mark so far."""
    kib = _status_kib(status, "VmHWM")
    if kib is not None:
        return kib * 1024
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
    return PeakMemory(peak_bytes(), limit_bytes(), role, file_bytes())
