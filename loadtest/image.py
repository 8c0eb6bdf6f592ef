"""The Locust image for in-cluster runs, built the way the service's image is (e2e.harness.image).

Its build context is assembled here, in a temporary directory, from only what the locustfile
needs: the repository's .dockerignore is the service image's allow-list, and a second context
keeps each image's inputs explicit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from e2e.harness.image import ImageInfo, build_image
from e2e.harness.toolchain import Toolchain

REPO_ROOT = Path(__file__).resolve().parents[1]
# What `import loadtest.locustfile` reaches in this repository, and the list of requirements.
CONTEXT_FILES = (
    "pyproject.toml",
    "e2e/__init__.py",
    "e2e/harness/__init__.py",
    "e2e/harness/balance.py",
)


def assemble_context(destination: Path) -> Path:
    for name in CONTEXT_FILES:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, destination / name)
    (destination / "loadtest").mkdir(exist_ok=True)
    for source in (REPO_ROOT / "loadtest").glob("*.py"):
        shutil.copy2(source, destination / "loadtest" / source.name)
    shutil.copy2(REPO_ROOT / "loadtest" / "Dockerfile", destination / "Dockerfile")
    return destination


def build_locust_image(
    toolchain: Toolchain, tag: str, say: Callable[[str], None] = print
) -> ImageInfo:
    with tempfile.TemporaryDirectory(prefix="iris-locust-image-") as tmp:
        return build_image(tag, toolchain, context=assemble_context(Path(tmp)), say=say)
