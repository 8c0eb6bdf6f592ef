"""Build the service image: the one way the CLI, the container smoke test and the e2e suites do it.

`python -m e2e.harness.image [--tag TAG]` (what `nox -s image` runs). Standard library only: the
nox session that runs it installs nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from e2e.harness.toolchain import Toolchain, detect

DEFAULT_TAG = "iris-classifier:poc"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 30 * 60  # a cold build downloads numpy and scikit-learn; a hung one must end
TAIL_LINES = 60


class ImageBuildError(RuntimeError):
    """docker build failed; the message ends with the tail of its output."""


@dataclass(frozen=True)
class ImageInfo:
    tag: str
    image_id: str
    size_bytes: int
    base_image: str  # what BASE_IMAGE was, or the Dockerfile's default
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.tag} ({self.image_id[:19]}): {self.size_bytes / 1e6:.0f} MB, "
            f"base {self.base_image}, built in {self.seconds:.1f} s"
        )


def build_command(tag: str, toolchain: Toolchain, context: Path = REPO_ROOT) -> list[str]:
    command = ["docker", "build", "--tag", tag, "--file", str(context / "Dockerfile")]
    if toolchain.offline and toolchain.base_image:
        command += ["--build-arg", f"BASE_IMAGE={toolchain.base_image}"]
    return [*command, str(context)]


def build_image(
    tag: str = DEFAULT_TAG,
    toolchain: Toolchain | None = None,
    *,
    context: Path = REPO_ROOT,
    say: Callable[[str], None] = print,
) -> ImageInfo:
    toolchain = toolchain or detect()
    base = toolchain.base_image if toolchain.offline and toolchain.base_image else "default"
    command = build_command(tag, toolchain, context)
    say(f"[image] build {tag} (base image: {base}) ...")
    start = time.monotonic()
    try:
        build = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as e:
        raise ImageBuildError("the docker client is not installed (no `docker` on PATH)") from e
    except subprocess.TimeoutExpired as e:
        output = e.stdout or ""  # bytes here even with text=True
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        raise ImageBuildError(
            f"docker build of {tag} took longer than {BUILD_TIMEOUT_S} s\n{_tail(output)}"
        ) from e
    seconds = time.monotonic() - start
    if build.returncode != 0:
        say(f"[image] build {tag} failed after {seconds:.1f} s")
        raise ImageBuildError(
            f"docker build of {tag} exited {build.returncode}: {' '.join(command)}\n"
            f"{_tail(build.stdout)}"
        )
    inspect = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if inspect.returncode != 0:
        raise ImageBuildError(f"built {tag} but cannot inspect it: {inspect.stderr.strip()}")
    image_id, size = inspect.stdout.split()
    info = ImageInfo(tag, image_id, int(size), base, seconds)
    say(f"[image] built {info.describe()}")
    return info


def containerd_reference(tag: str) -> str:
    """The name containerd gives a Docker tag: `iris:poc` is docker.io/library/iris:poc."""
    first, _, rest = tag.partition("/")
    if not rest:
        return f"docker.io/library/{tag}"
    if "." in first or ":" in first or first == "localhost":
        return tag
    return f"docker.io/{tag}"


def _tail(output: str, lines: int = TAIL_LINES) -> str:
    kept = output.rstrip().splitlines()[-lines:]
    return "--- last lines of docker build ---\n" + "\n".join(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.harness.image", description=__doc__)
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"image tag (default {DEFAULT_TAG})")
    args = parser.parse_args(argv)
    try:
        build_image(args.tag)
    except (RuntimeError, ValueError) as e:  # build errors, and detect()'s about the toolchain
        print(f"[image] {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
