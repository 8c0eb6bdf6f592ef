"""A tiny service that is not iris: it answers every GET with its path as JSON, names the pod
that answered in `X-Served-By` and the connection in `X-Connection-Id`. Standard library only."""

import itertools
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = os.environ.get("POD_NAME", "unknown")
CONNECTIONS = itertools.count(1)  # next() is atomic under the GIL: safe across handler threads


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client asks to close

    def setup(self) -> None:
        super().setup()  # one handler per connection: its peer and number name it
        self.connection_id = "{}:{}".format(*self.client_address) + f"/{next(CONNECTIONS)}"

    def do_GET(self) -> None:
        body = json.dumps({"echo": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", POD)
        self.send_header("X-Connection-Id", self.connection_id)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # one line per request would flood the pod's log under load


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Echo)
    # SIGTERM comes after the preStop sleep: finish the requests in hand, then exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
