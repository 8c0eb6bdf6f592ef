"""Draws of kube-proxy's, and the balance verdict sampled from them.

kube-proxy picks a pod when a connection opens, so a draw is a connection: a request on a fresh
connection, or a keep-alive connection carrying a few requests (all to its one pod). Where the
target names a connection header, the transport is proven from the answers, not assumed. The
balance verdict sends draws until its test decides: in groups for the group-sequential test,
all at once for the fixed-size one; both with the same error rates. A failed request ends the
draws and fails the verdict before any statistics. Per-pod health, judged on the same draws,
draws more until it reaches its own power (`health_sample`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence

from kubeverify import balance, health, sequential, splits
from kubeverify.traffic import (
    Endpoint,
    Outcome,
    fresh_connection_requests,
    keep_alive_connections,
    shared_connections,
)
from kubeverify.verdict import ErrorRates, Verdict

KEEP_ALIVE_REQUESTS_EACH = 3  # on each connection of the keep-alive balance check
HEALTH_BATCH = 400  # draws at most between two looks at per-pod health's budget of seconds

Draws = Callable[[Endpoint, int], list[Outcome]]


def fresh_connection_draws(endpoint: Endpoint, count: int) -> list[Outcome]:
    """`count` draws, a request on a new connection each, proven so by the connection each pod
    names (when the target names that header)."""
    outcomes = fresh_connection_requests(endpoint, count)
    assert_a_connection_each(endpoint, outcomes)
    return outcomes


def keep_alive_draws(endpoint: Endpoint, count: int) -> list[Outcome]:
    """`count` draws, a keep-alive connection each carrying a few requests: every request on a
    connection reaches its one pod, whose answer stands for the draw."""
    draws = []
    for requests in keep_alive_connections(endpoint, count, KEEP_ALIVE_REQUESTS_EACH):
        failed = [o for o in requests if not o.ok]
        if failed:
            draws.append(failed[0])
            continue
        pods = {o.pod for o in requests}
        assert len(pods) == 1, f"the requests of one keep-alive connection reached {pods}"
        if endpoint.connection_header:
            assert_one_connection(endpoint, requests)
        draws.append(requests[0])
    return draws


BALANCE_SAID = {"balanced": "balanced", "unbalanced": "unbalanced"}
TRANSPORTS = {
    fresh_connection_draws: balance.Transport.NEW_CONNECTION_PER_REQUEST,
    keep_alive_draws: balance.Transport.KEEP_ALIVE_CONNECTIONS,
}


def balance_verdict(endpoint: Endpoint, pods: Sequence[str], *args, **kwargs) -> Verdict:
    """`balance_sample`'s verdict alone."""
    return balance_sample(endpoint, pods, *args, **kwargs)[0]


def balance_sample(
    endpoint: Endpoint,
    pods: Sequence[str],
    how: str = "sequential",
    draws: Draws = fresh_connection_draws,
    *,
    label: str | None = None,
    say: Callable[[str], None] = print,
    control: bool = False,
) -> tuple[Verdict, list[Outcome]]:
    """Traffic judged for balance, one draw of kube-proxy's at a time: by the group-sequential
    test (stopping as soon as its bounds decide), or with `how == "fixed"` by the fixed-size
    test; and the draws it judged, for other verdicts on the same traffic. A failed request
    fails the verdict before any statistics."""
    design = sequential.design(len(pods))
    say(balance.detectable(design.fixed, len(pods)))
    outcomes, decided = _sample(
        endpoint, design, lambda o: o.pod, list(pods), how, draws, say, BALANCE_SAID
    )
    if any(not o.ok for o in outcomes):
        check = label or f"balance over {len(pods)} pods ({TRANSPORTS[draws].value})"
        return _failed(check, outcomes, control), outcomes
    return balance.judge_balance(
        balance.count_by(o.pod for o in outcomes),
        pods,
        TRANSPORTS[draws],
        decided=decided,
        label=label,
        rates=balance.claimed_rates(len(pods)),
        nodes={o.pod: o.node for o in outcomes if o.node},
        control=control,
        figures={"sent": len(outcomes), "fixed_size": design.fixed},
    ), outcomes


