"""When a Deployment counts as settled, on a stand-in for the cluster: its pods all there and
ready, and each Service's endpoints exactly them, but for pods of another Deployment the
Service selects on purpose (a canary) while those live; a pod that is gone but still an
endpoint keeps it unsettled."""

from datetime import UTC, datetime
from types import SimpleNamespace

from kubeverify.deployment import Deployment
from kubeverify.kube import PodState
from kubeverify.target import load
from tests.test_target import MINIMAL


def pod(name, ready=True, terminating=False):
    return PodState(name, "worker", "10.0.0.1", "Running", ready, terminating, 0)


class StandInKube:
    namespace = "default"

    def __init__(self, target_pods, canary_pods, endpoints):
        self.target_pods, self.canary_pods, self.endpoints = target_pods, canary_pods, endpoints
        status = SimpleNamespace(observed_generation=1, updated_replicas=3, ready_replicas=3,
                                 available_replicas=3, replicas=3)  # fmt: skip
        deployment = SimpleNamespace(
            spec=SimpleNamespace(replicas=3), status=status, metadata=SimpleNamespace(generation=1)
        )
        self.apps = SimpleNamespace(read_namespaced_deployment=lambda name, ns: deployment)

    def pods(self, selector):
        return self.target_pods

    def endpoint_pods(self, service):
        return self.endpoints, set()

    def selected_pods(self, service):
        return {p.name for p in self.target_pods + self.canary_pods}


def settled(tmp_path, target_pods, canary_pods, endpoints) -> bool:
    (tmp_path / "manifests").mkdir(exist_ok=True)
    (tmp_path / "verify.toml").write_text(MINIMAL)
    kube = StandInKube(target_pods, canary_pods, endpoints)
    return Deployment(kube, load(tmp_path / "verify.toml"), "web:1").settled(3).done


def test_a_canary_behind_the_service_does_not_unsettle_the_deployment(tmp_path):
    ours = [pod("web-a"), pod("web-b"), pod("web-c")]
    endpoints = {"web-a", "web-b", "web-c"}
    assert settled(tmp_path, ours, [], endpoints)
    assert settled(tmp_path, ours, [pod("canary-a")], endpoints | {"canary-a"})


def test_a_pod_gone_but_still_an_endpoint_keeps_it_unsettled(tmp_path):
    ours = [pod("web-a"), pod("web-b"), pod("web-c")]
    assert not settled(tmp_path, ours, [], {"web-a", "web-b", "web-c", "web-gone"})
    assert not settled(tmp_path, ours, [], {"web-a", "web-b"})  # one not yet behind it
    assert not settled(tmp_path, [*ours[:2], pod("web-c", terminating=True)], [],
                       {"web-a", "web-b", "web-c"})  # fmt: skip


def _api_pod(deleted=False, terminated=False):
    from kubernetes import client as k8s

    state = k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(exit_code=0) if terminated else None,
        running=None if terminated else k8s.V1ContainerStateRunning(),
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name="web-1",
            deletion_timestamp=datetime.now(UTC) if deleted else None,
            deletion_grace_period_seconds=30 if deleted else None,
        ),
        spec=k8s.V1PodSpec(containers=[], node_name="worker"),
        status=k8s.V1PodStatus(
            phase="Running",
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="web", image="web", image_id="", ready=True, restart_count=0, state=state
                )
            ],
        ),
    )


def test_a_deleted_pod_is_gone_once_it_exited_and_not_before():
    from kubeverify.kube import _pod_state

    assert not _pod_state(_api_pod()).gone  # not deleted
    assert not _pod_state(_api_pod(terminated=True)).gone  # exited, not deleted: restarts
    # Deleted and running, however long ago: in its preStop sleep, or ignoring SIGTERM, it may
    # still serve what it holds.
    assert not _pod_state(_api_pod(deleted=True)).gone
    assert _pod_state(_api_pod(deleted=True, terminated=True)).gone


def test_a_pre_stop_sleep_is_read_however_it_is_written():
    from kubeverify.kube import pre_stop_sleep

    def spec(pre_stop):
        return {"containers": [{"lifecycle": {"preStop": pre_stop}}, {"name": "sidecar"}]}

    assert pre_stop_sleep(spec({"exec": {"command": ["sleep", "5"]}})) == 5
    assert pre_stop_sleep(spec({"exec": {"command": ["/bin/sleep", "7"]}})) == 7
    assert pre_stop_sleep(spec({"exec": {"command": ["sh", "-c", "sleep 3"]}})) == 3
    assert pre_stop_sleep(spec({"sleep": {"seconds": 4}})) == 4  # Kubernetes 1.29's action
    assert pre_stop_sleep(spec({"exec": {"command": ["sh", "-c", "nginx -s quit"]}})) is None
    assert pre_stop_sleep({"containers": [{}]}) is None
