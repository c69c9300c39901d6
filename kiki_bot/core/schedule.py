"""Deadline planning: when to retrain each adapter so every pending removal is released in time. Pure.

A request is *pending* for an adapter from its purge until a published release of that adapter no longer
contains it. A retrain covers every request pending when it starts (its training set is assembled then)
and takes `duration` (training wall time + review buffer) to reach a published version. Request i can
therefore be served by any retrain started in [purged_i, deadline_i - duration], and using the fewest
retrains means stabbing every such window with the fewest points. The greedy rule - start at the latest
safe moment for the earliest uncovered deadline, covering everything pending then - is optimal for that
(`plan_offline`, checked against brute force in the tests); the scheduled deadline run applies the same
rule online (`plan`), earlier by a safety margin for what it cannot see: the time until its next check
and a runner busy with other work.

Times are UTC. A deadline is the opening time + the window in days of 24 h UTC (`deadline_for`), so a
daylight-saving change in the maintainers' zone (e.g. Europe/Paris) does not move it; only its local
wall-clock rendering shifts by an hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from kiki_bot.core.errors import BadInput
from kiki_bot.core.ledger import RequestState

Action = Literal["wait", "retrain", "warn", "overdue"]
WARN_WITHIN = dt.timedelta(days=7)
# Tuned with bench/schedule_sim.py for a deadline run every 6 h on a runner busy half the time (blocks up
# to 24 h) shared by 3 adapters: it absorbs the wait for the next check, a busy block and other adapters'
# 12-h trainings queued ahead. Over 20 simulated years: 0 missed deadlines at 1.08 x the offline minimum
# of retrains on average (worst year 1.105); 36 h missed 1. A daily run needs 72 h (0 missed, 1.10 x).
SAFETY_MARGIN = dt.timedelta(hours=48)


def utc(value: dt.datetime, where: str) -> dt.datetime:
    """`value` in UTC; a naive time is refused because its zone, and so the deadline, would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(where, f"naive time {value.isoformat()}; expected a timezone-aware time (UTC)")
    return value.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def deadline_for(opened: dt.datetime, window_days: int = 30) -> dt.datetime:
    return utc(opened, "opened") + dt.timedelta(days=window_days)


@dataclass(frozen=True)
class Pending:
    """A purged request not yet in a published release of the adapter."""

    id: str
    deadline: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadline", utc(self.deadline, f"{self.id}.deadline"))


@dataclass(frozen=True)
class InFlight:
    """A retrain started at `started` whose training set excluded the requests in `covers`.

    Requests purged after it started are not in `covers`. A failed run (`failed`) covers nothing.
    """

    started: dt.datetime
    covers: frozenset[str]
    failed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "started", utc(self.started, "in_flight.started"))


@dataclass(frozen=True)
class Queue:
    """One adapter's input: its pending requests, the expected start-to-release time, a retrain under way."""

    pending: Sequence[Pending]
    duration: dt.timedelta
    in_flight: InFlight | None = None


@dataclass(frozen=True)
class AdapterPlan:
    """What the deadline run does for one adapter.

    `action` is the headline (overdue > retrain > warn > wait); `start_retrain` says whether to start a
    retrain now (true for `retrain`, and for `overdue` when uncovered requests are due);
    `overdue` lists requests past their deadline (apply the fallback, record `deadline_missed`);
    `at_risk` lists those to warn about: due within the warn window, or unreachable even if a retrain
    started now, and not covered by a live retrain expected to be released in time.
    """

    adapter: str
    pending: tuple[str, ...]
    earliest_deadline: dt.datetime | None
    retrain_at: dt.datetime | None
    action: Action
    reason: str
    start_retrain: bool = False
    overdue: tuple[str, ...] = ()
    at_risk: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "pending": list(self.pending),
            "earliest_deadline": self.earliest_deadline and iso(self.earliest_deadline),
            "retrain_at": self.retrain_at and iso(self.retrain_at),
            "overdue": list(self.overdue),
            "at_risk": list(self.at_risk),
        }


