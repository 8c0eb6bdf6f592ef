"""The Locust image for in-cluster runs, built the way kubeverify builds any image.

Its build context is assembled here, in a temporary directory: the lock file it installs, the
project as pip installs it (pyproject.toml, README.md and its packages, whole) and the
locustfile. The repository's .dockerignore is the service image's allow-list; a context of its
own keeps each image's inputs explicit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from kubeverify.image import ImageInfo, build_image
from kubeverify.toolchain import Toolchain

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("requirements/locust.txt", "pyproject.toml", "README.md")
PACKAGES = ("kubeverify", "service")
LOCUSTFILE = "loadtest/locustfile.py"


def assemble_context(destination: Path) -> Path:
    for name in PROJECT_FILES:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, destination / package, ignore=ignore)
    (destination / LOCUSTFILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / LOCUSTFILE, destination / LOCUSTFILE)
    return destination


def build_locust_image(
    toolchain: Toolchain, tag: str, say: Callable[[str], None] = print
) -> ImageInfo:
    with tempfile.TemporaryDirectory(prefix="iris-locust-image-") as tmp:
        return build_image(
            tag,
            toolchain,
            context=assemble_context(Path(tmp)),
            dockerfile=REPO_ROOT / "loadtest" / "Dockerfile",
            say=say,
        )
