"""`python -m loadtest.run [options] [Locust options]` (what `nox -s load` runs): a headless,
bounded Locust run against the e2e cluster, its reports in reports/, its verdict the exit code.

The stage is kubeverify's, set from verify.toml as the e2e run sets it: a cluster of that name
that exists is reused and left as it was; otherwise one is created, and deleted at the end
unless --keep-cluster. Options this runner does not know (--max-skew 1.3,
--connection-mode keep-alive, ...) go to Locust.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ci.offline_kind import env_file
from kubeverify import (
    KindProvider,
    PhaseTimer,
    Stage,
    format_table,
    interrupt_on_termination,
    load_target,
)
from kubeverify.locust import headless_command
from kubeverify.locust import run as run_locust
from loadtest import incluster
from loadtest.image import make_locust_image

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "verify.toml"
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
REPORTS = Path("reports")

MAX_USERS = 500
MAX_SECONDS = 1800
MAX_WORKERS = 8


def say(message: str) -> None:
    print(message, flush=True)


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    # No abbreviations: an option this runner does not know must reach Locust whole.
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.run", description=__doc__, allow_abbrev=False
    )
    parser.add_argument("--users", type=int, default=20, help="Locust users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=None, help="default: all at once")
    parser.add_argument(
        "--run-time", type=int, default=60, help="seconds Locust runs, ramp included (default 60)"
    )
    parser.add_argument(
        "--keep-cluster", action="store_true", help="leave a cluster this run created"
    )
    parser.add_argument(
        "--in-cluster",
        action="store_true",
        help="run a Locust master and --workers inside the cluster, against the ClusterIP "
        "Service, instead of one Locust here against the NodePort",
    )
    parser.add_argument("--workers", type=int, default=2, help="with --in-cluster (default 2)")
    args, locust_args = parser.parse_known_args(argv)
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users must lie in 1..{MAX_USERS}")
    if not 1 <= args.run_time <= MAX_SECONDS:
        parser.error(f"--run-time must lie in 1..{MAX_SECONDS} seconds")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must lie in 1..{MAX_WORKERS}")
    return args, locust_args


def main(argv: Sequence[str] | None = None) -> int:
    args, locust_args = parse(argv)

    interrupt_on_termination()  # then Locust's pods and a cluster it made go, as on Ctrl-C
    timer = PhaseTimer(say=say, prefix="[load]")
    target = load_target(TARGET)
    provider = KindProvider(target, timer, toolchain_env=str(env_file()), keep=args.keep_cluster)
    stage = Stage(target, provider, timer)
    try:
        stage.up()
        deployment = stage.roll_out(stage.image())
        pods = deployment.wait_settled(stage.target.replicas)
        if not any(arg.startswith(("--pod-names", "--expected-pods")) for arg in locust_args):
            # Named, the verdict says which pods got nothing.
            locust_args = ["--pod-names", ",".join(pods), *locust_args]
        if args.in_cluster:
            ending = _in_cluster(stage, timer, args, locust_args)
            code, unfinished = ending.exit_code, ending.problems
        else:
            code = _from_here(stage.endpoint.base_url, timer, args, locust_args)
            code, unfinished = _killed(code)
    finally:
        stage.down()
        say(format_table(timer.phases))
    say(verdict_line(code, unfinished))
    return code


def verdict_line(code: int, unfinished: Sequence[str] = ()) -> str:
    """The run's last line: Locust's verdict, or why there is none."""
    if unfinished:
        return (
            f"[load] Locust's verdict: none, the load test did not finish (exit code {code}): "
            + "; ".join(unfinished)
        )
    return f"[load] Locust's verdict: {'passed' if code == 0 else f'FAILED (exit code {code})'}"


def _killed(code: int) -> tuple[int, tuple[str, ...]]:
    """A Locust here that a signal ended (a negative return code) did not finish: the exit
    code a shell gives it, and why."""
    if code >= 0:
        return code, ()
    return 128 - code, (f"Locust was killed by {incluster.signal_name(-code)}",)


def _from_here(url: str, timer: PhaseTimer, args: argparse.Namespace, locust_args) -> int:
    REPORTS.mkdir(parents=True, exist_ok=True)
    command = headless_command(
        LOCUSTFILE,
        url,
        users=args.users,
        seconds=args.run_time,
        spawn_rate=args.spawn_rate,
        csv_prefix=REPORTS / "locust",
        html=REPORTS / "locust.html",
        extra=locust_args,
    )
    with timer.phase(f"Locust: {args.users} users for {args.run_time} s at {url}"):
        code = run_locust(command, args.run_time, capture=False).returncode
    say(f"[load] reports: {REPORTS}/locust.html, locust_*.csv, locust_verdict.txt")
    return code


def _in_cluster(
    stage: Stage, timer: PhaseTimer, args: argparse.Namespace, locust_args: list[str]
) -> incluster.Ending:
    image = make_locust_image(stage, incluster.IMAGE)
    run = incluster.InClusterRun(
        image=image,
        workers=args.workers,
        users=args.users,
        spawn_rate=args.spawn_rate or args.users,
        seconds=args.run_time,
        locust_args=locust_args,
    )
    with timer.phase(f"in-cluster Locust: {args.workers} workers, {args.users} users"):
        return incluster.run_in_cluster(stage.kube, run, REPORTS, say)


if __name__ == "__main__":
    sys.exit(main())
