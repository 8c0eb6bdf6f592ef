"""The load test's runners: in-cluster manifests, the cluster runner's bounds, capacity figures.

These modules stand on the e2e harness (kubernetes, pytest-kind) and on Locust's psutil, which
the `e2e` extra brings; without it they are skipped, and say so.
"""

from pathlib import Path
from types import SimpleNamespace

import pytest

for _module in ("kubernetes", "pytest_kind", "psutil"):
    pytest.importorskip(_module, reason="the e2e extra is not installed")

from kubernetes import client as k8s  # noqa: E402

from bench.locust_capacity import Capacity  # noqa: E402
from loadtest.incluster import Ending, InClusterRun, observe, render, run_in_cluster  # noqa: E402
from loadtest.run import _killed, parse, verdict_line  # noqa: E402

# --- in-cluster run ------------------------------------------------------------------------------


def test_in_cluster_manifests_are_set_for_the_run():
    run = InClusterRun(
        image="iris-locust:test", workers=3, users=40, spawn_rate=10, seconds=30,
        locust_args=("--max-skew", "1.3"),
    )  # fmt: skip
    master, workers = render(run)
    kinds = [doc["kind"] for doc in master]
    assert kinds == ["Service", "Pod"]  # the Service first, so the workers see its variables
    pod = master[1]["spec"]
    assert {c["image"] for c in pod["containers"]} == {"iris-locust:test"}
    args = pod["containers"][0]["args"]
    assert args[:4] == ["--users=40", "--spawn-rate=10", "--run-time=30s", "--expect-workers=3"]
    assert args[-2:] == ["--max-skew", "1.3"]
    assert pod["activeDeadlineSeconds"] == run.deadline_s > 30
    (job,) = workers
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 3
    assert job["spec"]["activeDeadlineSeconds"] == run.deadline_s
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "iris-locust:test"


def test_the_in_cluster_pods_reach_services_by_injected_variables_not_dns():
    master, workers = render(InClusterRun("i", 2, 10, 10, 10))
    master_script = master[1]["spec"]["containers"][0]["command"][2]
    worker_script = workers[0]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert '"http://$IRIS_CLASSIFIER_SERVICE_HOST:$IRIS_CLASSIFIER_SERVICE_PORT"' in master_script
    assert '--master-host "$LOCUST_MASTER_SERVICE_HOST"' in worker_script
    assert master[0]["metadata"]["name"] == "locust-master"  # hence LOCUST_MASTER_SERVICE_*


@pytest.mark.parametrize(
    "argv", [["--users", "0"], ["--users", "100000"], ["--run-time", "0"], ["--workers", "50"]]
)
def test_the_runner_refuses_unbounded_runs(argv, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert "must lie in" in capsys.readouterr().err


def test_the_runner_passes_options_it_does_not_know_to_locust():
    args, locust_args = parse(["--users", "5", "--max-skew", "1.3", "--connection-mode", "new"])
    assert args.users == 5
    assert locust_args == ["--max-skew", "1.3", "--connection-mode", "new"]


# --- how an in-cluster run ended, from its pods' status -----------------------------------------

RUN = InClusterRun("iris-locust:test", 2, 20, 20, 60)
MANIFESTS = render(RUN)
MASTER_SPEC = MANIFESTS[0][1]["spec"]
WORKER_SPEC = MANIFESTS[1][0]["spec"]["template"]["spec"]


def running():
    return k8s.V1ContainerState(running=k8s.V1ContainerStateRunning())


def terminated(code, reason=None):
    return k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(exit_code=code, reason=reason)
    )


def waiting(reason, message=None):
    return k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason=reason, message=message))


def pod(name, spec, *, phase="Running", reason=None, message=None, restarts=0, last=None,
        **states):  # fmt: skip
    """A V1Pod as the API gives it: its spec the rendered manifest's (the containers, their
    memory limits and the deadline), its status each container's state."""
    containers = [
        k8s.V1Container(
            name=c["name"], resources=k8s.V1ResourceRequirements(limits=c["resources"]["limits"])
        )
        for c in spec["containers"]
    ]
    statuses = [
        k8s.V1ContainerStatus(
            name=container,
            image="iris-locust:test",
            image_id="",
            ready=True,
            restart_count=restarts if container == "locust" else 0,
            state=state,
            last_state=last if container == "locust" else None,
        )
        for container, state in states.items()
    ]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1PodSpec(
            containers=containers, active_deadline_seconds=spec.get("activeDeadlineSeconds")
        ),
        status=k8s.V1PodStatus(
            phase=phase, reason=reason, message=message, container_statuses=statuses
        ),
    )


