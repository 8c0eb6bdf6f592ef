"""A node drained under traffic: cordoned, the target's pods on it evicted one request each as
`kubectl drain` evicts them (the API refuses an eviction a PodDisruptionBudget does not allow,
and it is asked again), their replacements settled on other nodes, and the node uncordoned.

Only the target's pods are evicted: other workloads on the node stay where they are (a real
drain would evict them too, and they are not the run's). A watch on the target's pods keeps the
number of healthy ones (ready, not being deleted: what a budget counts) after every change the
API showed, so the fewest the drain left is seen, not sampled.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from kubeverify.kube import KubectlError, KubeTarget, PodWatch
from kubeverify.traffic import BackgroundTraffic, Endpoint
from kubeverify.verdict import ErrorRates, Verdict
from kubeverify.waiting import Observation, wait_until

EVICTION_RETRY = 1.0  # seconds between asking again for evictions a budget refused (kubectl: 5)
EVICTION_TIMEOUT = 180
TOO_MANY_REQUESTS = 429  # the eviction API's answer when a budget allows no disruption now
NOT_FOUND = 404
# The eviction API's answer (500) for a pod more than one budget selects: it evicts none such.
MANY_BUDGETS = "more than one PodDisruptionBudget"


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget over the pods: `desired_healthy` is the fewest healthy pods it
    allows, as its controller resolved it (percentages rounded, against `expected` pods), of
    those its `selector` selects."""

    name: str
    desired_healthy: int
    expected: int
    pods: frozenset[str] = frozenset()  # of the target's, those it selects
    selector: dict | None = None  # None: every pod of the target's

    @classmethod
    def of(cls, budget: dict, pods: frozenset[str] = frozenset()) -> Budget:
        status = budget.get("status") or {}
        return cls(
            budget["metadata"]["name"],
            int(status.get("desiredHealthy") or 0),
            int(status.get("expectedPods") or 0),
            pods,
            (budget.get("spec") or {}).get("selector"),
        )

    def selects(self, labels: dict[str, str]) -> bool:
        """Whether a pod with these labels is one this budget counts (its label selector)."""
        if self.selector is None:
            return True
        if any(labels.get(k) != v for k, v in (self.selector.get("matchLabels") or {}).items()):
            return False
        for term in self.selector.get("matchExpressions") or []:
            key, operator, values = term["key"], term["operator"], term.get("values") or []
            held = {
                "In": key in labels and labels[key] in values,
                "NotIn": labels.get(key) not in values,
                "Exists": key in labels,
                "DoesNotExist": key not in labels,
            }[operator]
            if not held:
                return False
        return True


class EvictionRefused(RuntimeError):
    """The eviction API refuses a pod for good: more than one budget selects it (not a
    budget's 429, which passes)."""


def selector_text(selector: dict) -> str:
    """A LabelSelector (matchLabels, matchExpressions) as the label-selector text the API
    takes in a list request."""
    terms = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        terms.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
             "Exists": key, "DoesNotExist": f"!{key}"}[operator]
        )  # fmt: skip
    return ",".join(terms)


def budgets_over(kube: KubeTarget, pods: set[str]) -> list[Budget]:
    """The namespace's PodDisruptionBudgets that select any of `pods`."""
    found = []
    for budget in kube.disruption_budgets():
        selector = budget["spec"].get("selector")
        if selector is None:
            continue  # policy/v1beta1 reads an unset selector as selecting nothing
        selected = pods & {pod.name for pod in kube.pods(selector_text(selector))}
        if selected:
            found.append(Budget.of(budget, frozenset(selected)))
    return found


def refusal(pod: str, message: str, budgets: Sequence[Budget]) -> str:
    """Why the eviction API refuses `pod` for good (more than one budget over it), plainly:
    which budgets, and what to change."""
    names = [budget.name for budget in budgets if pod in budget.pods]
    which = (
        f"PodDisruptionBudgets {', '.join(names)} all select it"
        if len(names) > 1
        else ("more than one PodDisruptionBudget selects it")
    )
    return (
        f"the eviction API refuses to evict {pod}: {which}, "
        "and Kubernetes evicts no pod that more than one budget selects (its answer: "
        f"{message!r}); `kubectl drain` stops here too, so no node holding it can be drained. "
        "Give each pod one budget."
    )