def split_verdict(
    endpoint: Endpoint,
    groups: Mapping[str, Collection[str]],
    weights: Mapping[str, float],
    how: str = "sequential",
    *,
    label: str,
    deviation: float = splits.DEVIATION,
    say: Callable[[str], None] = print,
    control: bool = False,
) -> Verdict:
    """Traffic judged against a declared split: each draw (a request on a fresh connection) in
    the group of the pod that answered (`groups`: group -> its pods), the groups' counts
    against the declared shares (`weights`, relative), by the group-sequential or the
    fixed-size test as for balance."""
    declared = splits.normalised(weights)
    kept = [group for group, share in declared.items() if share > 0]
    member = {pod: group for group, pods in groups.items() for pod in pods}

    def group_of(outcome: Outcome) -> str:
        return member.get(outcome.pod, f"<no group: {outcome.pod}>")

    if len(kept) == 1:  # nothing to fit: the groups at 0 alone are judged
        outcomes = fresh_connection_draws(endpoint, splits.ZERO_GROUPS_DRAWS)
        decided, fixed = None, splits.ZERO_GROUPS_DRAWS
        rates = ErrorRates(0.0, 0.95, f"a share of {3 / fixed:.0%} or more in a group at 0")
    else:
        design = splits.design(tuple(declared[group] for group in kept), deviation)
        say(splits.detectable(declared, deviation))
        outcomes, decided = _sample(endpoint, design, group_of, kept, how,
                                    fresh_connection_draws, say, splits.SAID)  # fmt: skip
        fixed = design.fixed
        rates = splits.claimed_rates(declared, deviation)
    if any(not o.ok for o in outcomes):
        return _failed(label, outcomes, control)
    counted = balance.count_by(group_of(o) for o in outcomes)
    return splits.judge_split(
        {group: counted.get(group, 0) for group in declared},
        declared,
        decided=decided,
        label=label,
        rates=rates,
        unexpected={g: n for g, n in counted.items() if g not in declared},
        control=control,
        figures={"sent": len(outcomes), "fixed_size": fixed, "deviation": deviation},
    )


def _sample(
    endpoint: Endpoint,
    design: sequential.Design,
    category: Callable[[Outcome], str],
    tested: list[str],
    how: str,
    draws: Draws,
    say: Callable[[str], None],
    said: Mapping[str, str],
) -> tuple[list[Outcome], str | None]:
    """Draws until the test decides: all the fixed size at once (`how == "fixed"`), or in the
    design's groups until its bounds decide. A failed request, or a draw in no tested
    category, ends the sampling (the verdict fails on it); returns the draws and the
    sequential decision."""
    if how == "fixed":
        return draws(endpoint, design.fixed), None
    outcomes: list[Outcome] = []
    decided = None
    for look, size in enumerate(design.sizes):
        outcomes += draws(endpoint, size - len(outcomes))
        counts = balance.count_by(category(o) for o in outcomes)
        statistic = balance.chi_square([counts.get(c, 0) for c in tested], design.expected)
        decided = design.decide(look, float(statistic[0]))
        if decided or any(not o.ok for o in outcomes) or set(counts) - set(tested):
            break
    say(
        f"sequential test: {said.get(decided, 'undecided')} after {len(outcomes)} draws (look "
        f"{look + 1} of "
        f"{len(design.sizes)}; the fixed-size test sends {design.fixed}, with the same alpha "
        "and power)"
    )
    return outcomes, decided


