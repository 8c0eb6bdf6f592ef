"""Ending child processes (port-forwards, servers, Locust) so that none outlives its block,
and a run that is itself ended (SIGTERM, SIGHUP) unwinding as Ctrl-C does."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable


def stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace` seconds; always reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stream(
    command: list[str],
    say: Callable[[str], None],
    *,
    show: Callable[[str], bool] = lambda line: True,
    timeout: float | None = None,
) -> tuple[int, list[str]]:
    """Run `command`, passing each output line that `show` picks to `say` as it comes, with
    the seconds since the start; return the exit code and every line (for an error's tail).

    A long phase shows what it is doing even under pytest's output capture (`say` writes past
    it). A command still running at `timeout` is stopped and TimeoutError raised.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    lines: list[str] = []
    timer = threading.Timer(timeout, process.kill) if timeout else None
    if timer:
        timer.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            lines.append(line)
            if line.strip() and show(line):
                say(f"  {time.monotonic() - started:6.1f} s  {line.strip()}")
        code = process.wait()
    finally:
        if timer:
            timer.cancel()
        stop(process)
    if timer and code < 0 and time.monotonic() - started >= timeout:
        raise TimeoutError(f"{command[0]} ran past {timeout:g} s:\n" + "\n".join(lines[-40:]))
    return code, lines


def interrupt_on_termination() -> None:
    """A terminated run (CI timeout, `kill`, a closed terminal) raises KeyboardInterrupt, as
    Ctrl-C does, so that its `finally` blocks tear down what it made: nothing left behind."""

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
