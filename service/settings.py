"""Configuration, read once from the environment when the app is created.

POD_NAME     the X-Pod-Name header and the access log's pod (default: the host name)
NODE_NAME    the X-Node-Name header (default: "unknown")
MODEL_PATH   the JSON model artifact (default: where the image bakes it); trained if absent
MAX_BODY_BYTES  request bodies above this get a 413 (default 64 KiB)
MAX_BATCH_SIZE  samples per /iris/classify_batch request (default 100)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Where the image bakes the artifact; a checkout without it trains at start-up instead.
DEFAULT_MODEL_PATH = "/opt/iris/model.json"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# 100 samples are about 10 KiB of JSON: well under the body limit, and a batch big enough that
# callers rarely need to split while a single request stays a few milliseconds at most.
DEFAULT_MAX_BATCH_SIZE = 100
UNKNOWN_NODE = "unknown"


@dataclass(frozen=True)
class Settings:
    pod_name: str
    node_name: str = UNKNOWN_NODE
    model_path: Path = Path(DEFAULT_MODEL_PATH)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    def __post_init__(self) -> None:
        for name in ("pod_name", "node_name"):
            value = getattr(self, name)
            # These go out verbatim as response headers: a CR/LF would split the response.
            if not value or not value.isascii() or not value.isprintable():
                raise ValueError(f"{name} must be non-empty printable ASCII, got {value!r}")
        for name in ("max_body_bytes", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            pod_name=env.get("POD_NAME") or socket.gethostname(),
            node_name=env.get("NODE_NAME") or UNKNOWN_NODE,
            model_path=Path(env.get("MODEL_PATH") or DEFAULT_MODEL_PATH),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_batch_size=_int(env, "MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
