"""The Locust image for in-cluster runs, made available to the cluster the way kubeverify makes
any image available (its provider builds and loads it).

Its build context is assembled here, in a temporary directory: the lock file it installs, the
two projects as pip installs them (kubeverify, and the iris project with its `service`
package, whole) and the locustfile. The repository's .dockerignore is the service image's
allow-list; a context of its own keeps each image's inputs explicit.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kubeverify import Image, Stage

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES = (
    "requirements/locust.txt",
    "pyproject.toml",
    "README.md",
    "kubeverify/pyproject.toml",
    "kubeverify/README.md",
    "kubeverify/CHANGELOG.md",
    "loadtest/locustfile.py",
)
TREES = ("kubeverify/src", "service")
DOCKERFILE = REPO_ROOT / "loadtest" / "Dockerfile"


def assemble_context(destination: Path) -> Path:
    for name in FILES:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for tree in TREES:
        shutil.copytree(REPO_ROOT / tree, destination / tree, ignore=ignore)
    return destination


def make_locust_image(stage: Stage, tag: str) -> str:
    """Build the Locust image and make it available to the stage's cluster; its reference."""
    with tempfile.TemporaryDirectory(prefix="iris-locust-image-") as tmp:
        context = assemble_context(Path(tmp))
        return stage.provider.make_available(Image(tag, context, DOCKERFILE))
