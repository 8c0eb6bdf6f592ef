"""`python -m bench.compare BEFORE [AFTER]`: did a change make the service slower?

The service of two commits (AFTER by default: the working tree as it is), each served from a
checkout of its own as its image serves it, side by side on CPU 0 with wrk on CPU 1, both on
the same model and the same installed packages, so that only the code differs. Classify and the
healthcheck are measured in interleaved rounds (before-after, then after-before), and AFTER's
requests per second over BEFORE's is given with its 95% interval over the rounds in which the
server bounded both runs. The verdict, against `--tolerance`: no slower (the interval at or
above 1 - tolerance), SLOWER (all of it below), or not resolved (it straddles that line, with
the rounds that would tell). Exit code 1 only when classify is resolved SLOWER. Checkouts are
git worktrees of the run's own, removed at the end (a run killed outright leaves its entry to
`git worktree prune`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import judging, throughput
from bench.throughput import CLASSIFY, HEALTHCHECK, ROOT, SERVICE_APP, Run
from service.train import export, fit

ENDPOINTS = (CLASSIFY, HEALTHCHECK)
WORKING_TREE = "."
SLOWER = "SLOWER"
VERDICTS = {judging.MET: "no slower", judging.MISSED: SLOWER, judging.UNRESOLVED: "not resolved"}


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def checkout(revision: str, place: Path) -> Iterator[tuple[Path, str]]:
    """The revision's tree in a worktree of this run's own (the working tree itself for '.'),
    and what it is: a short commit and its subject."""
    if revision == WORKING_TREE:
        dirty = " with uncommitted changes" if git("status", "--porcelain") else ""
        yield ROOT, f"the working tree ({git('rev-parse', '--short', 'HEAD')}{dirty})"
        return
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    git("worktree", "add", "--detach", "--quiet", str(place), commit)
    try:
        yield place, f"{commit[:7]} {git('log', '-1', '--format=%s', commit)[:60]}"
    finally:
        # Never raised from here: it would hide whatever ended the run.
        removed = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(place)],
            capture_output=True,
            text=True,
            check=False,
        )
        if removed.returncode != 0:
            print(
                f"warning: worktree {place} not removed ({removed.stderr.strip()}): "
                "`git worktree prune` drops it once its folder is gone",
                file=sys.stderr,
            )


def served_from(root: Path) -> Path:
    """Where the server started at `root` imports the service from: it must be `root`."""
    done = subprocess.run(
        [sys.executable, "-c", "import service; print(service.__file__)"],
        cwd=root,
        env=throughput.serving_env(root),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip()).resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("before", help="a commit, branch or tag")
    parser.add_argument("after", nargs="?", default=WORKING_TREE, help="default: the working tree")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--seconds", type=int, default=1, help="per measured wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per server first")
    parser.add_argument("--connections", type=int, default=16, help="wrk's concurrency")
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="a slowdown this small is no slower"
    )
    args = parser.parse_args(argv)
    if args.rounds < 2 or not 0 <= args.tolerance < 1:
        parser.error("--rounds must be 2 or more, --tolerance in [0, 1)")
    estimator, data, classes = fit()
    model = export(estimator, classes, data)
    with tempfile.TemporaryDirectory(prefix="iris-bench-compare-") as tmp, ExitStack() as stack:
        artifact = Path(tmp, "model.json")
        model.save(artifact)
        sides = []
        for label, revision in (("before", args.before), ("after", args.after)):
            root, what = stack.enter_context(checkout(revision, Path(tmp, label)))
            origin = served_from(root)
            if not origin.is_relative_to(root.resolve()):
                raise SystemExit(f"{what}: the service imports from {origin}, not from {root}")
            server = stack.enter_context(
                throughput.serving(SERVICE_APP, artifact, Path(tmp, f"{label}.log"), root=root)
            )
            sides.append((label, what, server))
        scripts = {
            e: throughput.script_for(e, Path(tmp), f"endpoint{i}") for i, e in enumerate(ENDPOINTS)
        }
        print(
            f"before: {sides[0][1]}\nafter:  {sides[1][1]}\n{args.rounds} rounds of "
            f"{args.seconds:g} s per endpoint and side, order alternating; server on CPU "
            f"{throughput.SERVER_CPU}, wrk -t1 -c{args.connections} on CPU {throughput.CLIENT_CPU}"
            f"; load average {os.getloadavg()[0]:.2f} before"
        )
        for _, _, server in sides:
            for endpoint in ENDPOINTS:
                throughput.wrk(
                    server.base + endpoint.path, scripts[endpoint], args.warmup, args.connections
                )
        rounds: list[dict[tuple[str, str], Run]] = []
        for number in range(args.rounds):
            order = sides if number % 2 == 0 else sides[::-1]
            rounds.append(
                {
                    (label, endpoint.name): throughput.timed_run(
                        endpoint, server, scripts[endpoint], args.seconds, args.connections
                    )
                    for endpoint in ENDPOINTS
                    for label, _, server in order
                }
            )
    print(f"  load average {os.getloadavg()[0]:.2f} after")
    said = {endpoint: compared(rounds, endpoint, args.tolerance) for endpoint in ENDPOINTS}
    return 1 if said[CLASSIFY] == judging.MISSED else 0


def compared(rounds: list[dict[tuple[str, str], Run]], endpoint, tolerance: float) -> str:
    """Print after/before for the endpoint with its interval and verdict; return the verdict."""
    pairs = [(r["after", endpoint.name], r["before", endpoint.name]) for r in rounds]
    bound = [(a, b) for a, b in pairs if a.bound_by() == b.bound_by() == "server"]
    medians = {
        side: sorted(run.rps for run in runs)[len(runs) // 2]
        for side, runs in (("before", [b for _, b in pairs]), ("after", [a for a, _ in pairs]))
    }
    head = (
        f"  {endpoint.name:<24} before {medians['before']:>7,.0f} rps, after "
        f"{medians['after']:>7,.0f} (medians)"
    )
    if len(bound) < 2:
        unresolved = VERDICTS[judging.UNRESOLVED]
        print(f"{head}; {len(bound)} of {len(pairs)} rounds server-bound: {unresolved}")
        return judging.UNRESOLVED
    ratio = judging.ratio([(a.rps, b.rps) for a, b in bound])
    line = 1 - tolerance
    verdict = ratio.judge(line)
    more = judging.rounds_to_resolve(ratio, line) if verdict == judging.UNRESOLVED else None
    print(
        f"{head}; after/before {ratio.text()}, {len(bound)} of {len(pairs)} rounds "
        f"server-bound: {VERDICTS[verdict]} (line {line:.2f})"
        + (f"; about {more} rounds would resolve it" if more else "")
    )
    return verdict


if __name__ == "__main__":
    sys.exit(main())
