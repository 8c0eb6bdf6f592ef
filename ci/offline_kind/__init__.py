"""Provision a registry-free kind cluster toolchain from Debian's packages and Go modules.

Run as ``python3 -m ci.offline_kind ensure`` from the repository root.
The background facts live in the project's offline-kind notes; every phase
here is cached under the cache dir, keyed by the package and module versions
and the project files it was built from.
"""

import os
from pathlib import Path

ENV_FILE_NAME = "env.json"


def cache_dir() -> Path:
    """Where the toolchain is built and cached: $IRIS_OFFLINE_CACHE, else
    ~/.cache/iris-offline-kind."""
    return Path(os.environ.get("IRIS_OFFLINE_CACHE") or Path.home() / ".cache/iris-offline-kind")


def env_file() -> Path:
    """The record of what the toolchain built (kind, kubectl, node and base images), which
    the verifier is handed as its offline toolchain env file."""
    return cache_dir() / ENV_FILE_NAME