def _failed(check: str, outcomes: Sequence[Outcome], control: bool) -> Verdict:
    """The verdict of draws some of which failed: failed, before any statistics (a split judged
    on the answers that came would hide the pod that did not answer). Never a negative
    control's failure as it must: failed requests are not what a control shows."""
    failed = [o for o in outcomes if not o.ok]
    by_pod = balance.count_by(o.pod for o in failed)
    return Verdict(
        check,
        False,
        f"{len(failed)} of {len(outcomes)} requests failed (by pod: {by_pod}), e.g. "
        + "; ".join(f"{o.error}" for o in failed[:3])
        + ("; a negative control whose requests fail shows nothing" if control else ""),
        figures={"sent": len(outcomes), "failed": len(failed), "failed_by_pod": by_pod},
    )


def health_sample(
    endpoint: Endpoint,
    pods: Sequence[str],
    outcomes: Sequence[Outcome],
    draws: Draws = fresh_connection_draws,
    *,
    budget_draws: int = health.BUDGET_DRAWS,
    budget_seconds: float = health.BUDGET_SECONDS,
    alpha: float = balance.ALPHA,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    simulations: int = health.POWER_SIMULATIONS,
) -> tuple[list[Outcome], str | None]:
    """The draws given (the balance test's), and more until per-pod health reaches its power
    (`health.draws_to_add`) or its budget runs out: `budget_draws` in all, `budget_seconds` of
    drawing. Returns every draw, and what ran out (None: the power was reached)."""
    started = clock()
    outcomes = list(outcomes)
    given = len(outcomes)
    ran_out = None
    answers = health.by_pod(outcomes, pods)
    while more := health.draws_to_add(answers, alpha, simulations=simulations):
        silent = [a.pod for a in answers if not a.requests]
        if outcomes and silent:  # the balance verdict fails on it; more draws judge nothing
            ran_out = f"{', '.join(silent)} answered none of {len(outcomes)} draws"
            break
        room = budget_draws - len(outcomes)
        if room <= 0:
            ran_out = f"its budget of {budget_draws} draws ran out"
            break
        if clock() - started >= budget_seconds:
            ran_out = f"its budget of {budget_seconds:g} s ran out"
            break
        outcomes += draws(endpoint, min(more, room, HEALTH_BATCH))
        answers = health.by_pod(outcomes, pods)
    if len(outcomes) > given or ran_out:
        say(
            f"per-pod health: {len(outcomes) - given} draws more than the balance test's "
            f"{given}, in {clock() - started:.1f} s"
            + (f"; {ran_out} short of its power" if ran_out else "")
        )
    return outcomes, ran_out


def assert_a_connection_each(endpoint: Endpoint, outcomes: Sequence[Outcome]) -> None:
    """The transport proven, not declared: by the connection each pod names, every request
    came on a connection of its own (kube-proxy picks a pod per connection)."""
    if not endpoint.connection_header:
        return  # the target names no such header: the transport stays declared
    _assert_named(endpoint, outcomes)
    shared = shared_connections(outcomes)
    assert not shared, (
        f"{shared} of {len(outcomes)} requests came on a connection an earlier one used (by "
        f"{endpoint.connection_header}): their counts judge connections, not requests"
    )


def assert_one_connection(endpoint: Endpoint, outcomes: Sequence[Outcome]) -> None:
    """By the connection each pod names, every request of one keep-alive client came on its
    one connection (and a reuse shows, so the new-connection proof can fail)."""
    _assert_named(endpoint, outcomes)
    reused = shared_connections(outcomes)
    assert reused == len(outcomes) - 1, (
        f"{endpoint.connection_header} named {len(outcomes) - reused} connections for the "
        f"{len(outcomes)} requests of one keep-alive client: {outcomes[:3]}"
    )


def _assert_named(endpoint: Endpoint, outcomes: Sequence[Outcome]) -> None:
    unnamed = sum(o.connection is None for o in outcomes)
    assert not unnamed, (
        f"{unnamed} of {len(outcomes)} answers had no {endpoint.connection_header} header, "
        "which the target says names each connection"
    )
