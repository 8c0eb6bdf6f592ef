"""The load test's runners: in-cluster manifests, the cluster runner's bounds, capacity figures.

These modules stand on the e2e harness (kubernetes, pytest-kind) and on Locust's psutil, which
the `e2e` extra brings; without it they are skipped, and say so.
"""

import pytest

for _module in ("kubernetes", "pytest_kind", "psutil"):
    pytest.importorskip(_module, reason="the e2e extra is not installed")

from bench.locust_capacity import Capacity  # noqa: E402
from loadtest.incluster import InClusterRun, render  # noqa: E402
from loadtest.run import parse  # noqa: E402

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
