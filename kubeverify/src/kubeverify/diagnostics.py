"""What a person needs to see when a check fails: pods, recent events, logs of failing pods."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from kubeverify.kube import KubeTarget

EVENTS = 25
LOG_LINES = 30
MESSAGE_TAIL = 200  # characters of a container's end message: runc's cause is at its end


def cluster_state(target: KubeTarget, selector: str) -> str:
    """A readable dump of the cluster; never raises, since it runs while something has failed."""
    sections = []
    for title, collect in (
        ("nodes", lambda: _nodes(target)),
        (f"pods ({selector})", lambda: _pods(target, selector)),
        (f"last {EVENTS} events", lambda: _events(target)),
        ("logs of pods that are not ready or restarted", lambda: _logs(target, selector)),
    ):
        try:
            body = collect()
        except Exception as error:  # the dump must survive a half-broken cluster
            body = f"(could not read: {type(error).__name__}: {error})"
        sections.append(f"--- {title} ---\n{body or '(none)'}")
    return "\n".join(sections)


def _nodes(target: KubeTarget) -> str:
    lines = []
    for node in target.core.list_node().items:
        ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "?")
        lines.append(
            f"{node.metadata.name:<30} ready={ready} "
            f"version={node.status.node_info.kubelet_version}"
        )
    return "\n".join(lines)


def _pods(target: KubeTarget, selector: str) -> str:
    return "\n".join(pod.line() for pod in target.pods(selector))


def _events(target: KubeTarget) -> str:
    events = target.core.list_namespaced_event(target.namespace).items

    def when(event):
        stamp = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        return stamp.timestamp() if stamp else 0.0

    recent = sorted(events, key=when)[-EVENTS:]
    return "\n".join(
        f"{event.type:<7} {event.reason:<20} {event.involved_object.kind}/"
        f"{event.involved_object.name}: {(event.message or '').strip()}"
        for event in recent
    )


def _logs(target: KubeTarget, selector: str) -> str:
    chunks = []
    for pod in target.pods(selector):
        if pod.ready and not pod.restarts:
            continue
        for previous in (False, True) if pod.restarts else (False,):
            try:
                text = target.core.read_namespaced_pod_log(
                    pod.name, target.namespace, tail_lines=LOG_LINES, previous=previous
                )
            except ApiException as error:
                text = f"(no log: {error.reason})"
            label = "previous container" if previous else "current container"
            chunks.append(f"[{pod.name}, {label}]\n{text.rstrip()}")
    return "\n".join(chunks)


def termination_text(terminated) -> str:
    """A container's end as the kubelet says it: reason, exit code, and the runtime's message
    (the only word of a container that never started, as runc's 'unable to freeze')."""
    said = [terminated.reason] if terminated.reason else []
    said.append(f"exit code {terminated.exit_code}")
    if terminated.message:
        said.append(terminated.message.strip()[-MESSAGE_TAIL:])
    return ", ".join(said)
