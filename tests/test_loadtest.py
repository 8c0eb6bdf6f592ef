"""kubeverify's Locust logic, pure: counting answers per pod, judging answers, the verdict;
and the iris example's Locust image context."""

import dataclasses
import json
import math
import modulefinder
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ci.locks import by_path, pyproject, requirements
from kubeverify.answers import answer_problem
from kubeverify.balance import Transport, required_requests, skewed_shares, worst_shares
from kubeverify.locust import memory
from kubeverify.locust import tally as tally_module
from kubeverify.locust.tally import Tally, format_counts, share_rows
from kubeverify.locust.verdict import (
    CONNECTION_MODES,
    RunFigures,
    Thresholds,
    chance_a_pod_gets_none,
    evaluate,
)
from loadtest.image import assemble_context

FRESH = Transport.NEW_CONNECTION_PER_REQUEST
PODS = ("pod-a", "pod-b", "pod-c")


def figures(pods, requests=None, failures=0, p95_ms=20.0, transport=FRESH, **connections):
    total = sum(pods.values()) if requests is None else requests
    return RunFigures(total, failures, p95_ms, pods, transport, **connections)


def even(per_pod=1000, pods=PODS):
    return dict.fromkeys(pods, per_pod)


def check(verdict, name):
    (found,) = [c for c in verdict.verdicts if c.check == name]
    return found


# --- counting ------------------------------------------------------------------------------------


def test_tally_counts_pods_and_nodes_and_names_a_missing_node():
    tally = Tally()
    tally.record("pod-a", "node-1")
    tally.record("pod-a", "node-1")
    tally.record("pod-b", None)
    assert tally.pods == {"pod-a": 2, "pod-b": 1}
    assert tally.nodes == {"node-1": 2, "<none>": 1}


def test_a_worker_hands_over_its_counts_once_and_the_master_sums_them():
    master, worker = Tally(), Tally()
    for _ in range(3):
        worker.record("pod-a", "node-1")
    master.merge(worker.take())
    worker.record("pod-b", "node-2")
    master.merge(worker.take())
    master.merge(worker.take())  # nothing new since the last report: nothing added
    assert master.pods == {"pod-a": 3, "pod-b": 1}
    assert master.nodes == {"node-1": 3, "node-2": 1}
    assert not worker.pods
    assert not worker.nodes


def test_the_report_survives_the_trip_as_plain_data():
    tally = Tally()
    tally.record("pod-a", "node-1")
    tally.record("pod-a", "node-1", "10.0.0.1:4000/1")
    assert json.loads(json.dumps(tally.to_message())) == {
        "pods": {"pod-a": 2},
        "nodes": {"node-1": 2},
        "connection_ids": {"pod-a": ["10.0.0.1:4000/1"]},
        "named_answers": {"pod-a": 1},
        "groups": {},
        "answers": {},
    }


def test_each_pods_first_answers_are_kept_for_its_health_and_merged_up_to_the_cap():
    from kubeverify.locust import tally as tallies

    master, worker = Tally(), Tally()
    worker.answered("pod-a", 0.004, False)
    worker.answered("pod-a", 0.2, True)
    master.merge(json.loads(json.dumps(worker.take())))
    assert master.answers == {"pod-a": [(0.004, False), (0.2, True)]}
    assert not worker.answers
    for _ in range(tallies.MAX_ANSWERS_PER_POD + 5):
        worker.answered("pod-b", 0.003, False)
    master.merge(worker.take())
    master.merge({"answers": {"pod-b": [[0.003, False]]}})
    assert len(master.answers["pod-b"]) == tallies.MAX_ANSWERS_PER_POD
    master.record("pod-a", None)
    master.record("pod-a", None)
    (row,) = tallies.pod_rows(master)[:1]
    assert (row["name"], row["failed"], row["median_ms"]) == ("pod-a", 1, "200.0")


def test_connections_are_the_distinct_ones_each_pod_named():
    tally = Tally()
    assert tally.connections is None  # no answer named its connection
    assert tally.reused is None
    for connection in ("10.0.0.1:4000/1", "10.0.0.1:4000/1", "10.0.0.1:4001/2"):
        tally.record("pod-a", None, connection)
    tally.record("pod-b", None, "10.0.0.1:4000/1")  # the same name at another pod: its own
    tally.record("pod-c", None)
    assert tally.connections == {"pod-a": 2, "pod-b": 1, "pod-c": 0}
    assert tally.reused == (1, 4)


