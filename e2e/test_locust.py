"""The Locust load test on the cluster: its verdict passes on the real Service and fails, naming
the pods that got nothing, when the Service is made to send every connection to one pod; and a
rollout restart under keep-alive users fails none of their requests (the pods drain).

Runs in the e2e session: the `e2e` extra installs Locust.
"""

import csv
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from e2e import nodeport
from kubeverify import (
    Observation,
    no_failures,
    verdict_from_json,
    wait_until,
    wait_until_every_pod_answers,
)
from kubeverify.locust import aggregated, headless_command, started
from kubeverify.locust import run as run_locust

USERS = 10
SECONDS = 12  # enough for the 1,340 answers its balance sample takes: 2,200 at about 185 a second
SKEWED_SECONDS = 6  # the pods that got nothing show in any run
SKEW_LABEL = "iris-e2e-skew"
LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtest" / "locustfile.py"
DRAIN_USERS = 20
DRAIN_MAX_SECONDS = 300  # Locust's bound; the test stops it once the restart is over

pytestmark = pytest.mark.usefixtures("settled_pods")


@pytest.fixture(scope="module")
def reports(pytestconfig) -> Path:
    directory = Path(pytestconfig.getoption("reports_dir"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _locust(endpoint, pods, reports, name, seconds):
    command = headless_command(
        LOCUSTFILE,
        endpoint.base_url,
        users=USERS,
        seconds=seconds,
        csv_prefix=reports / f"e2e-locust-{name}",
        html=reports / f"e2e-locust-{name}.html",
        # A new connection per request: kube-proxy picks a pod for every request, so the
        # per-pod counts judge balancing. The default thresholds: max/min 1.5, alpha 0.001,
        # 1% errors, p95 500 ms.
        extra=["--connection-mode", "new", "--pod-names", ",".join(pods)],
    )
    return run_locust(command, seconds)


def _verdict(output: str) -> str:
    return output[output.index("\npod ") :].strip() if "\npod " in output else output[-3000:]


def _locust_verdicts(reports: Path, name: str) -> list:
    """The verdicts Locust's listeners wrote for the run `name`, with their error rates."""
    written = json.loads((reports / f"e2e-locust-{name}_verdict.json").read_text())
    return [verdict_from_json(data) for data in written["verdicts"]]


def test_locust_verdict_passes_on_the_service(settled_pods, endpoint, reports, run, record):
    done = _locust(endpoint, settled_pods, reports, "balanced", SECONDS)
    verdict = _verdict(done.stdout)
    run.timer.note(f"Locust, {USERS} users for {SECONDS} s at {endpoint.base_url}:\n{verdict}")
    for each in _locust_verdicts(reports, "balanced"):
        record(replace(each, check=f"Locust through the Service: {each.check}"))
    assert done.returncode == 0, f"{verdict}\n{done.stderr[-3000:]}"
    assert "verdict: PASSED" in verdict
    for pod in settled_pods:
        assert pod in verdict


def test_locust_verdict_fails_naming_the_pods_a_skewed_service_starves(
    settled_pods, kube, endpoint, reports, run, record
):
    only = settled_pods[0]
    starved = sorted(settled_pods[1:])
    kube.kubectl("label", "pod", only, f"{SKEW_LABEL}=only")
    try:
        # The selector keeps app=iris-classifier and gains the label.
        with nodeport.selecting(
            kube, {SKEW_LABEL: "only"}, [only], back_to=settled_pods, added=True
        ):
            wait_until_every_pod_answers(endpoint, [only])
            done = _locust(endpoint, settled_pods, reports, "skewed", SKEWED_SECONDS)
    finally:
        kube.kubectl("label", "pod", only, f"{SKEW_LABEL}-")
    verdict = _verdict(done.stdout)
    run.timer.note(f"Locust against a Service selecting only {only}:\n{verdict}")
    for each in _locust_verdicts(reports, "skewed"):
        if each.check == "pods":  # what a Service that starves two pods must fail
            record(replace(each, check=f"Locust, Service selecting only {only}: pods",
                           control=True))  # fmt: skip
    assert done.returncode == 1, f"{verdict}\n{done.stderr[-3000:]}"
    assert "verdict: FAILED (pods)" in verdict
    assert f"2 short, no response from {', '.join(starved)}" in verdict


def _written_since(path: Path, since: float) -> bool:
    """Whether `path` was written at `since` (time.time()) or later: an earlier run's report
    of the same name is not this run's, and is left as it is until Locust overwrites it."""
    return path.exists() and path.stat().st_mtime >= since


def _requests_so_far(prefix: Path, at_least: int, since: float) -> Observation:
    """Requests Locust has counted, from the stats CSV it rewrites every second."""
    if not _written_since(Path(f"{prefix}_stats.csv"), since):
        return Observation(False, "no stats of this run yet")
    try:
        requests = int(aggregated(prefix)["Request Count"])
    except (OSError, StopIteration, KeyError, ValueError) as error:
        return Observation(False, f"no stats yet: {error!r}")
    return Observation(requests >= at_least, f"{requests} requests", requests)


def test_a_rollout_restart_under_keep_alive_users_fails_no_request(
    settled_pods, deployment, endpoint, target, reports, run, record
):
    # Keep-alive users hold their connections to the old pods through the restart: each
    # old pod must tell them to reconnect (Connection: close) rather than reset them.
    prefix = reports / "e2e-locust-drain"
    launched = time.time()
    command = headless_command(
        LOCUSTFILE, endpoint.base_url, users=DRAIN_USERS, seconds=DRAIN_MAX_SECONDS,
        csv_prefix=prefix,
        extra=["--connection-mode", "keep-alive", "--think-time", "0.05",
               "--max-error-ratio", "0", "--pod-names", ",".join(settled_pods),
               "--pods-replaced"],
    )  # fmt: skip
    with started(command, reports / "e2e-locust-drain.log"):
        before = wait_until(
            lambda: _requests_so_far(prefix, 200, launched),
            what="Locust's users sending",
            timeout=60,
        ).value
        restart_began = time.monotonic()
        deployment.rollout_restart()
        new_pods = deployment.wait_settled(target.replicas, timeout=240)
        seconds = time.monotonic() - restart_began
        during = wait_until(
            lambda: _requests_so_far(prefix, before + 1, launched),
            what="Locust's stats",
            timeout=10,
        ).value
        wait_until(
            lambda: _requests_so_far(prefix, during + 200, launched),
            what="traffic after",
            timeout=60,
        )
    for suffix in ("_stats.csv", "_pods.csv", "_verdict.json"):
        written = Path(f"{prefix}{suffix}")
        assert _written_since(written, launched), f"Locust did not write {written} in this run"
    # Locust's own verdict on the run, judged as one through a rollout.
    judged = _locust_verdicts(reports, "drain")
    for each in judged:
        record(replace(each, check=f"Locust through a rollout restart: {each.check}"))
    assert [v.check for v in judged if not v.passed] == [], "\n".join(v.line() for v in judged)
    row = aggregated(prefix)
    requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    with Path(f"{prefix}_pods.csv").open(newline="") as handle:
        answered = {r["name"] for r in csv.DictReader(handle) if r["kind"] == "pod"}
    spanning = during - before
    verdict = record(
        no_failures(
            f"rollout restart under {DRAIN_USERS} keep-alive Locust users",
            spanning,
            failures,
            minimum=100,
            seconds=round(seconds, 1),
            requests_in_all=requests,
        )
    )
    run.timer.note(f"pods that answered the keep-alive Locust users: {sorted(answered)}")
    assert verdict.passed, (
        f"{verdict.explain()}\n{(reports / 'e2e-locust-drain.log').read_text()[-3000:]}"
    )
    assert set(new_pods) <= answered, f"keep-alive users never reached {set(new_pods) - answered}"
    assert set(settled_pods) <= answered
