"""Building a target's image: the one way the CLI, the fixtures and the Locust runner do it.

`python -m kubeverify.image TARGET.toml` builds the image the target names. Standard library
and the target file only, so that it runs with nothing else installed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubeverify.processes import stream
from kubeverify.providers.kind.toolchain import ENV_FILE_VARIABLE, Toolchain, detect
from kubeverify.target import Image, TargetError, load

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


def build_command(
    tag: str, toolchain: Toolchain, context: Path, dockerfile: Path | None = None
) -> list[str]:
    command = ["docker", "build", "--tag", tag, "--file", str(dockerfile or context / "Dockerfile")]
    for name, value in toolchain.build_args().items():
        command += ["--build-arg", f"{name}={value}"]
    return [*command, str(context)]


def build_image(
    tag: str,
    toolchain: Toolchain,
    *,
    context: Path,
    dockerfile: Path | None = None,
    say: Callable[[str], None] = print,
) -> ImageInfo:
    base = toolchain.build_args().get("BASE_IMAGE", "default")
    command = build_command(tag, toolchain, context, dockerfile)
    say(f"[image] build {tag} (base image: {base}) ...")
    start = time.monotonic()
    try:
        code, output = stream(command, say, show=is_build_step, timeout=BUILD_TIMEOUT_S)
    except FileNotFoundError as e:
        raise ImageBuildError("the docker client is not installed (no `docker` on PATH)") from e
    except TimeoutError as e:
        raise ImageBuildError(
            f"docker build of {tag} took longer than {BUILD_TIMEOUT_S} s: {e}"
        ) from e
    seconds = time.monotonic() - start
    if code != 0:
        say(f"[image] build {tag} failed after {seconds:.1f} s")
        raise ImageBuildError(
            f"docker build of {tag} exited {code}: {' '.join(command)}\n{_tail(output)}"
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


def build_target_image(
    image: Image, toolchain: Toolchain, say: Callable[[str], None] = print
) -> ImageInfo:
    """Build the image a target's [image] names, from the context it names."""
    if image.context is None:
        raise TargetError(f"[image] of {image.tag} names no `build` context: nothing to build")
    return build_image(
        image.tag, toolchain, context=image.context, dockerfile=image.dockerfile, say=say
    )


def containerd_reference(tag: str) -> str:
    """The name containerd gives a Docker tag: `iris:poc` is docker.io/library/iris:poc."""
    first, _, rest = tag.partition("/")
    if not rest:
        return f"docker.io/library/{tag}"
    if "." in first or ":" in first or first == "localhost":
        return tag
    return f"docker.io/{tag}"


def is_build_step(line: str) -> bool:
    """The line that starts a build step: `Step 3/12 : RUN ...` from Docker's classic builder,
    `#7 [deps 2/4] RUN ...` from BuildKit's plain progress."""
    return line.startswith("Step ") or re.match(r"#\d+ \[", line) is not None


def _tail(output: list[str], lines: int = TAIL_LINES) -> str:
    kept = output[-lines:]
    return "--- last lines of docker build ---\n" + "\n".join(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeverify.image", description=__doc__)
    parser.add_argument("target", help="the target file whose [image] to build")
    parser.add_argument(
        "--toolchain-env", default=None, help=f"offline toolchain env file ({ENV_FILE_VARIABLE})"
    )
    args = parser.parse_args(argv)
    try:
        build_target_image(load(args.target).image, detect(args.toolchain_env))
    except (RuntimeError, ValueError) as e:  # build and target errors, detect()'s on the toolchain
        print(f"[image] {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
