"""Phase 2: Docker engine 26 from trixie, unpacked into a prefix, run in the background.

Debian 12's dockerd 20.10 asks for every capability it knows for
--privileged containers, and root here lacks CAP_SYS_RESOURCE, so kind's
privileged nodes cannot start. dockerd 26 derives them from the bounding set.
trixie's runc needs glibc 2.38, hence bookworm's runc; bookworm's tini
provides the static docker-init.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from . import apt
from .phases import Context, Phase
from .proc import PhaseError, Runner, tail_text, warn

SOCKET = "/var/run/docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"
FROM_TRIXIE = ["docker.io", "containerd", "docker-cli"]
FROM_BOOKWORM = ["runc", "tini"]
START_DEADLINE = 90.0
MIN_SERVER_MAJOR = 23


def socket_request(path: str, method: str, url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Minimal HTTP/1.0 over the daemon's unix socket (no client needed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(f"{method} {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def daemon_version(path: str = SOCKET) -> str | None:
    """Server version if a daemon answers on the socket, else None."""
    try:
        status, body = socket_request(path, "GET", "/version")
    except OSError:
        return None
    if status != 200:
        return None
    try:
        return str(json.loads(body).get("Version", ""))
    except ValueError:
        return None


def major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def docker_client(ctx: Context) -> str:
    """The machine's docker CLI if there is one, else the one from docker-cli."""
    found = shutil.which("docker", path=ctx.env["PATH"])
    if found:
        return found
    prefix = ctx.outputs.get("engine", {}).get("prefix")
    if prefix:
        return str(Path(prefix) / "usr" / "bin" / "docker")
    return "docker"


class EnginePhase(Phase):
    name = "engine"
    what = "Docker engine 26 (trixie) in a prefix, with bookworm's runc"
    recipe = 1

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        return {
            "trixie": apt.versions(run, FROM_TRIXIE, "trixie"),
            "bookworm": apt.versions(run, FROM_BOOKWORM, "bookworm"),
        }

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return Path(outputs.get("dockerd", "")).is_file()

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        pins = dict(ctx.inputs[self.name]["trixie"], **ctx.inputs[self.name]["bookworm"])
        prefix = work / "prefix"
        for deb in apt.download(run, pins, work / "debs"):
            run.run(["dpkg-deb", "-x", deb, prefix])
        shutil.rmtree(work / "debs")
        for tool in [
            "usr/sbin/dockerd",
            "usr/bin/containerd",
            "usr/bin/containerd-shim-runc-v2",
            "usr/sbin/runc",
            "usr/sbin/docker-proxy",
            "usr/bin/tini-static",
            "usr/bin/docker",
        ]:
            if not (prefix / tool).is_file():
                raise PhaseError(self.name, f"{tool} missing after unpacking the packages")
        # dockerd looks for docker-init on PATH; trixie's link points at tini-static,
        # which bookworm's tini ships too.
        run.run([prefix / "usr/sbin/dockerd", "--version"])
        run.run([prefix / "usr/sbin/runc", "--version"])
        fp = final / "prefix"
        return {
            "prefix": str(fp),
            "dockerd": str(fp / "usr/sbin/dockerd"),
            "path": f"{fp}/usr/sbin:{fp}/usr/bin",
        }

    def activate(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> str | None:
        version = daemon_version()
        if version is not None:
            note = f"dockerd {version} already answering on {SOCKET}"
        else:
            version = self._start(ctx, run, outputs)
            note = f"started dockerd {version} (log {self._log(ctx)})"
        if major(version) < MIN_SERVER_MAJOR:
            raise PhaseError(
                self.name,
                f"the daemon on {SOCKET} is Docker {version}; kind's "
                f"privileged nodes need >= {MIN_SERVER_MAJOR} here (see notes). "
                "Stop it and re-run ensure.",
            )
        if not shutil.which("docker", path=ctx.env["PATH"]):
            # kind and the e2e harness run `docker` from PATH; this machine's
            # image ships one, a bare Debian does not.
            warn(
                "no docker CLI on PATH (kind needs one): put "
                f"{outputs['prefix']}/usr/bin on PATH or link its docker into /usr/local/bin"
            )
        return note

    def _log(self, ctx: Context) -> Path:
        return ctx.phase_dir(self.name) / "dockerd.log"

    def _start(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> str:
        log_path = self._log(ctx)
        pid_path = ctx.phase_dir(self.name) / "dockerd.pid"
        env = dict(ctx.env, PATH=f"{outputs['path']}:{ctx.env['PATH']}")
        env.pop("DOCKER_HOST", None)
        cmd = [outputs["dockerd"], "--host", DOCKER_HOST, "--pidfile", str(pid_path)]
        run.note(f"starting {' '.join(cmd)}")
        log_start = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            # A new session: the daemon must outlive this process and its terminal.
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            version = daemon_version()
            if version is not None:
                return version
            if proc.poll() is not None:
                break
            time.sleep(0.25)
        exited = proc.poll()
        with open(log_path, "rb") as fh:
            fh.seek(log_start)
            tail = tail_text(fh.read().decode("utf-8", "replace"))
        if exited is None:
            # Leave nothing half-started behind: it is ours, stop it by its pid.
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            reason = f"dockerd did not answer on {SOCKET} within {START_DEADLINE:.0f} s"
        else:
            reason = f"dockerd exited with status {exited}"
        raise PhaseError(self.name, reason, cmd, tail, log_path)


def image_present(run: Runner, docker: str, tag: str) -> bool:
    return run.ok([docker, "image", "inspect", "--format", "{{.Id}}", tag])


def superseded_tags(listing: str, keep: str) -> list[str]:
    """Other tags of keep's repository, given `docker images` output as repo:tag lines."""
    repo = keep.rsplit(":", 1)[0]
    return sorted({t for t in listing.split() if t.rsplit(":", 1)[0] == repo and t != keep})


def prune_superseded(run: Runner, docker: str, keep: str) -> None:
    """Untag older builds of keep's repository (their cache dirs are gone already).

    No --force: an image a running cluster still uses stays until that is deleted.
    """
    repo = keep.rsplit(":", 1)[0]
    listing = run.out([docker, "images", "--format", "{{.Repository}}:{{.Tag}}", repo])
    for tag in superseded_tags(listing, keep):
        run.run([docker, "rmi", tag], check=False)


def needs_restoring(run: Runner, docker: str, tag: str) -> bool:
    """Whether an image phase must put `tag` back into the engine from its cache. When it must,
    older builds of the repository are untagged first, so the restore leaves only `tag`."""
    if image_present(run, docker, tag):
        return False
    prune_superseded(run, docker, tag)
    return True


def remove_labelled_containers(run: Runner, docker: str, label: str) -> None:
    """Remove build containers an earlier, killed run could not clean up."""
    ids = run.out([docker, "ps", "-aq", "--filter", f"label={label}"]).split()
    if ids:
        run.run([docker, "rm", "-f", "-v", *ids])
