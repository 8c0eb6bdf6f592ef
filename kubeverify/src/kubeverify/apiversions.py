"""Manifests written for current Kubernetes, applied on a server that predates one of their API
versions.

A manifest names the apiVersion current Kubernetes serves, and a server refuses an object in a
version it does not serve. FALLBACKS names, for each such (apiVersion, kind), the older version
that carries the same object: an object goes in it only when the server serves that one and not
the one written. A server that serves neither gets the object as written, and says why it
refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection


def _v1beta1_pdb_differs(document: dict) -> str | None:
    spec = document.get("spec") or {}
    selector = spec.get("selector") or {}
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return "an empty selector selects no pod, where policy/v1 selects every pod"
    if "unhealthyPodEvictionPolicy" in spec:
        return "there is no unhealthyPodEvictionPolicy"
    return None


# (apiVersion, kind) -> (the older apiVersion, what in an object would mean something else there,
# if anything). Each entry is exact: only versions whose fields agree belong here.
FALLBACKS: dict[tuple[str, str], tuple[str, Callable[[dict], str | None]]] = {
    # policy/v1 from Kubernetes 1.21 on; 1.20 serves policy/v1beta1 only (removed in 1.25).
    ("policy/v1", "PodDisruptionBudget"): ("policy/v1beta1", _v1beta1_pdb_differs),
}


def as_served(documents: list[dict], api_versions: Collection[str]) -> tuple[list[dict], list[str]]:
    """The documents as a server serving `api_versions` takes them, and a line for each object
    moved to an older version. An object the older version would read otherwise is refused
    (ValueError) rather than applied with another meaning."""
    served, moved = [], []
    for document in documents:
        written, kind = document.get("apiVersion"), document.get("kind")
        fallback = FALLBACKS.get((written, kind))
        if fallback is None or written in api_versions or fallback[0] not in api_versions:
            served.append(document)
            continue
        older, differs = fallback
        name = (document.get("metadata") or {}).get("name")
        difference = differs(document)
        if difference:
            raise ValueError(
                f"{kind} {name}: the server does not serve {written}, and in {older}, which it "
                f"serves, {difference}"
            )
        served.append({**document, "apiVersion": older})
        moved.append(f"{kind} {name}: the server does not serve {written}; applied as {older}")
    return served, moved
