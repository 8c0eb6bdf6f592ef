"""Command line: ensure (default), env, status."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path

from . import ENV_FILE_NAME, apt, cache_dir, fsutil
from .apt import AptPhase
from .base_image import BaseImagePhase
from .engine import DOCKER_HOST, EnginePhase
from .kind_binary import KindPhase
from .kubernetes import VERSION, KubernetesPhase
from .node_image import NodeImagePhase
from .node_stack import NodeStackPhase
from .phases import Context, format_table, phase_status, run_phase
from .proc import PREFIX, PhaseError
from .registry import CHOICE_VARIABLE, registry_reachable

# The whole toolchain cold on a machine of this project's kind (2 cores, nothing cached): 13 m 50 s
# on 2026-12-07 (Kubernetes 7 m 5 s, the node stack 3 m 56 s), where packages and dockerd were
# there already; Kubernetes alone took 9 m 43 s once beside other work. On a slower machine the
# same day, with tests and installs beside it, 30 min (Kubernetes 14 m 53 s, node stack 9 m 39 s).
COLD_MINUTES = "14 to 30"

PHASES = [
    AptPhase(),
    EnginePhase(),
    BaseImagePhase(),
    KindPhase(),
    KubernetesPhase(),
    NodeStackPhase(),
    NodeImagePhase(),
]
PHASE_NAMES = [p.name for p in PHASES]


def env_document(ctx: Context) -> dict[str, str]:
    return {
        "docker_host": DOCKER_HOST,
        "kind": ctx.outputs["kind"]["kind"],
        "kubectl": ctx.outputs["kubernetes"]["kubectl"],
        "kubernetes_version": VERSION,
        "node_image": ctx.outputs["node-image"]["tag"],
        "base_image": ctx.outputs["base-image"]["tag"],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 -m ci.offline_kind",
        description="A registry-free kind toolchain from Debian's packages and Go modules.",
    )
    parser.add_argument("command", nargs="?", default="ensure", choices=["ensure", "env", "status"])
    parser.add_argument(
        "field",
        nargs="?",
        default=None,
        help="env: print one field of env.json (node_image, base_image, kind, kubectl), or "
        "`path`: the directories of its kind and kubectl, for PATH",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="default: ${IRIS_OFFLINE_CACHE:-$HOME/.cache/iris-offline-kind}",
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="PHASE",
        choices=[*PHASE_NAMES, "all"],
        help="rebuild PHASE even if cached (repeatable; 'all' for every phase)",
    )
    args = parser.parse_args(argv)
    args.cache_dir = (args.cache_dir or cache_dir()).expanduser().resolve()
    return args


class Lock:
    """One ensure at a time per cache dir; a second waits instead of racing."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "a")  # closed in __exit__
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{PREFIX} waiting for another run holding {self.fh.name}", flush=True)
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _terminate(signum, frame):
    # Turn SIGTERM into an exception so finally blocks remove build containers.
    raise KeyboardInterrupt(f"signal {signum}")


def ensure(ctx: Context) -> int:
    # The same choice the verifier makes: where the public registry answers, kind pulls its
    # node image and nothing here is needed.
    choice = (os.environ.get(CHOICE_VARIABLE) or "auto").lower()
    if choice == "online" or (choice == "auto" and not ctx.force and registry_reachable()):
        print(
            f"{PREFIX} the public registry answers: nothing to build ({CHOICE_VARIABLE}=offline "
            "or --force builds anyway)"
        )
        return 0
    print(
        f"{PREFIX} no registry answers: building what is missing or stale; cold, this takes "
        f"{COLD_MINUTES} min on 2 cores (most of it compiling Kubernetes and the node's "
        "programs), warm, seconds",
        flush=True,
    )
    if os.geteuid() != 0:
        print(f"{PREFIX} ensure needs root (apt, debootstrap, dockerd)", file=sys.stderr)
        return 2
    started = time.monotonic()
    results = []
    for phase in PHASES:
        results.append(run_phase(ctx, phase))
    doc = env_document(ctx)
    env_path = ctx.cache / ENV_FILE_NAME
    fsutil.atomic_write_text(env_path, json.dumps(doc, indent=2) + "\n")
    print(f"{PREFIX} phase times:")
    for line in format_table(results).splitlines():
        print(f"{PREFIX}   {line}")
    print(f"{PREFIX} wrote {env_path} ({time.monotonic() - started:.1f} s in all)")
    print(json.dumps(doc, indent=2))
    return 0


def status(ctx: Context) -> int:
    for phase in PHASES:
        print(f"{PREFIX} {phase_status(ctx, phase)}")
    env_path = ctx.cache / ENV_FILE_NAME
    print(f"{PREFIX} env.json: {env_path if env_path.is_file() else 'not written yet'}")
    return 0


def show_env(ctx: Context, field: str | None = None) -> int:
    """env.json whole, one field of it, or (`path`) the directories of its kind and kubectl."""
    env_path = ctx.cache / ENV_FILE_NAME
    if not env_path.is_file():
        print(
            f"{PREFIX} {env_path} does not exist; run: python3 -m ci.offline_kind ensure",
            file=sys.stderr,
        )
        return 1
    env = json.loads(env_path.read_text())
    if field is None:
        sys.stdout.write(env_path.read_text())
    elif field == "path":
        print(":".join(dict.fromkeys(str(Path(env[tool]).parent) for tool in ("kind", "kubectl"))))
    elif field in env:
        print(env[field])
    else:
        print(f"{PREFIX} env.json has no field {field!r}: {', '.join(env)}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    force = set(PHASE_NAMES) if "all" in args.force else set(args.force)
    ctx = Context(args.cache_dir, force)
    apt.use_cache_dir(args.cache_dir / "apt-cache")
    if args.command == "env":
        return show_env(ctx, args.field)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with Lock(args.cache_dir / ".lock"):
            if args.command == "status":
                return status(ctx)
            return ensure(ctx)
    except PhaseError as exc:
        print(f"{PREFIX} ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{PREFIX} interrupted; re-run to continue (finished phases stay cached)",
            file=sys.stderr,
        )
        return 130
