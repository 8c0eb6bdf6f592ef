"""kube-proxy's mode, asked and observed: what the cluster says it runs, and what the traffic
shows it does, which must agree for a balance verdict to mean what it says.

iptables and nftables pick a pod at random for each new connection: consecutive connections
land on the same pod 1/k of the time. IPVS's default scheduler is round robin: consecutive
connections almost never repeat a pod. The repeat rate of a sequence of connections, opened
one after another, tells the two apart (a runs test on consecutive pairs).
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from kubeverify.balance import ALPHA  # the false-alarm rate of every verdict here

RANDOM = "random per connection"
ROUND_ROBIN = "round robin"
# What each kube-proxy mode does with a new connection (IPVS with its default scheduler).
PATTERNS = {"iptables": RANDOM, "nftables": RANDOM, "ipvs": ROUND_ROBIN}
SEQUENCE_LENGTH = 200  # connections opened one after another for the fingerprint


@dataclass(frozen=True)
class Fingerprint:
    connections: int
    repeats: int  # consecutive connections that reached the same pod
    pods: int
    p_random: float  # chance of so few repeats if each connection picked a pod at random

    @property
    def pattern(self) -> str:
        return RANDOM if self.p_random >= ALPHA else ROUND_ROBIN

    def explain(self) -> str:
        expected = (self.connections - 1) / self.pods
        return (
            f"{self.repeats} of {self.connections - 1} consecutive connections repeated a pod "
            f"({expected:.0f} expected if random over {self.pods} pods; p = {self.p_random:.3g})"
            f": {self.pattern}"
        )


def fingerprint(sequence: Sequence[str], pods: int) -> Fingerprint:
    """The repeat rate of `sequence` (the pod of each connection, in the order opened) against
    independent uniform picks over `pods`: too few repeats is round robin."""
    if pods < 2 or len(sequence) < 2:
        raise ValueError("a fingerprint needs two pods and two connections at least")
    repeats = sum(a == b for a, b in itertools.pairwise(sequence))
    pairs = len(sequence) - 1
    # Consecutive pairs of independent uniform picks repeat with chance 1/k each; pairs that
    # share a connection are only weakly dependent, and the binomial tail is close enough.
    p_random = float(stats.binom.cdf(repeats, pairs, 1 / pods))
    return Fingerprint(len(sequence), repeats, pods, p_random)


def configured_mode(config_mode: str) -> str | None:
    """`iptables (the default)` -> iptables; None when unknown."""
    word = config_mode.split()[0] if config_mode else ""
    return word if word in PATTERNS else None


def agreement(mode: str | None, seen: Fingerprint) -> str | None:
    """None when the mode and the traffic agree (or the mode is unknown), else why not."""
    if mode is None or PATTERNS[mode] == seen.pattern:
        return None
    return f"kube-proxy runs {mode}, which picks {PATTERNS[mode]}, but {seen.explain()}"


def asked_mode(node_container: str) -> str | None:
    """kube-proxy's own answer on a kind node (its /proxyMode on the node's loopback); None
    where it cannot be asked (not a kind node, no curl)."""
    try:
        said = subprocess.run(
            ["docker", "exec", node_container, "curl", "-s", "http://127.0.0.1:10249/proxyMode"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    mode = said.stdout.strip()
    return mode if said.returncode == 0 and mode in PATTERNS else None
