"""Responses counted per pod and per node, from the identity headers every answer carries,
and the connections each pod answered on, from the name it gives each connection.

Locust workers each count their own responses and hand the counts to the master with every
stats report, so the master's tally covers the whole run however many workers there are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

# Connections kept per pod: far more than any verdict's sample needs, and a bound on memory
# however long the run (past it, connections are not judged).
MAX_CONNECTIONS_PER_POD = 50_000
# Answers kept per pod for per-pod health (latency, and whether the run counted it failed):
# the first of each pod's, enough for its power, bounded however long the run.
MAX_ANSWERS_PER_POD = 5_000


@dataclass
class Tally:
    pods: Counter[str] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)
    # The connections each pod answered on, by the name the service gives each (the same for
    # every request of one connection, another for every other connection).
    connection_ids: dict[str, set[str]] = field(default_factory=dict)
    # Answers that named their connection while their pod's set still had room: as many as
    # that pod's connections when every request had a connection of its own.
    named_answers: Counter[str] = field(default_factory=Counter)
    # Answers per group of a declared split, by the value of the header that names the group
    # (--split-header: a model version, say).
    groups: Counter[str] = field(default_factory=Counter)
    # Each pod's first answers: (seconds, whether the run counted it failed).
    answers: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)

    def answered(self, pod: str, seconds: float, failed: bool) -> None:
        kept = self.answers.setdefault(pod, [])
        if len(kept) < MAX_ANSWERS_PER_POD:
            kept.append((seconds, failed))

    def record(
        self,
        pod: str,
        node: str | None,
        connection: str | None = None,
        group: str | None = None,
    ) -> None:
        self.pods[pod] += 1
        self.nodes[node or "<none>"] += 1
        if group is not None:
            self.groups[group or "<none>"] += 1
        if connection:
            seen = self.connection_ids.setdefault(pod, set())
            if len(seen) < MAX_CONNECTIONS_PER_POD:
                seen.add(connection)
                self.named_answers[pod] += 1

    @property
    def connections(self) -> dict[str, int] | None:
        """Distinct connections per pod; None when no answer named its connection."""
        if not self.connection_ids:
            return None
        return {pod: len(self.connection_ids.get(pod, ())) for pod in self.pods}

    @property
    def connections_capped(self) -> bool:
        """Whether some pod answered on more connections than are kept."""
        return any(len(seen) >= MAX_CONNECTIONS_PER_POD for seen in self.connection_ids.values())

    @property
    def reused(self) -> tuple[int, int] | None:
        """(answers that came on a connection an earlier answer had used, answers that named
        their connection): 0 reused proves a new connection per request. None when no answer
        named one, or when some pod's connections outgrew what is kept."""
        if not self.connection_ids or self.connections_capped:
            return None
        answers = sum(self.named_answers.values())
        return answers - sum(len(seen) for seen in self.connection_ids.values()), answers

    def to_message(self) -> dict[str, dict]:
        """What a worker sends: plain dicts and lists, which Locust's msgpack messages carry."""
        return {
            "pods": dict(self.pods),
            "nodes": dict(self.nodes),
            "connection_ids": {pod: sorted(seen) for pod, seen in self.connection_ids.items()},
            "named_answers": dict(self.named_answers),
            "groups": dict(self.groups),
            "answers": {
                pod: [list(answer) for answer in kept] for pod, kept in self.answers.items()
            },
        }

    def take(self) -> dict[str, dict]:
        """The counts since the last report, leaving the tally empty for the next one."""
        message = self.to_message()
        self.reset()
        return message

    def merge(self, message: Mapping[str, Mapping]) -> None:
        self.pods.update(message.get("pods", {}))
        self.nodes.update(message.get("nodes", {}))
        self.named_answers.update(message.get("named_answers", {}))
        self.groups.update(message.get("groups", {}))
        for pod, names in message.get("connection_ids", {}).items():
            seen = self.connection_ids.setdefault(pod, set())
            seen.update(names[: max(0, MAX_CONNECTIONS_PER_POD - len(seen))])
        for pod, answers in message.get("answers", {}).items():
            kept = self.answers.setdefault(pod, [])
            kept += [(seconds, failed) for seconds, failed in answers][
                : max(0, MAX_ANSWERS_PER_POD - len(kept))
            ]

    def reset(self) -> None:
        self.pods.clear()
        self.nodes.clear()
        self.connection_ids.clear()
        self.named_answers.clear()
        self.groups.clear()
        self.answers.clear()


def share_rows(counts: Mapping[str, int]) -> list[dict[str, object]]:
    """One row per name, largest count first: the web UI tab and the text table show these."""
    total = sum(counts.values()) or 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"name": name, "responses": count, "share": f"{count / total:.1%}"}
        for name, count in ordered
    ]


def pod_rows(tally: Tally) -> list[dict[str, object]]:
    """The Pods tab: each pod's answers and share, and of its first answers, how many failed and
    their median latency."""
    rows = share_rows(tally.pods)
    for row in rows:
        kept = tally.answers.get(str(row["name"]), [])
        seconds = sorted(answer[0] for answer in kept)
        row["failed"] = sum(answer[1] for answer in kept)
        row["median_ms"] = f"{seconds[len(seconds) // 2] * 1000:.1f}" if seconds else ""
    return rows


def split_rows(groups, declared) -> list[dict[str, object]]:
    """The Split tab: each group's answers and share, beside the share it was declared."""
    total = sum((declared or {}).values()) or 1
    shares = {group: weight / total for group, weight in (declared or {}).items()}
    rows = share_rows({**dict.fromkeys(shares, 0), **groups})
    return [{**row, "declared": f"{shares.get(row['name'], 0):.1%}"} for row in rows]


def format_counts(counts: Mapping[str, int], title: str) -> str:
    rows = share_rows(counts)
    width = max([len(title), len("total"), *(len(str(row["name"])) for row in rows)])
    lines = [
        f"{title:<{width}}  {'responses':>9}  {'share':>6}",
        f"{'-' * width}  {'-' * 9}  {'-' * 6}",
    ]
    lines += [f"{row['name']:<{width}}  {row['responses']:>9}  {row['share']:>6}" for row in rows]
    lines.append(f"{'total':<{width}}  {sum(counts.values()):>9}")
    return "\n".join(lines)


def format_tally(tally: Tally) -> str:
    return f"{format_counts(tally.pods, 'pod')}\n\n{format_counts(tally.nodes, 'node')}"
