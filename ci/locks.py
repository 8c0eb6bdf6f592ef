"""The lock files the images install from, and how `nox -s lock` writes them.

Each lock pins, with the hash of every file PyPI has for each pinned release, the closure of
the pyproject.toml requirement lists one image (or build stage) installs. pyproject.toml keeps
its lower bounds for `pip install .`; an image installs only its lock, so it builds the same
until the lock changes. `python -m ci.locks [uv options]` (what `nox -s lock` runs) rewrites
them with `uv pip compile`, keeping every pin that still satisfies pyproject.toml; pass
`--upgrade` for the newest releases.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# The oldest interpreter an image runs (the offline stand-in base is Debian bookworm's 3.11; the
# online base is python:3.12-slim). A universal resolution from it holds for every later Python
# and every platform, so the locks install on x86_64 and aarch64 alike.
PYTHON = "3.11"
REGENERATE = "nox -s lock"


@dataclass(frozen=True)
class Lock:
    path: str  # relative to the repository root
    extras: tuple[str, ...]
    dependencies: bool = False  # the project's own [project] dependencies too
    # pyproject's [build-system] requires, so that the project itself installs from the lock
    # (pip --no-build-isolation) instead of fetching an unlocked build backend.
    build_system: bool = False
    # A lock installed before this one into the same environment: its pins bind this one.
    installed_over: str | None = None


LOCKS = (
    Lock("requirements/serve.txt", ("serve",)),
    Lock("requirements/train.txt", ("train",), installed_over="requirements/serve.txt"),
    # The Locust image installs both projects from source (kubeverify from ./kubeverify).
    Lock("requirements/locust.txt", ("loadtest",), dependencies=True, build_system=True),
)


def by_path(path: str) -> Lock:
    return next(lock for lock in LOCKS if lock.path == path)


def pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def local_projects(project_file: dict) -> dict[str, Path]:
    """The projects pyproject.toml takes by path ([tool.uv.sources]), by name: not on an index,
    so a lock pins what they require instead of them."""
    sources = project_file.get("tool", {}).get("uv", {}).get("sources", {})
    return {name: ROOT / source["path"] for name, source in sources.items() if "path" in source}


def requirements(lock: Lock, project_file: dict) -> list[str]:
    """The requirement strings of pyproject.toml that `lock` pins: a project taken by path
    stands for its own requirements (those of the extras asked of it too) and, with
    `build_system`, its build backend's."""
    project = project_file["project"]
    wanted = list(project["dependencies"]) if lock.dependencies else []
    for extra in lock.extras:
        wanted += project["optional-dependencies"][extra]
    if lock.build_system:
        wanted += project_file["build-system"]["requires"]
    local = local_projects(project_file)
    found: list[str] = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.name not in local:
            found.append(text)
            continue
        other = pyproject(local[requirement.name])
        found += other["project"]["dependencies"]
        for extra in sorted(requirement.extras):
            found += other["project"]["optional-dependencies"][extra]
        if lock.build_system:
            found += other["build-system"]["requires"]
    return list(dict.fromkeys(found))  # each once, in order


def compile_command(lock: Lock, uv_options: list[str]) -> list[str]:
    command = [
        "uv", "pip", "compile", "-", "--output-file", lock.path,
        "--universal", "--python-version", PYTHON, "--generate-hashes",
        "--custom-compile-command", REGENERATE, "--quiet",
    ]  # fmt: skip
    if lock.installed_over:
        command += ["--constraint", lock.installed_over]
    return [*command, *uv_options]


def main(argv: list[str]) -> int:
    project_file = pyproject()
    for lock in LOCKS:
        command = compile_command(lock, argv)
        print(f"[lock] {shlex.join(command)}", flush=True)
        # The requirements go in on stdin: a file of them would name itself in every annotation.
        done = subprocess.run(
            command, input="\n".join(requirements(lock, project_file)) + "\n", text=True, cwd=ROOT
        )
        if done.returncode != 0:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
