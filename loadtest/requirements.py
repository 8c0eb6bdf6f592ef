"""`python requirements.py EXTRA [pyproject.toml]`: the requirements of one optional extra, one per
line, with the project's references to its own extras (`iris-on-kind[train]`) expanded.

The Locust image installs these, so pyproject.toml stays the one list of what the load test
needs. Standard library only: it runs in the image build before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def extra_requirements(pyproject: dict, extra: str) -> list[str]:
    project = pyproject["project"]
    self_reference = re.compile(rf"{re.escape(project['name'])}\[([^\]]+)\]")
    found: list[str] = []

    def expand(name: str, seen: frozenset[str]) -> None:
        if name in seen:
            raise ValueError(f"extra {name!r} includes itself")
        for requirement in project["optional-dependencies"][name]:
            if match := self_reference.fullmatch(requirement.replace(" ", "")):
                for inner in match.group(1).split(","):
                    expand(inner, seen | {name})
            elif requirement not in found:
                found.append(requirement)

    expand(extra, frozenset())
    return found


def main(argv: list[str]) -> int:
    extra, path = argv[0], Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    print(*extra_requirements(tomllib.loads(path.read_text()), extra), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
