"""One access-log line per request, naming the pod that served it.

uvicorn's own access log is switched off, here and by the image's `--no-access-log`: it cannot
name the pod, and two lines per request would double the logging cost.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("service.access")


def configure_logging(level: int = logging.INFO) -> None:
    """Send the service's loggers to stdout, once, whoever runs the app (uvicorn, tests); and
    silence uvicorn's access log however uvicorn was started (a plain `uvicorn service.app:app`
    would otherwise log every request twice)."""
    logging.getLogger("uvicorn.access").disabled = True
    logger = logging.getLogger("service")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, pod_name: str) -> None:
        self.app = app
        self.pod_name = pod_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # Stays 500 when the app raises before answering: the server's error response is a 500.
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            path = scope["path"]
            if not path.isprintable():
                path = repr(path)  # a percent-encoded newline must not forge a second line
            log.info(
                "method=%s path=%s status=%d duration_ms=%.2f pod=%s",
                scope["method"],
                path,
                status,
                (time.perf_counter() - start) * 1000,
                self.pod_name,
            )
