"""The waiting rule: poll until done, give up at the deadline with the last thing seen."""

import pytest

from kubeverify.waiting import DeadlineExceeded, Observation, wait_until


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_the_first_done_observation_and_its_value():
    clock = FakeClock()
    answers = iter([Observation(False, "1"), Observation(False, "2"), Observation(True, "3", 9)])
    seen = wait_until(
        lambda: next(answers), what="x", timeout=10, interval=1, clock=clock, sleep=clock.sleep
    )
    assert (seen.detail, seen.value) == ("3", 9)
    assert clock.sleeps == [1, 1]


def test_deadline_error_names_the_goal_and_the_last_detail():
    clock = FakeClock()
    calls = []

    def check():
        calls.append(clock.now)
        return Observation(False, f"pods at t={clock.now:g}")

    with pytest.raises(DeadlineExceeded, match=r"3 ready: not reached within 2 s.*t=2"):
        wait_until(check, what="3 ready", timeout=2, interval=0.75, clock=clock, sleep=clock.sleep)
    assert calls == [0, 0.75, 1.5, 2.0]  # the last look is at the deadline itself


def test_zero_timeout_still_looks_once():
    assert wait_until(lambda: Observation(True, "ok"), what="x", timeout=0).done


@pytest.mark.parametrize(("timeout", "interval"), [(-1, 1), (1, 0)])
def test_nonsense_timing_is_rejected(timeout, interval):
    with pytest.raises(ValueError, match="timeout must be"):
        wait_until(lambda: Observation(True, ""), what="x", timeout=timeout, interval=interval)
