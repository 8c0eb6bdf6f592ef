"""Configuration, read once from the environment when the app is created.

POD_NAME     the X-Pod-Name header and the access log's pod (default: the host name)
NODE_NAME    the X-Node-Name header (default: "unknown")
MODEL_PATH   the JSON model artifact (default: where the image bakes it); trained if absent
MAX_BODY_BYTES  request bodies above this get a 413 (default 64 KiB)
MAX_BATCH_SIZE  samples per /iris/classify_batch request (default 100)

The server's limits and deadlines (service/server.py):
MAX_HEAD_BYTES  a request line and headers above this get a 431 (default 16 KiB)
MAX_URL_BYTES   a URL above this gets a 414 (default 8 KiB)
HEAD_TIMEOUT_SECONDS  a request's head must arrive within this from its first byte (10)
BODY_TIMEOUT_SECONDS  its body within this from the end of its head (10)
KEEP_ALIVE_SECONDS    an idle connection is closed after this, a new one too (5)
SHUTDOWN_TIMEOUT_SECONDS  after SIGTERM, requests in flight get this long; then a 503 (20)
DRAIN_IDLE_SECONDS    after SIGTERM, a keep-alive connection idle this long is closed (1)
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
# nginx's default header buffers hold 8 KiB a line, 32 KiB in all; a client of this API sends a
# few hundred bytes of headers, so 16 KiB leaves room for any proxy's additions.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
DEFAULT_MAX_URL_BYTES = 8 * 1024
# Inside Kubernetes' default 30 s grace period, after the 5 s preStop sleep.
DEFAULT_SHUTDOWN_TIMEOUT = 20.0


@dataclass(frozen=True)
class Settings:
    pod_name: str
    node_name: str = UNKNOWN_NODE
    model_path: Path = Path(DEFAULT_MODEL_PATH)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES
    head_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    drain_idle: float = 1.0

    def __post_init__(self) -> None:
        for name in ("pod_name", "node_name"):
            value = getattr(self, name)
            # These go out verbatim as response headers: a CR/LF would split the response.
            if not value or not value.isascii() or not value.isprintable():
                raise ValueError(f"{name} must be non-empty printable ASCII, got {value!r}")
        for name in ("max_body_bytes", "max_batch_size", "max_head_bytes", "max_url_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "head_timeout", "body_timeout", "keep_alive_timeout", "shutdown_timeout", "drain_idle"
        ):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0 seconds, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            pod_name=env.get("POD_NAME") or socket.gethostname(),
            node_name=env.get("NODE_NAME") or UNKNOWN_NODE,
            model_path=Path(env.get("MODEL_PATH") or DEFAULT_MODEL_PATH),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_batch_size=_int(env, "MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE),
            max_head_bytes=_int(env, "MAX_HEAD_BYTES", DEFAULT_MAX_HEAD_BYTES),
            max_url_bytes=_int(env, "MAX_URL_BYTES", DEFAULT_MAX_URL_BYTES),
            head_timeout=_number(env, "HEAD_TIMEOUT_SECONDS", 10.0),
            body_timeout=_number(env, "BODY_TIMEOUT_SECONDS", 10.0),
            keep_alive_timeout=_number(env, "KEEP_ALIVE_SECONDS", 5.0),
            shutdown_timeout=_number(env, "SHUTDOWN_TIMEOUT_SECONDS", DEFAULT_SHUTDOWN_TIMEOUT),
            drain_idle=_number(env, "DRAIN_IDLE_SECONDS", 1.0),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _setting(env, name, default, int, "an integer")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    return _setting(env, name, default, float, "a number of seconds")


def _setting(env: Mapping[str, str], name: str, default, convert, what: str):
    raw = env.get(name)
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError:
        raise ValueError(f"{name} must be {what}, got {raw!r}") from None
