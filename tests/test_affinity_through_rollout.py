"""The verdict on ClientIP affinity through a rollout, on made-up clients' answers: a client may
move only once its pod was deleted, never back, and must end on a new pod; no request may fail.
Its power against a Service with no affinity is stated, and simulated here."""

from __future__ import annotations

import math
import random

import pytest

from kubeverify import affinity
from kubeverify.clients import Answer, parse
from kubeverify.waiting import DeadlineExceeded

OLD = {"old-a": 10.0, "old-b": 20.0, "old-c": 30.0}  # when each deletion was seen
NEW = {"new-x", "new-y", "new-z"}


def answers(*spans: tuple[str, float, float], every: float = 0.1) -> list[Answer]:
    """A client answered by `pod` from `start` to `end`, every `every` seconds."""
    found = []
    for pod, start, end in spans:
        found += [Answer(t, pod, 200) for t in _times(start, end, every)]
    return found


def _times(start: float, end: float, every: float) -> list[float]:
    return [round(start + every * step, 3) for step in range(round((end - start) / every))]


def judge(clients: dict[str, list[Answer]]):
    return affinity.verdict(clients, OLD, NEW, started=5.0, ended=35.0, pods=3)


def test_clients_that_move_only_when_their_pod_goes_pass():
    verdict = judge(
        {
            "c1": answers(("old-a", 0, 10.2), ("new-x", 10.2, 40)),
            # Its first pod went, then the old pod it moved to: two moves, both allowed.
            "c2": answers(("old-a", 0, 10.3), ("old-c", 10.3, 30.4), ("new-z", 30.4, 40)),
            # A move up to SLACK before the deletion was seen here: clocks differ a little.
            "c3": answers(("old-b", 0, 19.5), ("new-y", 19.5, 40)),
        }
    )
    assert verdict.passed, verdict.explain()
    assert verdict.figures["moves"] == 4
    assert verdict.figures["ends"] == {"c1": "new-x", "c2": "new-z", "c3": "new-y"}
    assert "each stayed on its pod until that pod was deleted (4 moves" in verdict.summary
    assert verdict.rates.false_alarm == 0


@pytest.mark.parametrize(
    ("client", "said"),
    [
        (answers(("old-a", 0, 8), ("old-b", 8, 40)),
         "c left old-a for old-b at +3.0 s while it lived (deleted at +5.0 s)"),
        (answers(("new-x", 0, 8), ("new-y", 8, 40)), "(never deleted)"),
        (answers(("old-a", 0, 10.5), ("new-x", 10.5, 20), ("old-a", 20, 21), ("new-x", 21, 40)),
         "c came back to ['new-x', 'old-a'] after leaving"),
        (answers(("old-a", 0, 10.5), ("old-c", 10.5, 40)), "c ended on old-c, not on a pod"),
    ],
)  # fmt: skip
def test_a_client_that_leaves_a_living_pod_comes_back_or_stays_old_fails_naming_it(client, said):
    verdict = judge({"c": client, "sound": answers(("old-a", 0, 10.2), ("new-x", 10.2, 40))})
    assert not verdict.passed
    assert any(said in line for line in verdict.details), verdict.details


def test_a_failed_request_fails_it_with_the_bound_stated():
    client = answers(("old-a", 0, 10.2), ("new-x", 10.2, 40))
    client.insert(103, Answer(10.25, error="ConnectionResetError: reset"))
    verdict = judge({"c": client})
    assert not verdict.passed
    assert "1 failed in all" in verdict.summary
    assert "ConnectionResetError: reset (at +5.2 s)" in verdict.details
    assert verdict.figures["requests"] == 302  # 5 to 35 s, the rollout: 52 + 249 + 1
    assert verdict.figures["bound_95"] == pytest.approx(3 / 302)


def test_power_is_what_a_service_without_affinity_leaves_to_chance():
    clients = {f"c{n}": answers(("old-a", 0, 2.0)) for n in range(4)}  # 20 answers each, before
    assert affinity.power(clients, started=5.0, pods=3) == pytest.approx(1 - 3.0 ** (-19 * 4))
    one = {"c": answers(("old-a", 0, 0.3))}  # 3 answers over 2 pods: kept 1 time in 4
    assert affinity.power(one, started=5.0, pods=2) == pytest.approx(0.75)


