"""The Deployment heals and rolls while traffic runs."""

import time

from e2e.harness import deploy
from e2e.harness.traffic import BackgroundTraffic

RECOVERY_DEADLINE = 90
# Deleting a pod is graceful (preStop, SIGTERM); a request may still meet a closing socket.
MAX_ERROR_RATIO_ON_POD_DELETION = 0.01


def test_deleted_pod_is_replaced_within_the_deadline(
    deployment, three_replicas, service_url, run, report
):
    victim = three_replicas[0]
    traffic = BackgroundTraffic(service_url)
    with traffic.running():
        started = time.monotonic()
        deployment.delete_pod(victim)
        pods = deployment.wait_settled(deploy.DEFAULT_REPLICAS, timeout=RECOVERY_DEADLINE)
        recovered = time.monotonic() - started
    run.timer.note(f"deleted {victim}: 3 ready again in {recovered:.1f} s; {traffic.summary()}")
    report.figures["pod_deletion"] = {
        "recovery_seconds": round(recovered, 1),
        "requests": len(traffic.outcomes),
        "error_ratio": traffic.error_ratio(),
    }
    assert victim not in pods
    assert len(pods) == deploy.DEFAULT_REPLICAS
    assert traffic.error_ratio() <= MAX_ERROR_RATIO_ON_POD_DELETION, traffic.summary()


def test_rollout_restart_fails_no_request(deployment, three_replicas, service_url, run, report):
    traffic = BackgroundTraffic(service_url)
    with traffic.running():
        started = time.monotonic()
        deployment.rollout_restart()
        pods = deployment.wait_settled(deploy.DEFAULT_REPLICAS, timeout=240)
        took = time.monotonic() - started
    run.timer.note(f"rollout restart done in {took:.1f} s; {traffic.summary()}")
    report.figures["rollout_restart"] = {
        "seconds": round(took, 1),
        "requests": len(traffic.outcomes),
        "failed": len(traffic.failures),
    }
    assert not set(pods) & set(three_replicas), "some pods were not replaced"
    assert not traffic.failures, traffic.summary()
