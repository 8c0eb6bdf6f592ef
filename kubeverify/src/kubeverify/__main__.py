"""`python -m kubeverify TARGET.toml [pytest options]`: the standard checks (replicas, scaling,
balance, resilience, session affinity) on the target, with no test code: pytest on
kubeverify.checks. `python -m kubeverify --version`: the version installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# A path, not --pyargs: with a name pytest cannot find as a path, it falls back to the
# working directory's `testpaths` and loads their conftests, which may need another project.
CHECKS = Path(__file__).resolve().parent / "checks"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        from kubeverify import __version__

        print(f"kubeverify {__version__}")
        return 0
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    target, rest = argv[0], argv[1:]
    # `python -m` imported this package before pytest could mark it for assertion rewriting;
    # its modules that hold assertions load later and are rewritten, so the warning says nothing.
    quiet = ["-W", "ignore:Module already imported so cannot be rewritten"]
    # The checks are kubeverify's, not the project's around the target file: no ini file found
    # there applies (its addopts, pythonpath, required plugins), and nothing is cached into the
    # installed package.
    alone = ["-c", os.devnull, "--rootdir", str(CHECKS), "-p", "no:cacheprovider"]
    return int(pytest.main([*quiet, *alone, "--target", target, str(CHECKS), *rest]))


if __name__ == "__main__":
    sys.exit(main())
