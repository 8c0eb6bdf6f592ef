"""HAProxy from Debian's package (this folder's Dockerfile), where the cluster's provider builds
images: the weighted routes of the splits checks (route.yaml), and the sidecar that makes one
pod of the per-pod health control answer 503s."""

from pathlib import Path

from kubeverify import Image

DIRECTORY = Path(__file__).resolve().parent
IMAGE = "iris-route:e2e"  # route.yaml's tag
URL = "http://127.0.0.1:30082"  # route.yaml's NodePort, which kind-config.yaml publishes
BUILT = Image(IMAGE, DIRECTORY, DIRECTORY / "Dockerfile")


def made_available(stage) -> bool:
    """The image built and in the nodes where the provider builds images (kind); False where
    it pulls them, and this one is published nowhere."""
    if not stage.provider.builds:
        return False
    stage.provider.make_available(BUILT)
    return True