def healthy(pod: dict) -> bool:
    """Ready and not being deleted: a pod a PodDisruptionBudget counts healthy."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not pod["metadata"].get("deletionTimestamp")


class HealthyCount(PodWatch):
    """The healthy pods a selector selects, after every change the API showed."""

    def __init__(
        self, kube: KubeTarget, selector: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(kube, selector)
        self.clock = clock
        self._lock = threading.Lock()
        self._healthy: dict[str, bool] = {}
        self._labels: dict[str, dict[str, str]] = {}  # of every pod seen, gone ones too
        # (monotonic seconds, the healthy pods) after each change
        self.history: list[tuple[float, frozenset[str]]] = []

    def _seen(self, kind: str, pod: dict) -> None:
        with self._lock:
            name = pod["metadata"]["name"]
            self._labels[name] = pod["metadata"].get("labels") or {}
            if kind == "DELETED":
                self._healthy.pop(name, None)
            else:
                self._healthy[name] = healthy(pod)
            now = frozenset(pod for pod, well in self._healthy.items() if well)
            if not self.history or self.history[-1][1] != now:
                self.history.append((self.clock(), now))

    def _relisted(self, pods: list[dict]) -> None:
        """After a gap in the watch, the state is the new list's, not what changed in between."""
        with self._lock:
            self._healthy.clear()
        for pod in pods:
            self._seen("ADDED", pod)

    def fewest(self, start: float, end: float, budget: Budget | None = None) -> int:
        """The fewest healthy pods from `start` to `end` (of those `budget` selects, if given):
        the state at `start` and every state the changes between them made."""
        self._raise_if_stopped()
        with self._lock:
            before = [pods for at, pods in self.history if at <= start][-1:]
            during = [pods for at, pods in self.history if start < at <= end]
            labels = dict(self._labels)
        counted = budget or Budget("all", 0, 0)  # a budget with no selector counts every pod
        return min(
            (sum(counted.selects(labels.get(pod, {})) for pod in pods) for pods in before + during),
            default=0,
        )


def schedulable_workers(kube: KubeTarget) -> list[str]:
    """Nodes that take pods: not cordoned, no NoSchedule taint (control planes have one)."""
    return sorted(
        node.metadata.name
        for node in kube.core.list_node().items
        if not node.spec.unschedulable
        and not any(t.effect in ("NoSchedule", "NoExecute") for t in node.spec.taints or [])
    )


def fullest_node(kube: KubeTarget, selector: str) -> tuple[str | None, str]:
    """The schedulable node holding most of the pods (the first by name of a tie), or None
    and why there is none to drain: fewer than two nodes could take the pods, or this identity
    may not cordon a node or evict a pod."""
    for asked in (("patch", "nodes"), ("create", "pods", "--subresource=eviction")):
        try:
            kube.kubectl("auth", "can-i", *asked)
        except KubectlError:  # "no": kubectl says it with exit code 1
            return None, f"a drain needs `{' '.join(asked)}`, which this identity may not"
    workers = schedulable_workers(kube)
    if len(workers) < 2:
        return None, f"a drain needs two nodes that take pods; this cluster has {workers}"
    placed = [pod.node for pod in kube.pods(selector) if not pod.terminating]
    return max(workers, key=lambda node: (placed.count(node), -workers.index(node))), ""


@contextmanager
def cordoned(kube: KubeTarget, node: str) -> Iterator[None]:
    """The node takes no new pods for the block, and does again after it, however it ends."""
    try:
        kube.kubectl("cordon", node)  # in the block: a cordon that timed out may have been done
        yield
    finally:
        kube.kubectl("uncordon", node)


@dataclass
class Evictions:
    evicted: list[str]
    refused: int  # eviction requests a budget refused, asked again later


def evict_from(
    kube: KubeTarget,
    node: str,
    selector: str,
    *,
    budgets: Sequence[Budget] = (),
    timeout: float = EVICTION_TIMEOUT,
    say: Callable[[str], None] = print,
) -> Evictions:
    """Evict every pod of `selector` on `node`, asking again every EVICTION_RETRY seconds for
    those a budget refuses, until none is left there (or the deadline says which were not).
    A refusal for good (more than one of `budgets` over a pod) raises EvictionRefused; other
    API errors are raised as they are."""
    from kubernetes.client.exceptions import ApiException

    done = Evictions([], 0)

    def evict_the_rest() -> Observation:
        left = [p.name for p in kube.pods(selector) if p.node == node and not p.terminating]
        for pod in list(left):
            try:
                kube.evict(pod)
            except ApiException as error:
                if error.status == TOO_MANY_REQUESTS:
                    done.refused += 1
                    continue
                message = _message(error)
                if MANY_BUDGETS in message:
                    raise EvictionRefused(refusal(pod, message, budgets)) from error
                if error.status != NOT_FOUND:
                    raise
            left.remove(pod)
            done.evicted.append(pod)
            say(f"evicted {pod} from {node}")
        return Observation(not left, f"not yet evicted (a budget refuses): {left}")

    wait_until(
        evict_the_rest,
        what=f"the pods of {selector} evicted from {node}",
        timeout=timeout,
        interval=EVICTION_RETRY,
        progress=say,
    )
    return done


def _message(error) -> str:
    """The Status message of an API error, else its body."""
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(error.body or error.reason)


