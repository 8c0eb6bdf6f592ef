"""kube-proxy's mode, asked and observed: what the cluster says it runs, and what the traffic
shows it does, which must agree for a balance verdict to mean what it says.

iptables and nftables pick a pod at random for each new connection: consecutive connections
land on the same pod 1/k of the time. IPVS's default scheduler is round robin: consecutive
connections almost never repeat a pod. The repeat rate of a sequence of connections, opened
one after another, tells the two apart (a runs test on consecutive pairs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from kubeverify.balance import ALPHA  # the false-alarm rate of every verdict here
from kubeverify.verdict import ErrorRates, Verdict

RANDOM = "random per connection"
ROUND_ROBIN = "round robin"
# What each kube-proxy mode does with a new connection (IPVS with its default scheduler).
PATTERNS = {"iptables": RANDOM, "nftables": RANDOM, "ipvs": ROUND_ROBIN}
SEQUENCE_LENGTH = 200  # connections opened one after another for the fingerprint, at least


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
    # Under independent uniform picks the steps from one pod to the next (mod k) are themselves
    # independent and uniform, so each consecutive pair repeats with chance 1/k independently
    # of the others: the binomial tail is exact.
    p_random = float(stats.binom.cdf(repeats, pairs, 1 / pods))
    return Fingerprint(len(sequence), repeats, pods, p_random)


def sequence_length(pods: int, alpha: float = ALPHA) -> int:
    """Connections enough for the fingerprint over `pods`: SEQUENCE_LENGTH, or more where so
    many pods make a strict round robin's zero repeats too likely by chance to tell apart (twice
    the pairs at which independent picks repeat no pod with chance below alpha)."""
    pairs = math.ceil(math.log(alpha) / math.log(1 - 1 / pods))
    return max(SEQUENCE_LENGTH, 2 * pairs + 1)


def fewest_random_repeats(connections: int, pods: int, alpha: float = ALPHA) -> int:
    """The fewest repeats judged random: below this count a sequence is judged round robin."""
    # binom.ppf(alpha) is the smallest r with cdf(r) >= alpha, the pattern's own rule.
    return int(stats.binom.ppf(alpha, connections - 1, 1 / pods))


def rates(connections: int, pods: int, mode: str | None, alpha: float = ALPHA) -> ErrorRates:
    """What the fingerprint claims for a sequence of `connections` over `pods` when kube-proxy
    runs `mode`: the chance a sequence of that mode's own pattern is judged the other (false
    alarm), and the chance a sequence of the other pattern is caught (power). A strict round
    robin repeats no pod; independent picks repeat each pair with chance 1/pods."""
    critical = fewest_random_repeats(connections, pods, alpha)
    random_judged_round_robin = float(stats.binom.cdf(critical - 1, connections - 1, 1 / pods))
    round_robin_judged_round_robin = 1.0 if critical > 0 else 0.0
    if mode is None or PATTERNS[mode] == RANDOM:
        return ErrorRates(
            random_judged_round_robin,
            round_robin_judged_round_robin,
            f"round robin ({connections} connections over {pods} pods)",
        )
    return ErrorRates(
        1 - round_robin_judged_round_robin,
        1 - random_judged_round_robin,
        f"random picks ({connections} connections over {pods} pods)",
    )


def known(mode: str | None) -> str | None:
    """A mode kube-proxy names (`iptables`, `iptables (the default)`) -> the mode; None when
    unknown or not one of PATTERNS."""
    word = mode.split()[0] if mode else ""
    return word if word in PATTERNS else None


def verdict(
    sequence: Sequence[str], pods: int, asked: str | None, configured: str | None
) -> Verdict:
    """kube-proxy's mode, as it says it (`asked`), as its configuration says it, and as the
    order of consecutive connections (`sequence`, one pod per connection) shows it: the three
    must agree where they are known."""
    seen = fingerprint(sequence, pods)
    mode = asked or configured
    said = f"{asked or 'not asked'} (its /proxyMode), {configured or 'unknown'} (its configuration)"
    if asked and configured and asked != configured:
        passed, summary = False, f"kube-proxy says it runs {asked}, its configuration {configured}"
    elif mode and PATTERNS[mode] != seen.pattern:
        passed, summary = False, f"{mode} picks {PATTERNS[mode]}, but {seen.explain()}"
    else:
        passed, summary = True, f"{said}; traffic: {seen.explain()}"
    return Verdict(
        "kube-proxy spreads connections as its mode says",
        passed,
        summary,
        rates(seen.connections, pods, mode),
        {
            "asked": asked,
            "configured": configured,
            "observed": seen.pattern,
            "repeats": seen.repeats,
            "connections": seen.connections,
            "p_random": seen.p_random,
        },
    )
