"""Phase 4: kind 0.27.0 from trixie's binary package (it needs only libc)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import apt
from .phases import Context, Phase
from .proc import PhaseError, Runner

PACKAGE = "kind"
SUITE = "trixie"
EXPECTED = "0.27.0"


class KindPhase(Phase):
    name = "kind"
    what = f"kind {EXPECTED} from {SUITE}'s binary package"
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        return {"kind": apt.versions(run, [PACKAGE], SUITE)[PACKAGE]}

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return os.access(outputs.get("kind", ""), os.X_OK)

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        (deb,) = apt.download(run, {PACKAGE: ctx.inputs[self.name]["kind"]}, work / "debs")
        run.run(["dpkg-deb", "-x", deb, work / "pkg"])
        (work / "bin").mkdir()
        shutil.copy2(work / "pkg/usr/bin/kind", work / "bin/kind")
        shutil.rmtree(work / "pkg")
        shutil.rmtree(work / "debs")
        version = run.out([work / "bin/kind", "version"])
        if EXPECTED not in version:
            raise PhaseError(self.name, f"expected kind {EXPECTED}, got: {version.strip()}")
        return {"kind": str(final / "bin/kind"), "version": version.strip()}