def master(**kwargs):
    kwargs.setdefault("reports", running())
    return pod("locust-master", MASTER_SPEC, **kwargs)


def worker(letter, **kwargs):
    kwargs.setdefault("locust", running())
    return pod(f"locust-worker-{letter}", WORKER_SPEC, **kwargs)


WORKERS = [worker("a"), worker("b")]


def test_the_run_goes_on_while_the_master_and_its_workers_run():
    seen = observe(master(locust=running()), WORKERS)
    assert not seen.done
    assert seen.detail == (
        "locust-master: Running; locust running; reports running; "
        "locust-worker-a: Running; locust running; locust-worker-b: Running; locust running"
    )


@pytest.mark.parametrize(
    ("code", "reason", "verdict"),
    [(0, "Completed", "passed"), (1, "Error", "FAILED (exit code 1)")],
)
def test_a_master_that_ended_with_its_verdict_finished_the_load_test(code, reason, verdict):
    ended = [worker(letter, locust=terminated(0, "Completed")) for letter in "ab"]
    seen = observe(master(locust=terminated(code, reason)), ended)
    assert seen.done
    ending = seen.value.judged(verdict_written=True)
    assert ending == Ending(code, (), seen.value.states)
    assert ending.finished
    assert ending.exit_code == code
    assert verdict_line(ending.exit_code, ending.problems) == f"[load] Locust's verdict: {verdict}"


def test_a_master_that_ended_without_writing_its_verdict_did_not_finish():
    # As when it gives up waiting for its workers: exit code 1, the verdict's own.
    ending = observe(master(locust=terminated(1, "Error")), WORKERS).value.judged(False)
    assert not ending.finished
    assert ending.problems == (
        "the Locust master ended (exit code 1) without a verdict: see its log",
    )


def test_a_master_killed_for_memory_is_named_so_with_its_limit_and_its_pods_state():
    seen = observe(master(locust=terminated(137, "OOMKilled")), WORKERS)
    assert seen.done
    ending = seen.value.judged(verdict_written=False)
    assert ending.problems == (
        "the Locust master was killed for memory at its 512Mi limit (OOMKilled)",
    )
    assert not ending.finished
    assert ending.exit_code == 137
    assert ending.states[0] == (
        "locust-master: Running; locust terminated (OOMKilled, exit code 137); reports running"
    )
    assert verdict_line(ending.exit_code, ending.problems) == (
        "[load] Locust's verdict: none, the load test did not finish (exit code 137): the Locust "
        "master was killed for memory at its 512Mi limit (OOMKilled)"
    )


def test_an_evicted_master_is_named_evicted_with_the_kubelets_words():
    message = "The node was low on resource: memory. Container locust was using 480Mi."
    evicted = master(
        phase="Failed", reason="Evicted", message=message,
        locust=terminated(137, "ContainerStatusUnknown"), reports=terminated(137),
    )  # fmt: skip
    seen = observe(evicted, WORKERS)
    assert seen.done
    assert seen.value.problems == (f"the Locust master was evicted: {message}",)
    assert not seen.value.finished
    assert seen.value.states[0].startswith("locust-master: Failed (Evicted); locust terminated")


def test_a_master_stopped_at_its_deadline_or_killed_by_a_signal_is_named_so():
    stopped = master(phase="Failed", reason="DeadlineExceeded", locust=running())
    assert observe(stopped, WORKERS).value.problems == (
        f"the Locust master was stopped at its deadline ({RUN.deadline_s} s)",
    )
    killed = observe(master(locust=terminated(143, "Error")), WORKERS).value
    assert killed.problems == ("the Locust master was killed by SIGTERM (exit code 143, Error)",)
    assert killed.exit_code == 143


def test_a_worker_killed_for_memory_while_the_master_runs_stops_the_run_and_says_so():
    # The Job restarts it in place; its users were gone meanwhile, and Locust's master would
    # rebalance or, with no worker left, stop the test and wait out its run time.
    restarted = worker("a", restarts=1, last=terminated(137, "OOMKilled"))
    seen = observe(master(locust=running()), [restarted, worker("b")])
    assert seen.done
    ending = seen.value
    assert ending.code is None
    assert ending.problems[0] == (
        "the Locust worker locust-worker-a was killed for memory at its 512Mi limit "
        "(OOMKilled), and was restarted (1 restart)"
    )
    assert "its master still running" in ending.problems[1]
    assert not ending.finished
    assert ending.exit_code == 1
    assert ending.states[1] == (
        "locust-worker-a: Running; locust running, 1 restart, last ended (OOMKilled, exit code 137)"
    )
    assert verdict_line(ending.exit_code, ending.problems).startswith(
        "[load] Locust's verdict: none, the load test did not finish (exit code 1): the Locust "
        "worker locust-worker-a was killed for memory"
    )