def test_workers_connections_reach_the_master_whole():
    master, first, second = Tally(), Tally(), Tally()
    first.record("pod-a", None, "a/1")
    first.record("pod-a", None, "a/2")
    second.record("pod-a", None, "b/1")
    second.record("pod-a", None, "b/1")  # reused
    master.merge(first.take())
    master.merge(second.take())
    assert master.connections == {"pod-a": 3}
    assert master.reused == (1, 4)


def test_past_the_connections_kept_neither_proof_nor_count_is_claimed(monkeypatch):
    monkeypatch.setattr(tally_module, "MAX_CONNECTIONS_PER_POD", 3)
    tally = Tally()
    for number in (1, 2, 3, 4, 4):
        tally.record("pod-a", None, f"a/{number}")
    assert tally.connections == {"pod-a": 3}
    assert tally.connections_capped
    assert tally.reused is None


def test_share_rows_put_the_largest_first_with_shares():
    rows = share_rows({"pod-b": 1, "pod-a": 3})
    assert rows == [
        {"name": "pod-a", "responses": 3, "share": "75.0%"},
        {"name": "pod-b", "responses": 1, "share": "25.0%"},
    ]


def test_count_table_lists_every_pod_and_the_total():
    table = format_counts({"pod-a": 3, "pod-b": 1}, "pod")
    assert [line.split()[:2] for line in table.splitlines()[2:]] == [
        ["pod-a", "3"],
        ["pod-b", "1"],
        ["total", "4"],
    ]


# --- answers -------------------------------------------------------------------------------------


def test_any_answer_needs_the_expected_status_and_a_pod():
    assert answer_problem(200, "pod-a") is None
    assert answer_problem(503, "pod-a") == "HTTP 503, expected 200"
    assert answer_problem(201, "pod-a", expected_status=201) is None
    assert "X-Pod-Name" in answer_problem(200, "")
    assert "X-Served-By" in answer_problem(200, None, pod_header="X-Served-By")


def test_a_request_with_no_answer_names_its_error():
    problem = answer_problem(0, None, error=ConnectionRefusedError(111, "Connection refused"))
    assert problem == "no answer: ConnectionRefusedError(111, 'Connection refused')"
    assert answer_problem(None, None, error=TimeoutError()) == "no answer: TimeoutError()"


# --- verdict -------------------------------------------------------------------------------------


def test_an_even_split_with_no_errors_passes():
    verdict = evaluate(figures(even()), Thresholds())
    assert verdict.passed, verdict.text()
    assert verdict.exit_code == 0
    assert verdict.text().startswith("verdict: PASSED")
    assert {c.check for c in verdict.verdicts} == {
        "error ratio",
        "p95 latency",
        "pods",
        "balance chi-square",
        "balance evidence",
        "balance skew",
    }


def test_a_skewed_split_fails_on_skew_and_chi_square():
    verdict = evaluate(figures({"pod-a": 1600, "pod-b": 1000, "pod-c": 1000}), Thresholds())
    assert not verdict.passed
    assert verdict.exit_code == 1
    assert not check(verdict, "balance skew").passed
    assert "max/min 1.60 (allowed 1.5)" in check(verdict, "balance skew").summary
    assert not check(verdict, "balance chi-square").passed
    assert verdict.text().startswith("verdict: FAILED (balance chi-square, balance skew)")


def test_skew_alone_judges_when_chi_square_is_off():
    thresholds = Thresholds(alpha=0, max_skew=1.5)
    verdict = evaluate(figures({"pod-a": 1400, "pod-b": 1000, "pod-c": 1000}), thresholds)
    assert verdict.passed
    assert {c.check for c in verdict.verdicts} >= {"balance skew"}
    assert "balance chi-square" not in {c.check for c in verdict.verdicts}
    verdict = evaluate(figures({"pod-a": 1600, "pod-b": 1000, "pod-c": 1000}), thresholds)
    assert not verdict.passed


