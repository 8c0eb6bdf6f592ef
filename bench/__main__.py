"""`python -m bench`: inference microseconds and HTTP requests per second, side by side.

Goals: the service's inference under 20 µs per call, and classify at 80% or more of
healthcheck's requests per second on one uvicorn worker.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from bench import inference, throughput
from service.train import export, fit

INFERENCE_GOAL_US = 20.0
RATIO_GOAL = 0.80


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measured wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per endpoint first")
    parser.add_argument("--connections", type=int, default=16, help="wrk's concurrency")
    parser.add_argument("--retrain-calls", type=int, default=10)
    parser.add_argument("--no-http", action="store_true", help="inference figures only")
    args = parser.parse_args(argv)

    estimator, data, classes = fit()
    model = export(estimator, classes, data)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print("\nInference, one sample, µs per call (best of 5 runs)")
    timings = inference.measure(estimator, model, args.retrain_calls)
    for t in timings:
        print(f"  {t.name:<66} {t.microseconds:>12,.1f}")
    service_us = timings[0].microseconds
    ok = service_us < INFERENCE_GOAL_US
    print(f"  goal: service path < {INFERENCE_GOAL_US:g} µs: {verdict(ok)}")
    if args.no_http:
        return 0

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser_ = "httptools" if importlib.util.find_spec("httptools") else "h11"
    print(
        f"\nHTTP, one uvicorn worker on {throughput.HOST} ({loop} loop, {parser_} parser), "
        f"wrk -t1 -c{args.connections}, {args.rounds} x {args.seconds:g} s per endpoint "
        f"alternating, after {args.warmup:g} s warm-up each"
    )
    with tempfile.TemporaryDirectory(prefix="iris-bench-model-") as tmp:
        artifact = Path(tmp, "model.json")
        model.save(artifact)
        runs, layout = throughput.measure(
            artifact, args.seconds, args.rounds, args.warmup, args.connections
        )
    print(f"  {layout.describe()}")
    header = f"{'round':<6}{'endpoint':<26} {'rps':>7} {'p50 ms':>7} {'p99 ms':>7}"
    print(f"  {header} {'server CPU':>10} {'wrk CPU':>7} {'req/CPU-s':>9}")
    for number, round_ in enumerate(runs, 1):
        for run in round_:
            print(
                f"  {number:<6}{run.endpoint:<26} {run.rps:>7,.0f} {run.p50_ms:>7.2f}"
                f" {run.p99_ms:>7.2f} {run.server_cpu:>10.0%} {run.client_cpu:>7.0%}"
                f" {run.per_cpu_second:>9,.0f}"
            )
    # Ratios within a round, then their median: drift between rounds cancels out.
    ratio = statistics.median(classify.rps / health.rps for health, classify in runs)
    cost_ratio = statistics.median(
        classify.per_cpu_second / health.per_cpu_second for health, classify in runs
    )
    print(f"  classify / healthcheck, median over rounds: {ratio:.2f} of the requests per second,")
    print(f"  {cost_ratio:.2f} of the requests per server CPU-second")
    print(f"  goal: requests per second ratio >= {RATIO_GOAL:.2f}: {verdict(ratio >= RATIO_GOAL)}")
    ok = ok and ratio >= RATIO_GOAL
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
