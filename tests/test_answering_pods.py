"""The rule that starts a count only once kube-proxy's rules send every connection to the
expected pods."""

import random

from kubeverify.answers import answer_problem
from kubeverify.traffic import AnsweringPods, Outcome


def answer(pod, status=200, error=None):
    """An outcome as kubeverify.traffic.send makes it: a wrong answer carries its problem."""
    problem = answer_problem(status, pod, error=error) if error or status != 200 else None
    return Outcome(0.0, 0.01, status, pod, "node", problem)


def record_all(answering, outcomes):
    for outcome in outcomes:
        answering.record(outcome)
    return answering.observation()


def test_done_once_every_expected_pod_has_answered_enough_times_in_a_row():
    answering = AnsweringPods(["a", "b", "c"], in_a_row=4)
    seen = record_all(answering, [answer("a"), answer("b"), answer("a")])
    assert not seen.done
    assert "none yet from ['c']" in seen.detail
    seen = record_all(answering, [answer("c")])
    assert seen.done
    assert seen.value == 4


def test_every_pod_having_answered_is_not_enough_without_the_streak():
    answering = AnsweringPods(["a"], in_a_row=3)
    assert not record_all(answering, [answer("a"), answer("a")]).done
    assert record_all(answering, [answer("a")]).done


def test_an_unexpected_pod_restarts_the_tally():
    answering = AnsweringPods(["a", "b"], in_a_row=2)
    seen = record_all(answering, [answer("a"), answer("b"), answer("old")])
    assert not seen.done
    assert "0 in a row" in seen.detail
    assert "old answered" in seen.detail
    assert not record_all(answering, [answer("b"), answer("b")]).done
    assert record_all(answering, [answer("a")]).done


def test_a_failed_request_restarts_the_tally():
    answering = AnsweringPods(["a", "b"], in_a_row=2)
    seen = record_all(answering, [answer("a"), answer(None, None, "ConnectError: refused")])
    assert not seen.done
    assert "ConnectError" in seen.detail
    assert not record_all(answering, [answer("b")]).done
    assert record_all(answering, [answer("a")]).done


def test_a_server_error_from_an_expected_pod_restarts_the_tally_too():
    answering = AnsweringPods(["a"], in_a_row=1)
    seen = record_all(answering, [answer("a", status=503)])
    assert not seen.done
    assert "HTTP 503, expected 200 (from a)" in seen.detail


def test_rules_still_sending_two_in_five_elsewhere_never_pass_for_settled():
    # The default streak: with old rules sending 40% of connections to a pod no longer
    # expected, one wait's first 20 answers all come from expected pods 0.6^20 of the time,
    # once in 27,000 waits. A streak of 1 would call nearly every such wait settled.
    rng = random.Random(20261125)
    settled_early = 0
    for _ in range(2000):
        answering = AnsweringPods(["a", "b", "c"])
        for _ in range(20):
            stale = rng.random() < 0.4
            answering.record(answer("old" if stale else rng.choice("abc")))
        settled_early += answering.observation().done
    assert settled_early == 0