def plan_adapter(
    adapter: str,
    queue: Queue,
    now: dt.datetime,
    *,
    warn_within: dt.timedelta = WARN_WITHIN,
    margin: dt.timedelta = SAFETY_MARGIN,
) -> AdapterPlan:
    """Apply the latest-safe-start rule at `now` (see the module docstring)."""
    now = utc(now, "now")
    pending = sorted(queue.pending, key=lambda p: (p.deadline, p.id))
    if not pending:
        return AdapterPlan(adapter, (), None, None, "wait", "nothing pending")
    failed = queue.in_flight is not None and queue.in_flight.failed
    live = None if failed else queue.in_flight
    covers = live.covers if live else frozenset()
    in_time = {
        p.id for p in pending if live and p.id in covers and live.started + queue.duration <= p.deadline
    }
    uncovered = [p for p in pending if p.id not in covers]
    retrain_at = uncovered[0].deadline - queue.duration - margin if uncovered else None
    start = retrain_at is not None and now >= retrain_at

    overdue = tuple(p.id for p in pending if p.deadline <= now)
    at_risk = tuple(
        p.id
        for p in pending
        if p.deadline > now
        and p.id not in in_time
        and (p.deadline - now <= warn_within or now + queue.duration > p.deadline)
    )
    if live:
        next_step = (
            f"retrain started {iso(live.started)} expected released {iso(live.started + queue.duration)}"
        )
    else:
        next_step = "no retrain under way"
    if retrain_at is not None:
        next_step += f"; {len(uncovered)} uncovered, latest safe start {iso(retrain_at)}"
    if failed:
        next_step = "the last retrain failed; " + next_step

    action: Action
    if overdue:
        action, reason = "overdue", f"deadline passed for {', '.join(overdue)}; {next_step}"
    elif start:
        action, reason = "retrain", next_step
        if now + queue.duration > uncovered[0].deadline:
            reason += f"; cannot be released by {iso(uncovered[0].deadline)} even starting now"
    elif at_risk:
        action, reason = "warn", f"due within {warn_within.days} days: {', '.join(at_risk)}; {next_step}"
    else:
        action, reason = "wait", next_step
    ids = tuple(p.id for p in pending)
    return AdapterPlan(adapter, ids, pending[0].deadline, retrain_at, action, reason, start, overdue, at_risk)


def plan(
    queues: Mapping[str, Queue],
    now: dt.datetime,
    *,
    warn_within: dt.timedelta = WARN_WITHIN,
    margin: dt.timedelta = SAFETY_MARGIN,
) -> list[AdapterPlan]:
    """One plan per adapter, by adapter name."""
    return [plan_adapter(a, queues[a], now, warn_within=warn_within, margin=margin) for a in sorted(queues)]


def pending_by_adapter(states: Mapping[str, RequestState]) -> dict[str, list[Pending]]:
    """The planner's input from the ledger: purged requests per adapter not yet released there."""
    out: dict[str, list[Pending]] = {}
    for state in states.values():
        for adapter in state.pending:
            if state.deadline is None:
                raise BadInput(
                    f"ledger request {state.id}", "purged without a `requested` entry (no deadline)"
                )
            out.setdefault(adapter, []).append(Pending(state.id, state.deadline))
    return out


def plan_offline(
    arrivals: Sequence[tuple[dt.datetime, dt.datetime]], duration: dt.timedelta
) -> list[dt.datetime]:
    """Fewest retrain start times meeting every (arrival, deadline), knowing the future: the greedy rule.

    Raises ValueError when a request cannot be met at all (arrival + duration > deadline).
    """
    starts: list[dt.datetime] = []
    for latest, arrival in sorted((deadline - duration, arrival) for arrival, deadline in arrivals):
        if arrival > latest:
            raise ValueError(f"a request arriving {iso(arrival)} cannot be released within its deadline")
        if not starts or arrival > starts[-1]:
            starts.append(latest)
    return starts
