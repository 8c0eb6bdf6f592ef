"""A run that is ended from outside unwinds as Ctrl-C does, so its teardown still runs."""

import signal

import pytest

from kubeverify.processes import interrupt_on_termination


@pytest.fixture
def handlers():
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_raises_keyboard_interrupt_as_ctrl_c_does(signum, handlers):
    interrupt_on_termination()
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signum)}"):
        signal.raise_signal(signum)
