"""Pure ASGI middleware: pod identity headers and the request body limit.

Pure ASGI rather than BaseHTTPMiddleware, which runs every request through extra tasks and
streams and costs a measurable share of throughput on an endpoint this cheap.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.settings import Settings


def identity_headers(settings: Settings) -> dict[str, str]:
    """Which pod and node answered: the load-balancing checks read these."""
    return {"X-Pod-Name": settings.pod_name, "X-Node-Name": settings.node_name}


class IdentityHeadersMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        # Encoded once: the values cannot change while the process runs.
        self.raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in identity_headers(settings).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_identity(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: the one in the message may belong to a reusable Response object.
                message["headers"] = [*message.get("headers", ()), *self.raw_headers]
            await send(message)

        await self.app(scope, receive, send_with_identity)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, size: int | None = None) -> None:
        what = f"{size} bytes" if size is not None else "more than that"
        super().__init__(413, f"request body too large: the limit is {limit} bytes, got {what}")


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while they stream.

    A chunked body has no Content-Length, so the bytes are counted as the app reads them and
    the read fails with BodyTooLarge once over the limit; FastAPI turns that into the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            error = BodyTooLarge(self.max_bytes, declared)
            # Answered before reading: a client waiting on "Expect: 100-continue" sends nothing.
            response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
            await response(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects malformed framing; count the bytes anyway
    return None