def test_chi_square_alone_catches_the_worst_1_5_split_however_long_the_run():
    for total in (1340, 5000, 50_000):
        counts = dict(zip(PODS, (round(total * s) for s in worst_shares(3)), strict=True))
        verdict = evaluate(figures(counts), Thresholds(max_skew=0))
        assert not check(verdict, "balance chi-square").passed, total
        assert "balance skew" not in {c.check for c in verdict.verdicts}


def test_the_chi_square_verdict_means_the_same_for_a_short_and_a_long_run():
    # One pod at 1.2x: below the 1.5 the test is sized for. On every response, a long run
    # would reject it always; on the fixed-size sample, as often as a short run does.
    rng = np.random.default_rng(20261125)
    shares = skewed_shares(3, 1.2)
    rates = {}
    for total in (5_000, 50_000):
        failed = 0
        for _ in range(200):
            counts = dict(zip(PODS, map(int, rng.multinomial(total, shares)), strict=True))
            failed += not check(
                evaluate(figures(counts), Thresholds()), "balance chi-square"
            ).passed
        rates[total] = failed / 200
    assert abs(rates[5_000] - rates[50_000]) < 0.15, rates
    assert rates[50_000] < 0.6, rates  # on all 50,000 responses: rejected every time


def test_one_pod_of_three_answering_fails_naming_the_shortfall():
    verdict = evaluate(figures({"pod-a": 3000}), Thresholds(expected_pods=3))
    assert not verdict.passed
    pods = check(verdict, "pods")
    assert not pods.passed
    assert pods.summary == "1 of 3 expected pods answered (pod-a): 2 short"
    assert any("balance not judged" in note for note in verdict.notes)


def test_missing_pods_are_named_when_the_names_are_known():
    verdict = evaluate(figures({"pod-a": 3000}), Thresholds(pod_names=PODS))
    pods = check(verdict, "pods")
    assert not pods.passed
    assert "2 short, no response from pod-b, pod-c" in pods.summary
    assert "pod-b, pod-c" in verdict.text()


def test_answers_from_more_pods_than_expected_fail():
    counts = even(pods=(*PODS, "pod-d"))
    assert "1 more than expected" in check(evaluate(figures(counts), Thresholds()), "pods").summary
    named = evaluate(figures(counts), Thresholds(pod_names=PODS))
    assert "answers from pods not expected: pod-d" in check(named, "pods").summary
    assert not named.passed


def test_pod_names_set_the_expected_count():
    assert Thresholds(expected_pods=3, pod_names=("a", "b")).pod_count == 2


def test_too_many_errors_fail():
    verdict = evaluate(figures(even(), requests=3000, failures=31), Thresholds())
    assert not check(verdict, "error ratio").passed
    assert "31 of 3000 requests failed (1.03%; allowed 1.00%)" in verdict.text()
    assert evaluate(figures(even(), requests=3000, failures=30), Thresholds()).passed


def test_a_run_with_no_request_fails():
    verdict = evaluate(figures({}, requests=0, p95_ms=None), Thresholds())
    assert not verdict.passed
    assert check(verdict, "error ratio").summary == "no request completed"
    assert check(verdict, "p95 latency").summary == "no request completed"


def test_a_slow_p95_fails_and_zero_switches_the_check_off():
    slow = figures(even(), p95_ms=750)
    verdict = evaluate(slow, Thresholds(max_p95_ms=500))
    assert not verdict.passed
    assert check(verdict, "p95 latency").summary == "750 ms (allowed 500 ms)"
    assert evaluate(slow, Thresholds(max_p95_ms=0)).passed


