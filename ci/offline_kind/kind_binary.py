"""Phase: kind from its Go module (`go install sigs.k8s.io/kind@v0.33.0`, as kind's docs say)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import gomod
from .phases import Context, Phase
from .proc import PhaseError, Runner

MODULE = "sigs.k8s.io/kind"
VERSION = "v0.33.0"


class KindPhase(Phase):
    name = "kind"
    what = f"kind {VERSION} from its Go module"
    recipe = 2

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        return {"kind": VERSION, "go": gomod.check_go(run, gomod.go_env(ctx))}

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return os.access(outputs.get("kind", ""), os.X_OK)

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        env = {**gomod.go_env(ctx), "GOBIN": str(work / "bin"), "CGO_ENABLED": "0"}
        run.run(["go", "install", "-trimpath", f"{MODULE}@{VERSION}"], env=env, timeout=1800)
        version = run.out([work / "bin/kind", "version"])
        if VERSION not in version:
            raise PhaseError(self.name, f"expected kind {VERSION}, got: {version.strip()}")
        return {"kind": str(final / "bin/kind"), "version": version.strip()}
