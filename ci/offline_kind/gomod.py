"""Programs built from Go modules served by the module proxy, with Go caches of the toolchain's.

Kubernetes and etcd replace their sibling modules with paths inside their own repositories
(`./staging/src/k8s.io/api`, `../api`), which a module zip does not hold, so `go install` refuses
them. A wrapper module that requires the program's module and replaces each sibling with its
published release builds them (the pattern Rancher's builds use). The module cache and the build
cache live under the toolchain's cache dir: a warm run reads nothing from the network, and a
rebuild after a recipe change compiles only what changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .phases import Context
from .proc import PhaseError, Runner

# The oldest Go that builds every module pinned here: containerd v2.3.4's go.mod says
# `go 1.26.3` (Kubernetes 1.37's says 1.26.0), and GOTOOLCHAIN=local fetches no newer one.
MIN_GO = (1, 26, 3)
GO_INSTALL = "https://go.dev/doc/install"


def parse_go_version(text: str) -> tuple[int, int, int] | None:
    """`go1.26.8` (`go env GOVERSION`) -> (1, 26, 8), `go1.27rc1` -> (1, 27, 0); None for
    anything else."""
    m = re.match(r"^go(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def go_env(ctx: Context) -> dict[str, str]:
    """What every go command here runs with: the toolchain's own caches, the machine's Go only
    (GOTOOLCHAIN=local: a module asking for a newer Go fails plainly instead of fetching one),
    no VCS stamping (module zips carry no .git)."""
    root = ctx.cache / "go"
    return {
        "GOPATH": str(root / "path"),
        "GOMODCACHE": str(root / "mod"),
        "GOCACHE": str(root / "build"),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-buildvcs=false",
        "GOWORK": "off",
    }


def check_go(run: Runner, env: Mapping[str, str]) -> str:
    """The machine's Go version (`go1.26.8`), or a PhaseError that says how to get one."""
    minimum = ".".join(map(str, MIN_GO))
    try:
        said = run.out(["go", "env", "GOVERSION"], env=env).strip()
    except PhaseError as error:
        if str(error).startswith(f"phase '{run.phase}' failed: command not found"):
            raise PhaseError(
                run.phase, f"no `go` on PATH: install Go {minimum} or newer ({GO_INSTALL})"
            ) from None
        raise
    version = parse_go_version(said)
    if version is None or version < MIN_GO:
        raise PhaseError(
            run.phase, f"`go` is {said or 'of unknown version'}; Go {minimum} or newer is needed"
        )
    return said


def module_dir(run: Runner, env: Mapping[str, str], module: str, version: str) -> Path:
    """The module's unpacked source in the module cache, downloaded from the proxy if missing."""
    said = json.loads(run.out(["go", "mod", "download", "-json", f"{module}@{version}"], env=env))
    if said.get("Error") or not said.get("Dir"):
        raise PhaseError(run.phase, f"{module}@{version}: {said.get('Error', 'no source')}")
    return Path(said["Dir"])


def sibling_replaces(go_mod: str) -> list[str]:
    """The modules a go.mod replaces with a local path (`=> ./staging/...`, `=> ../api`): the
    ones a wrapper must replace with their published releases."""
    found = []
    for line in go_mod.splitlines():
        m = re.match(r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\.\.?/\S*)\s*$", line)
        if m:
            found.append(m.group(1))
    return found


def directive(go_mod: str, name: str) -> str | None:
    """A one-line directive's value (`go`, `godebug`, `toolchain`) of a go.mod, if present."""
    m = re.search(rf"^{name}\s+(.+?)\s*$", go_mod, re.M)
    return m.group(1) if m else None


def wrapper_go_mod(
    module: str, go_mod: str, requires: Mapping[str, str], replaces: Mapping[str, str]
) -> str:
    """A wrapper module's go.mod: the wrapped program's `go` and `godebug` lines (its defaults
    are part of how it behaves), its requirements, and each sibling at its published version."""
    lines = [f"module {module}", "", f"go {directive(go_mod, 'go') or '.'.join(map(str, MIN_GO))}"]
    godebug = directive(go_mod, "godebug")
    if godebug:
        lines += ["", f"godebug {godebug}"]
    lines += ["", "require ("]
    lines += [f"\t{path} {version}" for path, version in sorted(requires.items())]
    lines += [")"]
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{path} => {path} {version}" for path, version in sorted(replaces.items())]
        lines += [")"]
    return "\n".join(lines) + "\n"


def tools_go(packages: Iterable[str]) -> str:
    """A file that imports the packages to build, so that `go mod tidy` keeps what they need."""
    imports = "\n".join(f'\t_ "{package}"' for package in sorted(packages))
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def build(
    run: Runner,
    env: Mapping[str, str],
    packages: Iterable[str],
    out: Path,
    *,
    cwd: Path | None = None,
    cgo: bool = False,
    tags: Iterable[str] = (),
    ldflags: str = "-s -w",
    timeout: float = 3600,
) -> None:
    """`go build` the packages into the directory `out` (each binary named after its package).
    -trimpath: the binaries name no path of this machine."""
    out.mkdir(parents=True, exist_ok=True)
    command = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/"]
    if tags:
        command += ["-tags", ",".join(tags)]
    run.run(
        [*command, *packages],
        cwd=cwd,
        env={**env, "CGO_ENABLED": "1" if cgo else "0"},
        timeout=timeout,
    )


def wrapper(
    run: Runner,
    env: Mapping[str, str],
    directory: Path,
    wrapped: str,
    version: str,
    packages: Iterable[str],
    sibling_version: str,
) -> Path:
    """A wrapper module in `directory` for `wrapped`@`version`, its local siblings at
    `sibling_version`, tidied so that it builds `packages`."""
    source = module_dir(run, env, wrapped, version)
    go_mod = (source / "go.mod").read_text()
    siblings = {path: sibling_version for path in sibling_replaces(go_mod)}
    directory.mkdir(parents=True, exist_ok=True)
    name = "kubeverify.offline/" + wrapped.replace("/", "-")
    (directory / "go.mod").write_text(wrapper_go_mod(name, go_mod, {wrapped: version}, siblings))
    (directory / "tools.go").write_text(tools_go(packages))
    run.run(["go", "mod", "tidy"], cwd=directory, env=env, timeout=1800)
    return source
