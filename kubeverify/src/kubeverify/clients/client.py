"""One client of the Service, run in a pod of its own so that its pod's address is its own
(kube-proxy's ClientIP affinity keys on it): the probe request on a new connection every
INTERVAL seconds, for at most SECONDS, each answer one JSON line on stdout: when it was sent
(wall clock, seconds), the pod that answered (its header), the status, or the error.

Standard library only: it runs on the image's Python and nothing else.
"""

import http.client
import json
import os
import time
from urllib.parse import urlsplit

URL = urlsplit(os.environ["URL"])
METHOD = os.environ.get("METHOD", "GET")
BODY = os.environ.get("BODY") or None  # JSON text
POD_HEADER = os.environ["POD_HEADER"]
INTERVAL = float(os.environ.get("INTERVAL", "0.05"))
SECONDS = float(os.environ.get("SECONDS", "300"))
TIMEOUT = 2.0
HEADERS = {"Connection": "close", **({"Content-Type": "application/json"} if BODY else {})}


def ask() -> dict:
    sent = time.time()
    connection = http.client.HTTPConnection(URL.hostname, URL.port or 80, timeout=TIMEOUT)
    try:
        connection.request(METHOD, URL.path or "/", body=BODY, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        return {"t": sent, "pod": response.getheader(POD_HEADER), "status": response.status}
    # Refused, reset, timed out (OSError), or an answer cut short or malformed (HTTPException:
    # IncompleteRead, BadStatusLine): a failed request, not the end of the client.
    except (OSError, http.client.HTTPException) as error:
        return {"t": sent, "error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()


def main() -> None:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        print(json.dumps(ask()), flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
