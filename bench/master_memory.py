"""`python -m bench.master_memory`: the in-cluster Locust master's peak memory at the end of a
run, against its limit in loadtest/manifests/master.yaml.

Each run is simulated in a fresh process that holds what the master holds: the locustfile's
imports (Locust, scikit-learn's iris data set, kubeverify's listeners), Locust's request stats
for every request, and the per-pod tally the workers' reports (one every 3 s from each worker,
in their wire format) merge into. Then Locust's `quitting` event runs the listeners' final
verdict, as on the master, and writes its reports. Peak memory is what the master's report
states (its resident high-water mark); the verdict's share is that peak less the resident
memory just before it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
MASTER_MANIFEST = ROOT / "loadtest" / "manifests" / "master.yaml"
# Measured in-cluster: 2 workers of 20 users sent 22,231 requests in 60 s (issue 27); more
# workers, more users, the same rate each.
REQUESTS_PER_SECOND_PER_WORKER = 185
REPORT_INTERVAL_S = 3  # Locust's workers report to the master every 3 s
PODS = ("iris-classifier-a", "iris-classifier-b", "iris-classifier-c")
# (workers, minutes): issue 27's four, and the most `python -m loadtest.run` allows.
SCENARIOS = ((2, 1), (2, 10), (4, 1), (4, 10), (8, 30))
MIB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    workers: int
    minutes: float
    requests: int
    imported_mib: float  # resident after the imports, before the run
    before_verdict_mib: float  # resident with the run's state, before the verdict
    peak_mib: float  # the process's high-water mark, verdict included
    verdict_s: float
    reported: str  # what the master's own report says of its memory
    passed: bool

    @property
    def verdict_mib(self) -> float:
        return self.peak_mib - self.before_verdict_mib


def master_limit_mib() -> float:
    """The master's memory limit, from its manifest."""
    pod = next(
        doc for doc in yaml.safe_load_all(MASTER_MANIFEST.read_text()) if doc["kind"] == "Pod"
    )
    limit = pod["spec"]["containers"][0]["resources"]["limits"]["memory"]
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(limit[:-2]) * units[limit[-2:]]


def measure(workers: int, minutes: float) -> Memory:
    """One simulated run, in a fresh process: its figures."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.master_memory", "--one", str(workers), str(minutes)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the simulated master failed:\n{result.stderr[-3000:]}")
    return Memory(**json.loads(result.stdout.splitlines()[-1]))


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / MIB


def _one(workers: int, minutes: float) -> dict:
    """The master's end of a run, in this process (which it leaves patched by gevent)."""
    import time

    from locust import events
    from locust.argument_parser import get_parser
    from locust.env import Environment

    import loadtest.locustfile  # noqa: F401  (the master's imports, and the listeners)
    from kubeverify.locust import listeners

    imported = _resident_mib()
    rng = np.random.default_rng(27)
    with tempfile.TemporaryDirectory(prefix="master-memory-") as tmp:
        prefix = Path(tmp, "locust-in-cluster")
        options = get_parser().parse_args(
            ["--master", "--headless", "--csv", str(prefix), "--pod-names", ",".join(PODS)]
        )
        environment = Environment(events=events, parsed_options=options)
        events.init.fire(environment=environment, runner=None, web_ui=None)
        seconds = int(minutes * 60)
        requests = 0
        for second in range(0, seconds, REPORT_INTERVAL_S):
            for worker in range(workers):
                count = REQUESTS_PER_SECOND_PER_WORKER * min(REPORT_INTERVAL_S, seconds - second)
                report = _worker_report(rng, worker, second, count)
                for latencies in report["answers"].values():
                    for seconds_taken, _ in latencies:
                        environment.stats.log_request(
                            "POST", "/iris/classify_iris", seconds_taken * 1000, 30
                        )
                events.worker_report.fire(
                    client_id=f"worker-{worker}", data={listeners.REPORT_KEY: report}
                )
                requests += count
        before = _resident_mib()
        started = time.perf_counter()
        events.quitting.fire(environment=environment)
        verdict_s = time.perf_counter() - started
        judged = json.loads(Path(f"{prefix}_verdict.json").read_text())
    return {
        "workers": workers,
        "minutes": minutes,
        "requests": requests,
        "imported_mib": imported,
        "before_verdict_mib": before,
        "peak_mib": judged["memory"]["peak_mib"],
        "verdict_s": verdict_s,
        "reported": judged["memory"]["summary"],
        "passed": judged["passed"],
    }


def _worker_report(rng, worker: int, second: int, count: int) -> dict:
    """What one worker sends in one report, as the listeners' tally puts it on the wire: each
    answer on a new connection, spread evenly over the pods, a few milliseconds each."""
    pods = rng.integers(0, len(PODS), count)
    latencies = rng.lognormal(np.log(0.004), 0.35, count)
    report: dict[str, dict] = {
        key: {} for key in ("pods", "nodes", "connection_ids", "named_answers", "groups", "answers")
    }
    for index, pod in enumerate(PODS):
        mine = latencies[pods == index]
        report["pods"][pod] = report["named_answers"][pod] = len(mine)
        report["nodes"][f"node-{index}"] = len(mine)
        report["connection_ids"][pod] = [
            f"10.244.{worker}.7:{second}/{number}" for number in range(len(mine))
        ]
        report["answers"][pod] = [[float(seconds), False] for seconds in mine]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.master_memory", description=__doc__)
    parser.add_argument("--one", nargs=2, type=float, metavar=("WORKERS", "MINUTES"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_one(int(args.one[0]), args.one[1])))
        return 0
    limit = master_limit_mib()
    print(
        f"The in-cluster Locust master at the end of a run: {len(PODS)} pods, "
        f"{REQUESTS_PER_SECOND_PER_WORKER} requests/s per worker, a new connection each; its "
        f"limit {limit:g} MiB ({MASTER_MANIFEST.relative_to(ROOT)})"
    )
    print(
        f"  {'workers':>7} {'minutes':>7} {'requests':>9} {'imports':>8} {'state':>8} "
        f"{'peak':>8} {'verdict':>8} {'verdict s':>9}  of limit  master's report"
    )
    over = []
    for workers, minutes in SCENARIOS:
        m = measure(workers, minutes)
        print(
            f"  {m.workers:>7} {m.minutes:>7g} {m.requests:>9,} {m.imported_mib:>4.0f} MiB "
            f"{m.before_verdict_mib:>4.0f} MiB {m.peak_mib:>4.0f} MiB {m.verdict_mib:>+4.0f} MiB "
            f"{m.verdict_s:>9.1f}  {m.peak_mib / limit:>8.0%}  {m.reported}",
            flush=True,
        )
        if m.peak_mib > limit:
            over.append(f"{workers} workers, {minutes:g} min")
    if over:
        print(f"  over the limit: {'; '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