def test_too_few_responses_to_see_a_skew_prove_nothing():
    needed = required_requests(3)
    short = evaluate(figures(even(per_pod=needed // 3 - 5)), Thresholds())
    assert not short.passed
    assert not check(short, "balance evidence").passed
    assert f"takes {needed}" in check(short, "balance evidence").summary
    assert evaluate(figures(even(per_pod=needed // 3 + 1)), Thresholds()).passed


def test_keep_alive_counts_are_shown_not_judged_for_balance():
    counts = {"pod-a": 5000, "pod-b": 100, "pod-c": 100}
    verdict = evaluate(figures(counts, transport=CONNECTION_MODES["keep-alive"]), Thresholds())
    assert verdict.passed
    assert not any(c.check.startswith("balance") for c in verdict.verdicts)
    assert "per connection, not per request" in verdict.notes[0]


KEEP_ALIVE = Transport.KEEP_ALIVE


def test_keep_alive_fails_a_missing_pod_only_when_an_even_service_would_rarely_miss_one():
    # 2 users' connections over 3 pods leave one out always; 30 do so 0.002% of the time.
    few = evaluate(
        figures({"pod-a": 5000, "pod-b": 10}, transport=KEEP_ALIVE, users=2), Thresholds()
    )
    assert few.passed, few.text()
    assert "pods not judged" in few.notes[0]
    assert "2 users, a connection each at least leave a pod out 100.0%" in few.notes[0]
    many = evaluate(figures({"pod-a": 5000}, transport=KEEP_ALIVE, users=30), Thresholds())
    assert not check(many, "pods").passed
    assert "with chance 1.6e-05" in check(many, "pods").summary
    named = figures({"pod-a": 5000}, transport=KEEP_ALIVE, connections={"pod-a": 30})
    assert not evaluate(named, Thresholds()).passed


def test_the_chance_an_even_service_leaves_a_pod_out_is_exact():
    assert math.isclose(chance_a_pod_gets_none(2, 3), 1)
    assert math.isclose(chance_a_pod_gets_none(3, 3), 1 - 6 / 27)  # 3! of 3^3 reach all
    rng = np.random.default_rng(5551212)  # against independent draws
    draws = rng.integers(0, 5, size=(100_000, 12))
    missing = np.mean([len(set(row)) < 5 for row in draws])
    assert abs(missing - chance_a_pod_gets_none(12, 5)) < 0.01


def test_keep_alive_balance_is_judged_on_connections_once_there_are_enough():
    wanted = required_requests(3)
    pods = {"pod-a": 90_000, "pod-b": 1000, "pod-c": 1000}  # requests: pinned, not judged
    enough = evaluate(
        figures(pods, transport=KEEP_ALIVE, connections=even(per_pod=wanted // 3 + 1)),
        Thresholds(),
    )
    assert enough.passed, enough.text()
    assert {"balance chi-square (connections)", "balance skew (connections)"} <= {
        c.check for c in enough.verdicts
    }
    skewed = {"pod-a": 800, "pod-b": 500, "pod-c": 500}
    unbalanced = evaluate(figures(pods, transport=KEEP_ALIVE, connections=skewed), Thresholds())
    assert not check(unbalanced, "balance chi-square (connections)").passed
    few = evaluate(figures(pods, transport=KEEP_ALIVE, connections=even(per_pod=10)), Thresholds())
    assert few.passed
    assert (
        f"30 keep-alive connections, each one draw; the stated power needs {wanted}"
        in (few.notes[0])
    )


# Seeds of this file's own. Connection counts around each rule's edge: where the pods check
# starts to judge (20 connections for 3 pods, 33 for 5), and where balance does.
@pytest.mark.parametrize(("pods", "seed"), [(3, 1989), (5, 2001)])
def test_keep_alive_fails_an_even_service_less_than_once_in_500_runs(pods, seed):
    names = tuple(f"pod-{i}" for i in range(pods))
    rng = np.random.default_rng(seed)
    failed = runs = 0
    for connections in (5, 10, 20, 33, 60, required_requests(pods), 2 * required_requests(pods)):
        for _ in range(1500):
            counts = rng.multinomial(connections, [1 / pods] * pods)
            opened = {p: int(c) for p, c in zip(names, counts, strict=True) if c}
            answers = {pod: 20 * c for pod, c in opened.items()}
            run = figures(answers, transport=KEEP_ALIVE, connections=opened)
            failed += not evaluate(run, Thresholds(expected_pods=pods)).passed
            runs += 1
    # Each rule errs at most alpha (0.001), and only one of them judges a run.
    assert failed / runs < 0.002, (failed, runs)


def test_a_new_connection_run_fails_when_an_answer_came_on_a_used_connection():
    proven = evaluate(figures(even(), reused=(0, 3000)), Thresholds())
    assert check(proven, "a connection per request").passed
    assert "3000 distinct connections for 3000 answers" in (
        check(proven, "a connection per request").summary
    )
    reused = evaluate(figures(even(), reused=(12, 3000)), Thresholds())
    assert not reused.passed
    assert not check(reused, "a connection per request").passed
    unnamed = evaluate(figures(even()), Thresholds())
    assert "a connection per request" not in {c.check for c in unnamed.verdicts}


def test_a_single_expected_pod_is_not_judged_for_balance():
    verdict = evaluate(figures({"pod-a": 10}), Thresholds(expected_pods=1))
    assert verdict.passed
    assert "one pod" in verdict.notes[0]


def test_a_single_pod_over_keep_alive_connections_is_not_judged_for_balance_either():
    # As `python -m bench.locust_capacity` runs it: the verdict raised here once (a split of
    # one pod), and the capacity step failed its keep-alive run for it.
    counts = figures({"pod-a": 5000}, transport=KEEP_ALIVE, connections={"pod-a": 32})
    verdict = evaluate(counts, Thresholds(expected_pods=1))
    assert verdict.passed, verdict.text()
    assert "balance not judged: one pod, or both balance checks off" in verdict.notes


@pytest.mark.parametrize(
    "bad",
    [
        {"expected_pods": 0},
        {"max_skew": 0.5},
        {"alpha": 1.0},
        {"alpha": -0.1},
        {"max_error_ratio": 1.5},
        {"max_p95_ms": -1},
    ],
)
def test_impossible_thresholds_are_refused(bad):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Thresholds(**bad)


# --- memory --------------------------------------------------------------------------------------


def test_the_verdict_states_the_peak_memory_against_the_limit_in_text_and_json():
    judged = evaluate(figures(even()), Thresholds())
    assert "[memory]" not in judged.text()  # measured by the listeners, once judged
    judged = dataclasses.replace(
        judged, memory=memory.PeakMemory(180 * memory.MIB, 512 * memory.MIB, "master")
    )
    assert judged.text().endswith(
        "\n  [memory] master peak memory 180 MiB, 35% of its 512 MiB limit"
    )
    stated = json.loads(json.dumps(judged.to_json()))["memory"]
    assert stated == {
        "role": "master",
        "peak_mib": 180.0,
        "file_mib": None,
        "limit_mib": 512.0,
        "summary": "master peak memory 180 MiB, 35% of its 512 MiB limit",
    }
    unlimited = memory.PeakMemory(int(95.4 * memory.MIB))
    assert unlimited.text() == "Locust peak memory 95 MiB; no memory limit"
    files = memory.PeakMemory(194 * memory.MIB, 160 * memory.MIB, "master", 44 * memory.MIB)
    assert files.text() == (
        "master peak memory 194 MiB (44 MiB of it mapped files), 121% of its 160 MiB limit"
    )
    assert files.to_json()["file_mib"] == 44.0


@pytest.mark.parametrize(
    ("cgroup", "files", "limit"),
    [
        pytest.param("0::/\n", {"memory.max": "536870912\n"}, 512 * memory.MIB, id="v2-container"),
        pytest.param("0::/\n", {"memory.max": "max\n"}, None, id="v2-unlimited"),
        pytest.param(
            "0::/user.slice/run.scope\n",
            {"user.slice/run.scope/memory.max": "1073741824\n", "memory.max": "max\n"},
            1024 * memory.MIB,
            id="v2-own-group-first",
        ),
        pytest.param(
            "4:memory:/kubepods/pod1/abc\n0::/\n",
            {"memory/memory.limit_in_bytes": "536870912\n"},
            512 * memory.MIB,
            id="v1-container",
        ),
        pytest.param(
            "4:cpu,memory:/\n",
            {"memory/memory.limit_in_bytes": "9223372036854771712\n"},
            None,
            id="v1-unlimited",
        ),
        pytest.param("0::/\n", {}, None, id="none-readable"),
    ],
)
def test_the_memory_limit_is_the_cgroups(tmp_path, cgroup, files, limit):
    (tmp_path / "cgroup").write_text(cgroup)
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    assert memory.limit_bytes(tmp_path / "cgroup", tmp_path / "fs") == limit
    assert memory.limit_bytes(tmp_path / "no-such-file", tmp_path / "fs") is None


def test_the_peak_memory_is_this_processs_own_high_water_mark():
    # Not ru_maxrss, which keeps across exec the resident size of the parent at fork.
    script = (
        "from kubeverify.locust import memory; held = bytearray(64 * memory.MIB); "
        "held[::4096] = b'x' * len(held[::4096]); print(memory.peak_bytes())"
    )
    parents = bytearray(256 * memory.MIB)
    parents[::4096] = b"x" * len(parents[::4096])  # touched: resident, not only reserved
    child = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               check=True).stdout)  # fmt: skip
    assert 64 * memory.MIB < child < 200 * memory.MIB
    assert memory.peak_bytes() >= len(parents)


def test_the_peak_memory_falls_back_to_ru_maxrss_without_proc(tmp_path):
    assert memory.peak_bytes(tmp_path / "none") > 0
    (tmp_path / "status").write_text(
        "Name:\tlocust\nVmHWM:\t  199884 kB\nVmRSS:\t 1 kB\nRssFile:\t   45000 kB\n"
    )
    assert memory.peak_bytes(tmp_path / "status") == 199884 * 1024
    assert memory.file_bytes(tmp_path / "status") == 45000 * 1024
    assert memory.file_bytes(tmp_path / "none") is None


# --- the Locust image ----------------------------------------------------------------------------


def test_the_locust_image_context_holds_every_module_the_locustfile_imports(tmp_path):
    context = assemble_context(tmp_path)
    # Where the image's pip install puts them: the iris project's packages, kubeverify's.
    finder = modulefinder.ModuleFinder(path=[str(context), str(context / "kubeverify" / "src")])
    finder.run_script(str(context / "loadtest" / "locustfile.py"))
    ours = ("loadtest", "e2e", "service", "kubeverify")
    missing = sorted(name for name in finder.badmodules if name.split(".")[0] in ours)
    assert missing == []
    assert "kubeverify.locust.listeners" in finder.modules
    for project in (context, context / "kubeverify"):
        assert {"pyproject.toml", "README.md"} <= {path.name for path in project.iterdir()}


def test_the_locust_image_installs_a_lock_of_locust_and_scikit_learn_its_context_holds(tmp_path):
    dockerfile = (Path(__file__).parents[1] / "loadtest" / "Dockerfile").read_text()
    (path,) = re.findall(r"pip install --require-hashes --no-deps .*-r (\S+)", dockerfile)
    names = {
        re.split(r"[<>=!~;\[ ]", requirement)[0]
        for requirement in requirements(by_path(path), pyproject())
    }
    assert {"locust", "scikit-learn"} <= names
    assert (assemble_context(tmp_path) / path).is_file()


# Seeds of this file's own. Locust's chi-square judges a sample of the power calculation's
# size from however many responses came: drawn here as a run of twice that size.
@pytest.mark.parametrize(("pods", "seed"), [(3, 777), (5, 4242)])
def test_locusts_chi_square_has_the_stated_power_and_false_alarm_rate(pods, seed):
    names = tuple(f"pod-{i}" for i in range(pods))
    thresholds = Thresholds(expected_pods=pods, max_skew=0)
    total = 2 * required_requests(pods)
    rng = np.random.default_rng(seed)

    def failed(shares, runs):
        fails = 0
        for _ in range(runs):
            counts = dict(zip(names, map(int, rng.multinomial(total, shares)), strict=True))
            fails += not check(evaluate(figures(counts), thresholds), "balance chi-square").passed
        return fails / runs

    assert failed(worst_shares(pods), 2000) >= 0.985  # 0.99, less the noise of 2,000 runs
    assert failed([1 / pods] * pods, 4000) <= 0.004  # 0.001 expected: 4 of 4,000


def test_a_run_through_a_rollout_is_judged_as_one():
    """The pods named (before the change) answered, and as many others (their replacements);
    nothing failed, stated as the bound 0 failures give; balance is not judged."""
    before = ("old-a", "old-b", "old-c")
    thresholds = Thresholds(pod_names=before, max_error_ratio=0, pods_replaced=True)
    counts = {"old-a": 900, "old-b": 850, "old-c": 910, "new-a": 400, "new-b": 420, "new-c": 390}
    judged = evaluate(figures(counts), thresholds)
    assert judged.passed, judged.text()
    assert [v.check for v in judged.verdicts] == ["error ratio", "p95 latency", "pods replaced"]
    assert check(judged, "pods replaced").summary == (
        "3 of the 3 pods before the change answered, and 3 others after it"
    )
    errors = check(judged, "error ratio")
    assert errors.summary.startswith("0 of 3870 requests during it failed: the failure rate is")
    assert errors.rates.power == 0.95
    assert judged.notes == ("balance not judged: the pods were replaced during the run",)
    # The old ones alone, or a replacement short: the run fails, saying which.
    stuck = evaluate(figures({"old-a": 900, "old-b": 850, "old-c": 910}), thresholds)
    assert not check(stuck, "pods replaced").passed
    assert "fewer than the 3 that replace them" in check(stuck, "pods replaced").summary
    lost = evaluate(figures({"old-a": 900, "old-b": 850, "new-a": 1, "new-b": 1, "new-c": 1}),
                    thresholds)  # fmt: skip
    assert "no response from old-c" in check(lost, "pods replaced").summary
    with pytest.raises(ValueError, match="name the pods before the change"):
        Thresholds(pods_replaced=True)


def test_locust_judges_a_declared_split_on_the_groups_a_header_names():
    """Answers grouped by a header (a model version): judged against the declared split on a
    sample of the size its power needs, with its error rates; a wrong split fails, naming the
    shares; too few answers are not judged."""
    from kubeverify.locust.tally import split_rows
    from kubeverify.locust.verdict import declared_split

    declared = declared_split("1=75,2=25", "X-Model-Version")
    assert declared == {"1": 75.0, "2": 25.0}
    thresholds = Thresholds(declared_split=declared, max_skew=0, alpha=0.001)
    rng = np.random.default_rng(77)

    def run(shares, answers=3000):
        counts = dict(zip(("1", "2"), map(int, rng.multinomial(answers, shares)), strict=True))
        return evaluate(RunFigures(answers, 0, 20.0, even(), FRESH, groups=counts), thresholds)

    fits = check(run([0.75, 0.25]), "declared split")
    assert fits.passed, fits.explain()
    assert fits.figures["sampled"] == 1005  # 75/25's power calculation
    assert fits.rates.power == 0.99
    wrong = check(run([0.9, 0.1]), "declared split")
    assert not wrong.passed
    assert "(declared 25.0%)" in wrong.summary
    few = run([0.75, 0.25], answers=400)
    assert "declared split" not in {v.check for v in few.verdicts}
    assert "declared split not judged: 400 answers named a group; its power needs 1005" in (
        few.notes
    )
    assert split_rows({"1": 30, "2": 10}, declared) == [
        {"name": "1", "responses": 30, "share": "75.0%", "declared": "75.0%"},
        {"name": "2", "responses": 10, "share": "25.0%", "declared": "25.0%"},
    ]
    with pytest.raises(ValueError, match="needs --split-header"):
        declared_split("1=75,2=25", "")
    with pytest.raises(ValueError, match="'2:25' is not GROUP=WEIGHT"):
        declared_split("1=75,2:25", "X-Model-Version")


def test_the_tally_counts_groups_and_carries_them_from_workers():
    tally = Tally()
    tally.record("pod-a", "node-1", None, "1")
    tally.record("pod-b", "node-1", None, "2")
    master = Tally()
    master.merge(tally.take())
    assert master.groups == {"1": 1, "2": 1}
    assert tally.groups == {}


def test_locusts_per_pod_health_states_the_power_its_answers_reached():
    def run(per_pod, **thresholds):
        answers = {pod: [(0.004 + 0.0001 * (i % 7), False)] * per_pod for i, pod in enumerate(PODS)}
        judged = evaluate(
            figures(even(per_pod), answers=answers), Thresholds(**thresholds)
        ).verdicts
        (health,) = [v for v in judged if v.check.startswith("each pod as healthy")]
        return health

    short = run(100)
    assert short.passed, short.line()
    assert short.underpowered, short.line()
    assert "short of the 0.99 aimed at (a longer run gives more answers)" in short.summary
    assert "power 0." in short.line()
    assert "below the 0.99 aimed at" in short.line()
    assert not run(100, enforce_power=True).passed
    answers = {pod: [(0.004, False)] * 100 for pod in PODS}
    printed = evaluate(figures(even(100), answers=answers), Thresholds()).text()
    assert "  [ok, at low power] each pod as healthy as its siblings: per pod: not enough" in (
        printed
    )
    full = run(400)
    assert full.passed, full.line()
    assert not full.underpowered, full.line()
