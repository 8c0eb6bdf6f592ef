"""Phase runner: cache keys, stamps, timing and the summary table.

A phase's cache directory is ``<cache>/<phase>/<short key>``; it is built in
a sibling temp dir and renamed into place, and its stamp is written last, so
an interrupted run never leaves something that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fsutil
from .proc import PhaseError, Runner, say

STAMP = "stamp.json"
SHORT = 12
KEY_DIR = re.compile(rf"^[0-9a-f]{{{SHORT}}}$")
TMP_DIR = re.compile(r"^\.tmp-")


def cache_key(phase: str, recipe: int, inputs: dict[str, Any]) -> str:
    blob = json.dumps(
        {"phase": phase, "recipe": recipe, "inputs": inputs}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def short(key: str) -> str:
    return key[:SHORT]


def stale_entries(names: list[str], keep: str) -> list[str]:
    """Entries of a phase dir to delete: older key dirs and leftover temp dirs."""
    return sorted(n for n in names if n != keep and (KEY_DIR.match(n) or TMP_DIR.match(n)))


def read_stamp(path: Path, key: str) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    return data.get("outputs") or {}


@dataclass
class Result:
    phase: str
    status: str  # "built" | "cached"
    seconds: float
    key: str
    # CPU time of the phase's commands: with wall time, it shows whether a slow
    # phase was busy or starved by other work on the machine.
    cpu: float = 0.0


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)} m {secs:04.1f} s"


def format_table(results: list[Result]) -> str:
    rows = [("phase", "result", "time", "cpu", "key")]
    for r in results:
        rows.append(
            (r.phase, r.status, format_seconds(r.seconds), format_seconds(r.cpu), short(r.key))
        )
    rows.append(
        (
            "total",
            "",
            format_seconds(sum(r.seconds for r in results)),
            format_seconds(sum(r.cpu for r in results)),
            "",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].rjust(widths[3]),
            row[4],
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Phase:
    """One provisioning step. Subclasses fill in the hooks below."""

    name = ""
    what = ""
    # Bump when the recipe changes in a way the inputs cannot see.
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        """Produce artifacts in work; return outputs naming them under final."""
        raise NotImplementedError

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        """Are cached outputs still usable? Must be cheap."""
        return True

    def activate(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> str | None:
        """Runs every time, cached or not (start a daemon, load an image)."""
        return None


class Context:
    def __init__(self, cache: Path, force: set[str] | None = None):
        self.cache = cache
        self.force = force or set()
        self.keys: dict[str, str] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        path = os.environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
        self.env = dict(
            os.environ,
            PATH=path,
            LC_ALL="C.UTF-8",
            DEBIAN_FRONTEND="noninteractive",
            DOCKER_HOST="unix:///var/run/docker.sock",
        )

    def runner(self, phase: str) -> Runner:
        return Runner(phase, self.cache / "logs" / f"{phase}.log", self.env)

    def phase_dir(self, phase: str) -> Path:
        return self.cache / phase


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_phase(ctx: Context, phase: Phase) -> Result:
    started = time.monotonic()
    cpu_started = children_cpu()
    say(phase.name, phase.what)
    run = ctx.runner(phase.name)
    inputs = phase.inputs(ctx, run)
    key = cache_key(phase.name, phase.recipe, inputs)
    ctx.keys[phase.name] = key
    ctx.inputs[phase.name] = inputs
    pdir = ctx.phase_dir(phase.name)
    final = pdir / short(key)
    outputs = read_stamp(final / STAMP, key)
    cached = outputs is not None and phase.name not in ctx.force and phase.verify(ctx, run, outputs)
    if not cached:
        pdir.mkdir(parents=True, exist_ok=True)
        work = pdir / f".tmp-{short(key)}-{os.getpid()}"
        for name in os.listdir(pdir):
            if TMP_DIR.match(name):  # left by an interrupted run
                fsutil.safe_rmtree(pdir / name)
        work.mkdir()
        try:
            outputs = phase.build(ctx, run, work, final)
            # Swap by renames: a forced rebuild must not leave a window in which
            # tools that others are using (kind, kubectl) are gone.
            old = pdir / f".tmp-old-{short(key)}-{os.getpid()}"
            if final.exists():
                os.rename(final, old)
            os.rename(work, final)
            fsutil.safe_rmtree(old)
            stamp = {
                "key": key,
                "inputs": inputs,
                "outputs": outputs,
                "seconds": round(time.monotonic() - started, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            fsutil.atomic_write_text(final / STAMP, json.dumps(stamp, indent=2) + "\n")
        finally:
            fsutil.safe_rmtree(work)
        # Old keys are dead weight (a node image tarball is ~1 GB).
        for name in stale_entries(os.listdir(pdir), keep=short(key)):
            fsutil.safe_rmtree(pdir / name)
    ctx.outputs[phase.name] = outputs
    note = phase.activate(ctx, run, outputs)
    seconds = time.monotonic() - started
    status = "cached" if cached else "built"
    if cached:
        say(phase.name, f"cached (key {short(key)})" + (f"; {note}" if note else ""))
    else:
        say(phase.name, f"done in {seconds:.1f} s" + (f"; {note}" if note else ""))
    return Result(phase.name, status, seconds, key, children_cpu() - cpu_started)


def phase_status(ctx: Context, phase: Phase) -> str:
    run = ctx.runner(phase.name)
    try:
        inputs = phase.inputs(ctx, run)
    except PhaseError as exc:
        return f"{phase.name}: unknown ({str(exc).splitlines()[0]})"
    key = cache_key(phase.name, phase.recipe, inputs)
    ctx.keys[phase.name] = key
    ctx.inputs[phase.name] = inputs
    final = ctx.phase_dir(phase.name) / short(key)
    outputs = read_stamp(final / STAMP, key)
    if outputs is None:
        return f"{phase.name}: not built (key {short(key)})"
    ctx.outputs[phase.name] = outputs
    if not phase.verify(ctx, run, outputs):
        return f"{phase.name}: stale (key {short(key)}; cached outputs failed verification)"
    return f"{phase.name}: cached (key {short(key)}) in {final}"
