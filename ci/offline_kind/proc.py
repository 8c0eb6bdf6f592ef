"""Running external commands with per-phase logs and readable failures."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PREFIX = "[offline-kind]"
TAIL_LINES = 25


def say(phase: str, message: str) -> None:
    print(f"{PREFIX} {phase}: {message}", flush=True)


class PhaseError(RuntimeError):
    """A phase failed; carries enough context to act on without digging."""

    def __init__(
        self,
        phase: str,
        message: str,
        cmd: Sequence[str] | None = None,
        tail: str = "",
        log: Path | None = None,
    ):
        self.phase = phase
        self.cmd = list(cmd) if cmd else None
        self.tail = tail
        self.log = log
        parts = [f"phase '{phase}' failed: {message}"]
        if cmd:
            parts.append(f"command: {shlex.join(str(c) for c in cmd)}")
        if log:
            parts.append(f"log: {log}")
        if tail:
            parts.append("last output lines:\n" + tail)
        super().__init__("\n".join(parts))


def tail_text(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join("    " + line for line in kept)


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Runner:
    """Runs commands for one phase, appending all output to that phase's log.

    Output goes to the log rather than the terminal so a cold run stays
    readable; on failure the tail of this command's output is put into the
    exception, so nobody has to open the log for the common case.
    """

    def __init__(self, phase: str, log_path: Path, env: Mapping[str, str]):
        self.phase = phase
        self.log_path = log_path
        self.env = dict(env)
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        cmd: Sequence[str | os.PathLike],
        *,
        cwd: str | os.PathLike | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        capture: bool = False,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess:
        """Run cmd; with capture=True stdout is returned (stderr still logged)."""
        argv = [str(c) for c in cmd]
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {shlex.join(argv)}\n".encode())
            log.flush()
            start = log.tell()
            out_target = subprocess.PIPE if capture else log
            try:
                proc = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=full_env,
                    stdout=out_target,
                    stderr=log,
                    stdin=subprocess.DEVNULL if input is None else None,
                    input=input,
                    timeout=timeout,
                )
            except FileNotFoundError as exc:
                raise PhaseError(
                    self.phase, f"command not found: {exc.filename}", argv, log=self.log_path
                ) from None
            except subprocess.TimeoutExpired:
                log.flush()
                raise PhaseError(
                    self.phase,
                    f"timed out after {timeout} s",
                    argv,
                    tail_text(_read_from(self.log_path, start)),
                    self.log_path,
                ) from None
            if capture and proc.stdout:
                log.write(proc.stdout if len(proc.stdout) < 65536 else proc.stdout[:65536])
        if check and proc.returncode != 0:
            text = _read_from(self.log_path, start)
            raise PhaseError(
                self.phase, f"exit status {proc.returncode}", argv, tail_text(text), self.log_path
            )
        return proc

    def out(self, cmd: Sequence[str | os.PathLike], **kw) -> str:
        """Run cmd and return its stdout as text."""
        return self.run(cmd, capture=True, **kw).stdout.decode("utf-8", "replace")

    def ok(self, cmd: Sequence[str | os.PathLike], **kw) -> bool:
        """Run cmd for its exit status only."""
        return self.run(cmd, check=False, **kw).returncode == 0

    def note(self, message: str) -> None:
        """Record a line in the log and on the terminal."""
        with open(self.log_path, "ab") as log:
            log.write(f"# {message}\n".encode())
        say(self.phase, message)


def warn(message: str) -> None:
    print(f"{PREFIX} warning: {message}", file=sys.stderr, flush=True)
