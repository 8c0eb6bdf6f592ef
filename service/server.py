"""The HTTP server the service runs in: `python -m service.server` (the image's command).

uvicorn with httptools and uvloop, and the parts uvicorn leaves to whoever deploys it, in one
protocol class so that every answer a connection gets, the app's and the server's own, is
treated alike. Measured on uvicorn alone, on 127.0.0.1: a 64 MiB header took seconds of CPU and
hundreds of MiB; a header line a second kept a connection open for good; SIGTERM reset the
requests of keep-alive clients; the server's own 400s and 500s named no pod. Here:

- a request line and headers over `max_head_bytes` get a 431, a URL over `max_url_bytes` a 414,
  a body over `max_body_bytes` (or its trailers past the head limit) a 413, as the bytes
  arrive: the connection reads nothing further;
- one request at a time: a pipelined one closes the connection after the answer in hand;
- a connection that opens and sends nothing is closed after `keep_alive_timeout`; a request
  whose head or body does not arrive within `head_timeout` / `body_timeout` gets a 408;
- every answer carries X-Pod-Name, X-Node-Name and X-Connection-Id, and one access-log line;
- on SIGTERM the server drains (`ServiceServer.shutdown`).

An answer the server writes itself closes the connection after a lingering read: the client's
unread bytes would otherwise turn the close into a reset that destroys the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httptools
import uvicorn
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.access_log import AccessLog, configure_logging
from service.settings import Settings

CONNECTION_ID_HEADER = b"x-connection-id"
# How long a connection is read and discarded after an answer that closes it: long enough for
# the client to read the answer, short enough that a client never reading holds nothing long.
LINGER_SECONDS = 2.0
# Deadlines are checked by one sweep over the connections at this interval, not by a timer per
# request: a timer per request costs every request, the sweep costs nothing per request.
SWEEP_SECONDS = 0.5
# At the shutdown deadline, how long the 503s get to be read before the process exits.
GIVE_UP_LINGER_SECONDS = 1.0

log = logging.getLogger("service.server")


def identity_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """Which pod and node answered: the load-balancing checks read these."""
    return [
        (b"x-pod-name", settings.pod_name.encode("latin-1")),
        (b"x-node-name", settings.node_name.encode("latin-1")),
    ]


@dataclass
class Wiring:
    """What every connection of one server shares: its settings, identity and access log."""

    settings: Settings
    access_log: AccessLog
    identity: list[tuple[bytes, bytes]] = field(default_factory=list)
    draining: bool = False
    connection_numbers: itertools.count = field(default_factory=lambda: itertools.count(1))


class ServiceProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits, deadlines, identity, access log and drain.

    One request at a time per connection. A request that arrives before the answer to the one
    in hand (HTTP/1.1 pipelining) is not read: that answer says `Connection: close` and the
    connection closes after it, which RFC 9112 (9.3.2) lets a server do and tells the client to
    meet by sending the request again. A client that pipelines can then make the server hold
    neither a queue of requests nor a second answer in place of the first.

    Deadlines: `deadline` (the loop's clock) is when the sweep acts on the connection; `late`
    says what for: "head" or "body" (a 408), or None (closed without an answer).
    """

    def __init__(self, config, server_state, app_state, _loop=None, *, wiring: Wiring) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.wiring = wiring
        self.settings = wiring.settings
        self.identity: list[tuple[bytes, bytes]] = wiring.identity
        self.connection_id = ""  # peer and number, once connected
        self.deadline = math.inf
        self.late: str | None = None
        self.awaiting_head = True  # the next bytes are a request's line and headers
        self.in_body = False  # between the end of a request's head and the end of its body
        self.head_bytes = 0  # received of the request's head so far
        self.body_bytes = 0  # received since its head: body, chunk framing and trailers
        self.content_bytes = 0  # of those, the body's own
        self.refusal: tuple[int, str] | None = None  # found while parsing, answered after it
        self.answering: Any = None  # the cycle of the request in hand, until a next one begins
        self.discarding = False  # the rest of the input is not read (pipelined, or refused)
        self.lingering = False
        self.client_closed = False
        self.url = b""
        self.request_began = time.perf_counter()  # for the access log: the loop's clock is coarse
        self.idle_since = self.loop.time()

    # --- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host, port = self.client or ("unknown", 0)
        number = next(self.wiring.connection_numbers)
        # Peer address and number: unique for the life of the process, the same for every
        # request of this connection, so that a client can prove it had a connection each.
        connection_id = f"{host}:{port}/{number}"
        self.connection_id = connection_id
        header = (CONNECTION_ID_HEADER, connection_id.encode("latin-1"))
        self.identity = [*self.wiring.identity, header]
        self.idle_since = self.loop.time()
        self._expect(self.settings.keep_alive_timeout, None)  # a connection that sends nothing

    def eof_received(self) -> None:
        self.client_closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.answering
        hung_up = self.client_closed or exc is not None
        if cycle is not None and not cycle.response_complete and hung_up and not self.lingering:
            # A client that hangs up before its answer: one line at INFO, not a 500.
            self.wiring.access_log.write(
                cycle.scope["method"], cycle.scope["path"], None,
                time.perf_counter() - self.request_began, "client disconnected",
            )  # fmt: skip
        if cycle is not None and cycle is not self.cycle:
            cycle.disconnected = True  # uvicorn tells only its newest cycle
            cycle.message_event.set()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return  # the rest of the input is not read: see the class docstring
        self._unset_keepalive_if_required()
        if self.awaiting_head:
            if self.head_bytes == 0:  # a request begins: its head must arrive in time
                self.request_began = time.perf_counter()
                self._expect(self.settings.head_timeout, "head")
            self.head_bytes += len(data)
        else:
            self.body_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No WebSocket here: the request is answered as plain HTTP, and since the parser
            # reads no further on this connection, it closes after the answer.
            self._unsupported_upgrade_warning()
            self._stop_reading()
            if self.answering is not None:
                self.answering.keep_alive = False
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, _StopReading):
                self._callback_failed(error)
        except httptools.HttpParserError as error:
            self._refuse_later(400, f"malformed request: {error}")
        if self.refusal is None:
            self._check_sizes()
        if self.refusal is not None:
            self.refuse(*self.refusal, cycle=self.answering if self.in_body else None)

    def _check_sizes(self) -> None:
        if self.awaiting_head and self.head_bytes > self.settings.max_head_bytes:
            # Checked per read: httptools gathers a header line whole before it hands it over,
            # copying it once per read, so a huge one would cost quadratic time.
            self._refuse_later(431, self._head_too_large())
        elif (
            self.in_body
            and self.body_bytes > self.settings.max_body_bytes + self.settings.max_head_bytes
        ):
            # Trailers are headers httptools gathers the same way: with the chunk framing they
            # count here, beyond the body's own limit.
            self._refuse_later(413, self._body_too_large(None))

    def _callback_failed(self, error: httptools.HttpParserCallbackError) -> None:
        """httptools wraps what a callback raised: a bad URL is the client's error (400),
        anything else a fault of the server's own, logged whole (500)."""
        cause = error.__context__
        if isinstance(cause, httptools.HttpParserError):
            self._refuse_later(400, f"malformed request: {cause}")
        else:
            log.error("the request could not be read", exc_info=cause)
            self._refuse_later(500, "internal server error")

    def _unsupported_upgrade_warning(self) -> None:
        upgrade = self._get_upgrade() or b"?"
        log.info("an Upgrade to %s: not served; answered as plain HTTP", upgrade.decode("latin-1"))

    def send_400_response(self, msg: str) -> None:
        self.refuse(400, msg)

    # --- the parser's callbacks -------------------------------------------------------------
    # A callback that finds the input must not be read further raises _StopReading: httptools
    # stops the feed there, so no callback sees the bytes after it.

    def on_message_begin(self) -> None:
        answering = self.answering
        if answering is not None and not answering.response_complete:
            # Pipelined: answer the request in hand, then close (the class docstring says why).
            answering.keep_alive = False
            self._stop_reading()
            raise _StopReading
        super().on_message_begin()
        self.content_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.settings.max_url_bytes:
            self._refuse_now(414, f"the URL is over {self.settings.max_url_bytes} bytes")

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.body_bytes = 0
        if self.head_bytes > self.settings.max_head_bytes:
            head = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if head > self.settings.max_head_bytes:
                self._refuse_now(431, self._head_too_large())
        declared = _content_length(self.headers)
        if declared is not None and declared > self.settings.max_body_bytes:
            self._refuse_now(413, self._body_too_large(declared))  # the app never sees it
        super().on_headers_complete()
        self.in_body = True
        cycle = self.answering = self.cycle
        cycle.default_headers = self.server_state.default_headers + self.identity
        if self.wiring.draining:
            cycle.keep_alive = False  # the answer says `Connection: close`
        cycle.send = self._logged(cycle, self.request_began)
        self._expect(self.settings.body_timeout, "body")

    def _logged(self, cycle: Any, began: float) -> Callable[[Any], Any]:
        """The cycle's `send`, writing the access-log line once the answer is out."""
        send, scope, access_log = cycle.send, cycle.scope, self.wiring.access_log
        status = 500

        async def send_and_log(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                await send(message)
            else:
                await send(message)
                if not message.get("more_body", False) and not cycle.disconnected:
                    access_log.write(
                        scope["method"], scope["path"], status, time.perf_counter() - began
                    )

        return send_and_log

    def on_body(self, body: bytes) -> None:
        self.content_bytes += len(body)
        if self.content_bytes > self.settings.max_body_bytes:
            self._refuse_now(413, self._body_too_large(None))  # a chunked body, counted
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.awaiting_head, self.in_body = True, False
        self.head_bytes = self.body_bytes = 0
        self.url = b""
        super().on_message_complete()
        self.scope = None  # the cycle has its own; a later refusal must not name this request
        self._expect(math.inf, None)  # the app answers in its own time

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.idle_since = self.loop.time()

    # --- answers of the server's own ----------------------------------------------------------

    def _refuse_later(self, status: int, detail: str) -> None:
        """Note the first problem found while parsing; `data_received` answers it."""
        if self.refusal is None:
            self.refusal = (status, detail)
        self.discarding = True

    def _refuse_now(self, status: int, detail: str) -> None:
        """From a parser callback: note the problem and stop the feed."""
        self._refuse_later(status, detail)
        raise _StopReading

    def refuse(self, status: int, detail: str, cycle: Any = None) -> None:
        """Answer `status` in place of the app, then close the connection after a lingering
        read. `cycle`: the request's, when the app has it; it is told the client is gone."""
        if self.lingering or self.transport.is_closing():
            return
        self._stop_reading()
        answering = self.answering
        if cycle is None and answering is not None and not answering.response_complete:
            # The bad bytes follow a request not yet answered: that answer comes first, and
            # says `Connection: close`, as for a pipelined request.
            answering.keep_alive = False
            return
        method, path = self._request_line(cycle)
        if cycle is not None:
            if cycle.response_complete:
                self.linger()  # its answer is out: the rest of it gets no second one
                return
            if cycle.response_started:
                self.transport.close()  # half an answer is out: nothing sound can follow
                return
            cycle.disconnected = True
            cycle.message_event.set()
        body = json.dumps({"detail": detail}).encode()
        head = [STATUS_LINE[status]]
        for name, value in (
            *self.server_state.default_headers,
            *self.identity,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ):
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        self.transport.write(b"".join(head if method == "HEAD" else [*head, body]))
        self.wiring.access_log.write(
            method, path, status, time.perf_counter() - self.request_began, detail
        )
        self.linger()

    def _stop_reading(self) -> None:
        self.discarding = True
        self.flow.resume_reading()  # go on reading, to discard: unread bytes would reset

    def linger(self) -> None:
        self.lingering = True
        self._unset_keepalive_if_required()
        self._stop_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._expect(LINGER_SECONDS, None)

    def _expect(self, seconds: float, what: str | None) -> None:
        self.deadline = self.loop.time() + seconds
        self.late = what

    def _request_line(self, cycle: Any = None) -> tuple[str, str]:
        """The method and path of the request refused, as far as they came."""
        scope = cycle.scope if cycle is not None else (self.scope or {})
        method = scope.get("method")
        if method is None:
            try:
                method = self.parser.get_method().decode("ascii")
            except (httptools.HttpParserError, UnicodeDecodeError, AttributeError):
                method = "-"  # the request line itself did not parse
        path = scope.get("path") or self.url[:200].decode("latin-1", "replace") or "-"
        return method, path

    def _head_too_large(self) -> str:
        return f"the request line and headers are over {self.settings.max_head_bytes} bytes"

    def _body_too_large(self, size: int | None) -> str:
        got = f"{size} bytes" if size is not None else "more than that"
        return (
            f"request body too large: the limit is {self.settings.max_body_bytes} bytes, got {got}"
        )

    # --- the sweep and the drain ------------------------------------------------------------

    def sweep(self, now: float, *, drain_idle: float | None = None) -> None:
        """Act on a deadline that has passed; while draining, close a connection idle for
        `drain_idle` seconds."""
        if self.transport.is_closing():
            return
        if now >= self.deadline:
            if self.late is None or self.lingering:
                self.transport.close()
            else:
                cycle = self.answering if self.late == "body" else None
                self.refuse(408, f"the request's {self.late} did not arrive in time", cycle)
        elif drain_idle is not None and self.idle() and now - self.idle_since >= drain_idle:
            # A client may be sending its next request on it this moment, as HTTP/1.1 allows:
            # that request never reaches the server (a client retries it on a new connection);
            # the line says which connection it was.
            log.info(
                "closed connection %s while draining: idle %.1f s",
                self.connection_id,
                now - self.idle_since,
            )
            self.transport.close()

    def idle(self) -> bool:
        """Between requests: nothing received of the next one, nothing being answered."""
        cycle = self.answering
        return self.head_bytes == 0 and (cycle is None or cycle.response_complete)

    def shutdown(self) -> None:
        """Draining: the answer in progress, if its head is not out yet, says
        `Connection: close`; an idle connection is left to the drain's idle rule."""
        cycle = self.answering
        if cycle is not None and not cycle.response_started:
            cycle.keep_alive = False

    def give_up(self) -> None:
        """The shutdown deadline: a request still unanswered gets a 503."""
        if self.transport.is_closing() or self.lingering:
            return
        if self.idle():
            self.transport.close()
            return
        cycle = self.answering
        in_hand = cycle if cycle is not None and not cycle.response_complete else None
        detail = "the server is shutting down and the request did not finish in time"
        self.refuse(503, detail, in_hand)

    def unanswered(self) -> bool:
        return not (self.idle() or self.lingering or self.transport.is_closing())


class _StopReading(Exception):
    """Raised in a parser callback to end the feed: nothing after it is parsed."""


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the parser refuses malformed framing itself
    return None


def _not_cancelled(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


class ServiceServer(uvicorn.Server):
    """uvicorn's server, with the deadline sweep and a shutdown that drains.

    On SIGTERM (Kubernetes sends it after the preStop hook): connections the kernel has
    accepted but the server not yet are taken and answered rather than reset; then listening
    stops; every answer from then on says `Connection: close`; a keep-alive connection that
    stays idle for `drain_idle` seconds is closed; requests in flight finish. At
    `shutdown_timeout` whatever is still unanswered gets a 503.
    """

    def __init__(self, config: uvicorn.Config, wiring: Wiring, listener: socket.socket) -> None:
        super().__init__(config)
        self.wiring = wiring
        self.listener = listener

    async def on_tick(self, counter: int) -> bool:
        if counter % round(SWEEP_SECONDS / 0.1) == 0:  # uvicorn ticks every 0.1 s
            self._sweep()
        return await super().on_tick(counter)

    def _sweep(self, drain_idle: float | None = None) -> None:
        now = asyncio.get_running_loop().time()
        for connection in list(self.server_state.connections):
            connection.sweep(now, drain_idle=drain_idle)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        settings = self.wiring.settings
        self.wiring.draining = True
        started = loop.time()
        taken = await self._take_accepted_connections()
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        log.info(
            "draining: %d connections open (%d taken from the listen queue), %d requests in "
            "flight; answers say Connection: close from now on",
            len(self.server_state.connections), taken, len(self.server_state.tasks),
        )  # fmt: skip
        deadline = started + settings.shutdown_timeout
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            if loop.time() >= deadline:
                break
            self._sweep(drain_idle=settings.drain_idle)
            await asyncio.sleep(0.05)
        unfinished = [c for c in self.server_state.connections if c.unanswered()]
        if unfinished:
            log.error("shutdown deadline: %d requests unanswered get a 503", len(unfinished))
        for connection in list(self.server_state.connections):
            connection.give_up()
        # A moment for the 503s to be read before the process goes and its sockets with it.
        gave_up = loop.time()
        while self.server_state.connections and loop.time() - gave_up < GIVE_UP_LINGER_SECONDS:
            await asyncio.sleep(0.05)
        if self.server_state.tasks:
            # Their clients have had their 503: uvicorn's traceback for each would say nothing.
            logging.getLogger("uvicorn.error").addFilter(_not_cancelled)
        for task in self.server_state.tasks:
            task.cancel(msg="the shutdown deadline passed")
        log.info("drained in %.1f s", loop.time() - started)
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _take_accepted_connections(self) -> int:
        """Accept what the listen queue holds, so that closing the socket resets none of it."""
        loop = asyncio.get_running_loop()
        protocol = functools.partial(
            self.config.http_protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        taken = 0
        while True:
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return taken
            except OSError as error:
                log.warning("the listen queue could not be emptied: %s", error)
                return taken
            connection.setblocking(False)
            await loop.connect_accepted_socket(protocol, connection)
            taken += 1


def serve(app: Callable[..., Any], settings: Settings, host: str, port: int) -> None:
    """Run `app` until SIGTERM or SIGINT, then drain."""
    wiring = Wiring(settings, AccessLog(settings.pod_name), identity_headers(settings))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=functools.partial(ServiceProtocol, wiring=wiring),
        loop="auto",
        lifespan="on",
        access_log=False,  # the access log is ours: it names the pod and sees every answer
        server_header=False,  # no need to tell every client which server and version answers
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        ws="none",  # no WebSocket endpoint: an upgrade request is served as plain HTTP
    )
    listener = config.bind_socket()
    listener.setblocking(False)
    server = ServiceServer(config, wiring, listener)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C drains, as SIGTERM does, then ends
        server.run(sockets=[listener])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.server", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (5000)")
    parser.add_argument(
        "--app",
        default=None,
        help="serve another ASGI app (module:attribute) with this same server, as the "
        "throughput bench does; default: the iris service",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging()
    if args.app:
        app = import_from_string(args.app)
    else:
        from service.app import create_app

        app = create_app(settings)
    serve(app, settings, args.host, args.port)


if __name__ == "__main__":
    main()
