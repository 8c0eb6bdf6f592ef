"""Responses counted per pod and per node, from the identity headers every answer carries.

Locust workers each count their own responses and hand the counts to the master with every
stats report, so the master's tally covers the whole run however many workers there are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Tally:
    pods: Counter[str] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)

    def record(self, pod: str, node: str | None) -> None:
        self.pods[pod] += 1
        self.nodes[node or "<none>"] += 1

    def to_message(self) -> dict[str, dict[str, int]]:
        """What a worker sends: plain dicts, which Locust's msgpack messages can carry."""
        return {"pods": dict(self.pods), "nodes": dict(self.nodes)}

    def take(self) -> dict[str, dict[str, int]]:
        """The counts since the last report, leaving the tally empty for the next one."""
        message = self.to_message()
        self.reset()
        return message

    def merge(self, message: Mapping[str, Mapping[str, int]]) -> None:
        self.pods.update(message.get("pods", {}))
        self.nodes.update(message.get("nodes", {}))

    def reset(self) -> None:
        self.pods.clear()
        self.nodes.clear()


def share_rows(counts: Mapping[str, int]) -> list[dict[str, object]]:
    """One row per name, largest count first: the web UI tab and the text table show these."""
    total = sum(counts.values()) or 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"name": name, "responses": count, "share": f"{count / total:.1%}"}
        for name, count in ordered
    ]


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
