"""kubeverify's distribution, as a user gets it.

`python -m ci.package build DIR`: the wheel and the sdist of ./kubeverify into DIR, checked:
twine's check of the metadata a package index renders, and the wheel holds the `kubeverify`
package and its metadata, nothing else (no top-level `service`, no tests), with its pytest and
provider entry points.

`python -m ci.package venv DIR`: a clean venv in DIR/venv with the wheel of DIR installed alone
(not editable, not the source tree), checked from outside the repository: kubeverify imports
from the venv's site-packages at the version built, and no `service` package comes with it.
Prints the venv's python.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "kubeverify"
ENTRY_POINTS = {
    "pytest11": {"kubeverify": "kubeverify.plugin"},
    "kubeverify.providers": {
        "kind": "kubeverify.providers.kind:KindProvider",
        "existing": "kubeverify.providers.existing:ExistingClusterProvider",
    },
}


class PackageError(RuntimeError):
    """The distribution is not what a user should get; the message says how."""


def version() -> str:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["version"]


def build(directory: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel into `directory` (uv, with build isolation), and check
    both; return (wheel, sdist)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["uv", "build", str(PROJECT), "--out-dir", str(directory), "--quiet"], check=True
    )
    wheel = directory / f"kubeverify-{version()}-py3-none-any.whl"
    sdist = directory / f"kubeverify-{version()}.tar.gz"
    for made in (wheel, sdist):
        if not made.is_file():
            raise PackageError(f"uv build made no {made.name} in {directory}")
    twine = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        check=False,
    )
    if twine.returncode != 0:
        raise PackageError(f"twine check failed:\n{twine.stdout}{twine.stderr}")
    problems = wheel_problems(wheel)
    if problems:
        raise PackageError(f"{wheel.name}: " + "; ".join(problems))
    return wheel, sdist


def wheel_problems(wheel: Path) -> list[str]:
    """How the wheel differs from what a user should get ([] when it does not)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"kubeverify-{version()}.dist-info"
        problems = [
            f"{name} is neither the kubeverify package nor its metadata"
            for name in names
            if not name.startswith(("kubeverify/", f"{info}/"))
        ]
        for needed in (
            "kubeverify/__init__.py",
            "kubeverify/plugin.py",
            "kubeverify/checks/test_balance.py",
            "kubeverify/locust/listeners.py",
        ):
            if needed not in names:
                problems.append(f"{needed} is missing")  # fmt: skip
        points = configparser.ConfigParser()
        points.optionxform = str  # names as written
        points.read_string(archive.read(f"{info}/entry_points.txt").decode())
    for group, wanted in ENTRY_POINTS.items():
        found = dict(points[group]) if points.has_section(group) else {}
        if found != wanted:
            problems.append(f"entry points [{group}] are {found}, not {wanted}")
    return problems


def venv(directory: Path) -> Path:
    """A clean venv in `directory`/venv holding the wheel built there and what it requires;
    checked from `directory`, outside the repository. Returns its python."""
    directory = directory.resolve()
    (wheel,) = directory.glob("kubeverify-*.whl")
    environment = directory / "venv"
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(environment)],
                   check=True)  # fmt: skip
    python = environment / "bin" / "python"
    subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(python), str(wheel)],
                   check=True)  # fmt: skip
    check = (
        "import importlib.util, kubeverify\n"
        "print(kubeverify.__version__, kubeverify.__file__, "
        "importlib.util.find_spec('service') is not None)\n"
    )
    said = subprocess.run(
        [str(python), "-c", check], cwd=directory, capture_output=True, text=True, check=True
    ).stdout.split()
    installed, where, service = said[0], Path(said[1]), said[2] == "True"
    if installed != version():
        raise PackageError(f"the venv's kubeverify is {installed}, not the {version()} built")
    if environment.resolve() not in where.resolve().parents:
        raise PackageError(f"kubeverify imports from {where}, not from the venv {environment}")
    if service:
        raise PackageError("a top-level `service` package is importable in the clean venv")
    return python


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("build", "venv"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "build":
            for made in build(Path(argv[1])):
                print(f"[package] {made.name}: built and checked", file=sys.stderr)
        else:
            print(venv(Path(argv[1])))
    except (PackageError, subprocess.CalledProcessError) as error:
        print(f"[package] {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
