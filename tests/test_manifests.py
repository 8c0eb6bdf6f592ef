"""The iris manifests agree with one another: the canary is the stable Deployment but for what
makes it a canary, and both tracks sit behind the Services."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def deployment(path: Path) -> dict:
    (found,) = [doc for doc in documents(path) if doc["kind"] == "Deployment"]
    return found


def test_the_canary_is_the_stable_deployment_but_for_name_replicas_track_and_model():
    stable = deployment(MANIFESTS / "deployment.yaml")
    canary = deployment(MANIFESTS / "canary" / "deployment.yaml")
    made = copy.deepcopy(stable)
    made["metadata"]["name"] = "iris-classifier-canary"
    made["spec"]["replicas"] = 1
    for labels in (
        made["spec"]["selector"]["matchLabels"],
        made["spec"]["template"]["metadata"]["labels"],
        made["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"][
            "matchLabels"
        ],
    ):
        labels["track"] = "canary"
    made["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "MODEL_PATH", "value": "/opt/iris/model-v2.json"}
    )
    assert canary == made


def test_both_tracks_are_behind_every_service():
    stable = deployment(MANIFESTS / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    canary = deployment(MANIFESTS / "canary" / "deployment.yaml")["spec"]["template"]["metadata"][
        "labels"
    ]
    for service in documents(MANIFESTS / "service.yaml"):
        selector = service["spec"]["selector"]
        assert selector.items() <= stable.items(), service["metadata"]["name"]
        assert selector.items() <= canary.items(), service["metadata"]["name"]