@dataclass(frozen=True)
class Drained:
    """What a drain under traffic saw: the node, the pods before and after, the evictions,
    the budgets over the pods and the fewest healthy pods between cordon and settling."""

    node: str
    before: dict[str, str | None]  # pod -> node
    after: dict[str, str | None]
    evictions: Evictions
    budgets: list[Budget]
    fewest_healthy: int
    started: float
    ended: float
    # Per budget, the fewest healthy pods of those it selects; absent: fewest_healthy.
    fewest_by_budget: dict[str, int] = field(default_factory=dict)

    def fewest_of(self, budget: Budget) -> int:
        return self.fewest_by_budget.get(budget.name, self.fewest_healthy)

    @property
    def left_on_node(self) -> list[str]:
        return sorted(pod for pod, node in self.after.items() if node == self.node)

    def figures(self) -> dict:
        return {
            "node": self.node,
            "evicted": self.evictions.evicted,
            "evictions_refused": self.evictions.refused,
            "fewest_healthy": self.fewest_healthy,
            "budgets": [
                {**budget.__dict__, "pods": sorted(budget.pods), "fewest": self.fewest_of(budget)}
                for budget in self.budgets
            ],
            "pods_before": self.before,
            "pods_after": self.after,
        }

    def no_budget(self) -> str:
        """Why requests may have failed when no budget covers the pods."""
        return (
            f"no PodDisruptionBudget selects these pods: the drain evicted "
            f"{len(self.evictions.evicted)} of them at once and healthy pods fell to "
            f"{self.fewest_healthy} of {len(self.before)}"
        )


def drain(
    kube: KubeTarget,
    selector: str,
    node: str,
    settle: Callable[[], list[str]],
    *,
    say: Callable[[str], None] = print,
) -> Drained:
    """Cordon `node`, evict the pods of `selector` on it, wait for `settle` (the pods back,
    ready, elsewhere), and uncordon it; the pods' health watched throughout."""
    before = {pod.name: pod.node for pod in kube.pods(selector) if not pod.terminating}
    budgets = budgets_over(kube, set(before))
    with HealthyCount(kube, selector).running() as count:
        started = time.monotonic()
        with cordoned(kube, node):
            on_node = sum(placed == node for placed in before.values())
            say(f"cordoned {node}; evicting the {on_node} of the {len(before)} pods on it")
            evictions = evict_from(kube, node, selector, budgets=budgets, say=say)
            settle()
            ended = time.monotonic()
        fewest = count.fewest(started, ended)
        by_budget = {budget.name: count.fewest(started, ended, budget) for budget in budgets}
    after = {pod.name: pod.node for pod in kube.pods(selector) if not pod.terminating}
    return Drained(node, before, after, evictions, budgets, fewest, started, ended, by_budget)


def budget_verdict(drained: Drained, *, control: bool = False) -> Verdict:
    """The budget held: never fewer healthy pods than it allows, watched through the drain.
    A count of what the API recorded, no sample: it fails no drain that kept the budget, and
    every dip below it the API recorded fails it. Without a budget, a finding."""
    figures = drained.figures()
    check = "the PodDisruptionBudget holds through a node drain"
    if not drained.budgets:
        return Verdict(
            check,
            False,
            f"draining {drained.node}: {drained.no_budget()}",
            figures=figures,
            advisory=True,
            control=control,
        )
    # Each budget must hold, over the pods it selects: where budgets select the same pods, the
    # strictest decides; where they select different ones, each its own.
    dipped = [b for b in drained.budgets if drained.fewest_of(b) < b.desired_healthy]
    if len(drained.budgets) == 1:
        (only,) = drained.budgets
        held = f"{only.name} allows no fewer than {only.desired_healthy}"
    else:
        ordered = sorted(
            drained.budgets,
            key=lambda b: (b not in dipped, -b.desired_healthy + drained.fewest_of(b), b.name),
        )
        held = "of the pods each budget selects, the fewest healthy: " + ", ".join(
            f"{b.name} {drained.fewest_of(b)}, "
            f"{'BELOW the' if b in dipped else 'within its'} {b.desired_healthy} allowed"
            for b in ordered
        )
    return Verdict(
        check,
        not dipped,
        f"draining {drained.node}: the fewest healthy pods seen was {drained.fewest_healthy} "
        f"of {len(drained.before)}; {held}; "
        f"{drained.evictions.refused} evictions refused until a replacement was ready",
        ErrorRates(0.0, 1.0, "a dip below the budget that the API recorded"),
        figures,
        control=control,
    )


def under_traffic(
    kube: KubeTarget,
    endpoint: Endpoint,
    selector: str,
    node: str,
    settle: Callable[[], list[str]],
    *,
    say: Callable[[str], None] = print,
    control: bool = False,
) -> tuple[Drained, Verdict, Verdict]:
    """`drain` while fresh-connection traffic runs at `endpoint`: what it saw, the zero-failure
    verdict on the traffic from cordon to settling (3/n bound), and the budget's verdict. A
    drain that failed requests with no budget over the pods says that too."""
    traffic = BackgroundTraffic(endpoint)
    with traffic.running():
        drained = drain(kube, selector, node, settle, say=say)
    lost = traffic.verdict(
        drained.started,
        drained.ended,
        f"draining {node}",
        evicted=len(drained.evictions.evicted),
        fewest_healthy=drained.fewest_healthy,
    )
    if not lost.passed and not drained.budgets:
        lost = replace(lost, details=(drained.no_budget(), *lost.details))
    return drained, replace(lost, control=control), budget_verdict(drained, control=control)