def test_an_evicted_or_stuck_worker_stops_the_run():
    evicted = worker("a", phase="Failed", reason="Evicted", message="low on memory",
                     locust=terminated(137))  # fmt: skip
    stuck = worker("b", locust=waiting("ErrImageNeverPull", "image not present"))
    ending = observe(master(locust=running()), [evicted, stuck]).value
    assert ending.problems[:2] == (
        "the Locust worker locust-worker-a was evicted: low on memory",
        "the Locust worker locust-worker-b cannot start its locust container: "
        "ErrImageNeverPull: image not present",
    )


def test_a_master_ending_well_after_a_worker_failed_did_not_finish_the_load_test():
    crashed = worker("a", locust=terminated(2, "Error"))
    ending = observe(master(locust=terminated(0, "Completed")), [crashed]).value
    assert ending.judged(verdict_written=True).problems == (
        "the Locust worker locust-worker-a ended with exit code 2 (Error)",
    )
    assert ending.exit_code == 1  # the master passed a load that was not the one asked for


def test_a_locust_here_killed_by_a_signal_did_not_finish():
    assert _killed(-9) == (137, ("Locust was killed by SIGKILL",))
    assert _killed(1) == (1, ())


class FakeCluster:
    """Enough of a KubeTarget for run_in_cluster: the pods as given, kubectl's calls recorded,
    `kubectl cp` bringing back the files the master's reports volume holds."""

    namespace = "default"

    def __init__(self, master, workers, reports: dict[str, str]):
        self.core = SimpleNamespace(
            read_namespaced_pod=lambda name, namespace: master,
            list_namespaced_pod=lambda namespace, label_selector: SimpleNamespace(items=workers),
        )
        self.reports = reports
        self.calls: list[tuple[str, ...]] = []

    def kubectl(self, *args, stdin=None):
        self.calls.append(args)
        if args[0] == "logs":
            return "The last worker quit, stopping test.\n"
        if args[0] == "cp":
            for name, text in self.reports.items():
                Path(args[-1], name).write_text(text)
        return ""

    def pods(self, selector):
        return []  # none left once deleted


def run_fake(tmp_path, master_pod, workers, reports):
    said: list[str] = []
    (tmp_path / "locust-in-cluster_verdict.json").write_text("{}")  # an earlier run's
    cluster = FakeCluster(master_pod, workers, reports)
    ending = run_in_cluster(cluster, RUN, tmp_path, said.append)
    return ending, "\n".join(said)


def test_the_runner_says_the_master_was_killed_for_memory_and_the_load_test_did_not_finish(
    tmp_path,
):
    ending, said = run_fake(
        tmp_path, master(locust=terminated(137, "OOMKilled")), WORKERS,
        {"locust-in-cluster_stats.csv": "Name\n"},  # no verdict: it died judging
    )  # fmt: skip
    assert ending.exit_code == 137
    assert not (tmp_path / "locust-in-cluster_verdict.json").exists()
    assert (
        "[load] the load test did not finish: the Locust master was killed for memory at its "
        "512Mi limit (OOMKilled)\n[load] the Locust pods when it was seen:\nlocust-master: "
        "Running; locust terminated (OOMKilled, exit code 137); reports running\n"
    ) in said
    assert "The last worker quit, stopping test." in said  # the master's log


def test_the_runner_reports_a_finished_run_as_locusts_verdict(tmp_path):
    ending, said = run_fake(
        tmp_path, master(locust=terminated(0, "Completed")), [],
        {"locust-in-cluster_verdict.json": '{"passed": true}'},
    )  # fmt: skip
    assert ending.finished
    assert ending.exit_code == 0
    assert "did not finish" not in said


# --- capacity ------------------------------------------------------------------------------------


def capacity(rps=1000.0, locust_cpu=0.5, server_cpu=0.5):
    return Capacity("new", 10, 0, rps, 1.0, 2.0, locust_cpu, server_cpu, 0)


def test_capacity_names_the_saturated_side():
    assert capacity(locust_cpu=0.95).bound_by() == "Locust"
    assert capacity(server_cpu=0.95).bound_by() == "server"
    assert capacity().bound_by() == "neither"


def test_capacity_estimates_a_whole_locust_core():
    assert capacity(rps=1000, locust_cpu=0.5).rps_per_locust_core == 2000
    assert capacity(locust_cpu=0).rps_per_locust_core == 0
