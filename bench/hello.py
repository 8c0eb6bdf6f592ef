"""The floor for classify's throughput: FastAPI's own hello world, `bench.hello:app`.

Served by the same server command and flags as the service (bench.throughput.server_command),
it has none of the service's middleware, access log, body parsing or model. An `async def`
returning JSON, like the service's endpoints: a plain `def` would run in the thread pool, a
cost the service does not pay, and a slower floor would flatter the ratio; JSON rather than
plain text because classify answers JSON.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
