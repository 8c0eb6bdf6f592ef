"""`python -m loadtest.run [options] [Locust options]` (what `nox -s load` runs): a headless,
bounded Locust run against the e2e cluster, its reports in reports/, its verdict the exit code.

The cluster is the e2e harness's (same name, same kubeconfig): a kept one is reused and left
as it was; otherwise one is created, and deleted at the end unless --keep-cluster. The image is
built and loaded and the manifests applied with the harness's own functions. Options this
runner does not know (--max-skew 1.3, --connection-mode keep-alive, ...) go to Locust.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from e2e.harness import deploy, environment
from e2e.harness.cluster import CLUSTER_NAME, NODE_PORT_URL, KindProjectCluster
from e2e.harness.image import DEFAULT_TAG
from e2e.harness.kube import KubeTarget
from e2e.harness.report import REPORTS
from e2e.harness.timing import PhaseTimer, format_table
from e2e.harness.toolchain import Toolchain, detect
from loadtest import incluster, locust_cli
from loadtest.image import build_locust_image

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

    # A terminated run (CI timeout, `kill`) cleans up like Ctrl-C: Locust pods, a cluster.
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)

    timer = PhaseTimer(say=say, prefix="[load]")
    toolchain = detect()
    say(f"[load] toolchain: {toolchain.describe()}")
    cluster = KindProjectCluster(toolchain, timer, name=CLUSTER_NAME)
    # Decided before up(): a cluster this run did not create is never deleted by it, even when
    # something fails on the way.
    cluster.keep = args.keep_cluster or cluster.exists()
    try:
        target = cluster.up()
        pods = _deploy(target, cluster, timer)
        if not any(arg.startswith(("--pod-names", "--expected-pods")) for arg in locust_args):
            # Named, the verdict says which pods got nothing.
            locust_args = ["--pod-names", ",".join(pods), *locust_args]
        if args.in_cluster:
            code = _in_cluster(target, cluster, toolchain, timer, args, locust_args)
        else:
            code = _from_here(timer, args, locust_args)
    finally:
        cluster.down()
        say(format_table(timer.phases))
    say(f"[load] Locust's verdict: {'passed' if code == 0 else f'FAILED (exit code {code})'}")
    return code


def _deploy(target: KubeTarget, cluster, timer: PhaseTimer) -> list[str]:
    environment.build_and_load(cluster, DEFAULT_TAG, timer)
    deployment = environment.roll_out(target, DEFAULT_TAG, NODE_PORT_URL, timer)
    return deployment.wait_settled(deploy.DEFAULT_REPLICAS)


def _from_here(timer: PhaseTimer, args: argparse.Namespace, locust_args: list[str]) -> int:
    REPORTS.mkdir(parents=True, exist_ok=True)
    command = locust_cli.headless_command(
        NODE_PORT_URL,
        users=args.users,
        seconds=args.run_time,
        spawn_rate=args.spawn_rate,
        csv_prefix=REPORTS / "locust",
        html=REPORTS / "locust.html",
        extra=locust_args,
    )
    with timer.phase(f"Locust: {args.users} users for {args.run_time} s at {NODE_PORT_URL}"):
        code = locust_cli.run(command, args.run_time, capture=False).returncode
    say(f"[load] reports: {REPORTS}/locust.html, locust_*.csv, locust_verdict.txt")
    return code


def _in_cluster(
    target: KubeTarget,
    cluster,
    toolchain: Toolchain,
    timer: PhaseTimer,
    args: argparse.Namespace,
    locust_args: list[str],
) -> int:
    with timer.phase(f"build image {incluster.IMAGE}"):
        build_locust_image(toolchain, incluster.IMAGE, say=say)
    cluster.load_image(incluster.IMAGE)
    run = incluster.InClusterRun(
        image=incluster.IMAGE,
        workers=args.workers,
        users=args.users,
        spawn_rate=args.spawn_rate or args.users,
        seconds=args.run_time,
        locust_args=locust_args,
    )
    with timer.phase(f"in-cluster Locust: {args.workers} workers, {args.users} users"):
        return incluster.run_in_cluster(target, run, REPORTS, say)


if __name__ == "__main__":
    sys.exit(main())