def test_clients_of_a_service_without_affinity_fail_as_often_as_the_power_says():
    # Three answers before the rollout, each from a pod picked at random of two, and one
    # during it from the pod of the last: the verdict fails unless the three agree by chance.
    # (Answers during the rollout only add chances to fail: the stated power is a floor.)
    rng = random.Random(7)
    runs, failed = 20_000, 0
    for _ in range(runs):
        before = [Answer(t / 10, rng.choice(["new-x", "new-y"]), 200) for t in range(3)]
        client = [*before, Answer(0.5, before[-1].pod, 200)]
        verdict = affinity.verdict(
            {"c": client}, {}, {"new-x", "new-y"}, started=0.25, ended=1.0, pods=2
        )
        failed += not verdict.passed
    stated = affinity.power({"c": client}, started=0.25, pods=2)
    assert stated == pytest.approx(0.75)
    assert abs(failed / runs - stated) < 4.5 * math.sqrt(stated * (1 - stated) / runs)


def test_a_clients_log_is_read_line_by_line_and_a_wrong_status_is_a_failure():
    log = (
        '{"t": 1.0, "pod": "web-a", "status": 200}\n'
        '{"t": 1.1, "pod": "web-a", "status": 503}\n'
        '{"t": 1.2, "error": "TimeoutError: timed out"}\n'
        '{"t": 1.3, "pod": "we'  # cut off: the log was read while the client wrote
    )
    read = parse(log)
    assert [a.ok for a in read] == [True, False, False]
    assert read[1].error == "status 503, expected 200"


def test_a_client_is_judged_from_the_streak_that_warmed_it_up():
    # A new Service's address may lead elsewhere for a moment (a deleted Service's rules):
    # those answers are the run's doing, and left out once each client's last ones are right.
    from types import SimpleNamespace

    from kubeverify.clients import Clients
    from kubeverify.target import Probe

    logs = {
        "c-0": ['{"t": 0.5, "error": "ConnectionRefusedError: refused"}']
        + ['{"t": 1.0, "pod": "route-x", "status": 404}']
        + [f'{{"t": {2 + n / 10}, "pod": "web-a", "status": 200}}' for n in range(4)],
        "c-1": [f'{{"t": {2 + n / 10}, "pod": "web-b", "status": 200}}' for n in range(4)],
    }
    placed = SimpleNamespace(
        spec=SimpleNamespace(node_name="w1"),
        status=SimpleNamespace(pod_ip="10.244.1.5", phase="Running", container_statuses=None),
    )
    core = SimpleNamespace(
        read_namespaced_pod_log=lambda name, ns: "\n".join(logs[name]),
        read_namespaced_pod=lambda name, ns: placed,
    )
    kube = SimpleNamespace(core=core, namespace="default")
    group = Clients(kube, "c", "http://10.0.0.1:80", Probe(), "X-Pod", 2)
    with pytest.raises(DeadlineExceeded, match="last answers from") as short:
        group.warm_up({"web-a", "web-b"}, count=6, timeout=0)  # not yet: failures among them
    # What a person needs to look further: which clients, where they run.
    assert "c-0 on w1 at 10.244.1.5 (Running), c-1 on w1" in str(short.value)
    # A client whose container never started says the runtime's word on it.
    never = "runc create failed: error setting cgroup config for procHooks: unable to freeze"
    ended = SimpleNamespace(reason="StartError", exit_code=128, message=never)
    placed.status = SimpleNamespace(
        pod_ip="10.244.1.5",
        phase="Failed",
        container_statuses=[
            SimpleNamespace(name="client", state=SimpleNamespace(terminated=ended))
        ],
    )
    assert group.whereabouts(["c-0"]) == (
        f"c-0 on w1 at 10.244.1.5 (Failed; client ended (StartError, exit code 128, {never}))"
    )
    placed.status = SimpleNamespace(pod_ip="10.244.1.5", phase="Running", container_statuses=None)
    last = r"'c-0': '4 answers, 2 failed \(the last: status 404, expected 200\)'"
    with pytest.raises(DeadlineExceeded, match=last):
        group.wait_answered(0.0, count=7, timeout=0)
    group.warm_up({"web-a", "web-b"}, count=3, timeout=0)
    answers = group.answers()
    assert [a.t for a in answers["c-0"]] == [2.1, 2.2, 2.3]
    assert all(a.ok for client in answers.values() for a in client)
