"""An ASGI app that misbehaves on request, for the hostile-clients suite to serve with the
service's server: `/sleep?seconds=N` answers after N seconds, `/raise` raises before answering."""

import asyncio
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/raise":
        raise RuntimeError("the app failed before answering")
    if scope["path"] == "/readyz":
        seconds = 0.0
    else:
        seconds = float(parse_qs(scope["query_string"].decode()).get("seconds", ["0"])[0])
    await asyncio.sleep(seconds)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"slept {seconds}".encode()})
