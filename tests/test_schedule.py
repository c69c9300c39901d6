"""The deadline planner: online actions under a frozen clock, and the greedy rule against brute force."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from time_machine import TimeMachineFixture

from kiki_bot.core import ledger
from kiki_bot.repo import ledgerfile
from kiki_bot.core.errors import BadInput
from kiki_bot.core.schedule import (
    SAFETY_MARGIN,
    InFlight,
    Pending,
    Queue,
    deadline_for,
    iso,
    pending_by_adapter,
    plan,
    plan_adapter,
    plan_offline,
)

PARIS = ZoneInfo("Europe/Paris")
T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
DURATION = 2 * DAY + 12 * HOUR
LEAD = DURATION + SAFETY_MARGIN  # a retrain starts this long before the earliest uncovered deadline


def now() -> dt.datetime:
    """What the deadline run passes as `now`: the (frozen) wall clock."""
    return dt.datetime.now(dt.UTC)


def pending(opened: dt.datetime, name: str = "R-1") -> Pending:
    return Pending(name, deadline_for(opened))


def test_nothing_pending(time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(T0, tick=False)
    p = plan_adapter("cpp", Queue([], DURATION), now())
    assert (p.action, p.pending, p.earliest_deadline, p.retrain_at, p.start_retrain) == (
        "wait",
        (),
        None,
        None,
        False,
    )


def test_one_request_waits_warns_then_retrains(time_machine: TimeMachineFixture) -> None:
    queue = Queue([pending(T0)], DURATION)
    deadline = T0 + 30 * DAY
    time_machine.move_to(T0 + DAY, tick=False)
    p = plan_adapter("cpp", queue, now())
    assert (p.action, p.earliest_deadline, p.retrain_at) == ("wait", deadline, deadline - LEAD)

    time_machine.move_to(deadline - 7 * DAY, tick=False)
    p = plan_adapter("cpp", queue, now())
    assert (p.action, p.at_risk, p.start_retrain) == ("warn", ("R-1",), False)
    assert "due within 7 days" in p.reason

    time_machine.move_to(deadline - LEAD - dt.timedelta(seconds=1), tick=False)
    assert plan_adapter("cpp", queue, now()).action == "warn"
    time_machine.shift(dt.timedelta(seconds=1))
    p = plan_adapter("cpp", queue, now())
    assert (p.action, p.start_retrain, p.overdue) == ("retrain", True, ())

    time_machine.shift(HOUR)  # the retrain is under way and expected in time: nothing to do or warn about
    p = plan_adapter("cpp", Queue(queue.pending, DURATION, InFlight(now() - HOUR, frozenset({"R-1"}))), now())
    assert (p.action, p.at_risk, p.retrain_at) == ("wait", (), None)


def test_burst_is_one_retrain_at_the_earliest_deadline(time_machine: TimeMachineFixture) -> None:
    burst = [pending(T0 + i * HOUR, f"R-{10 - i}") for i in range(6)]
    time_machine.move_to(T0 + 30 * DAY - LEAD, tick=False)
    p = plan_adapter("cpp", Queue(burst, DURATION), now())
    assert (p.action, p.earliest_deadline) == ("retrain", T0 + 30 * DAY)
    assert p.pending == ("R-10", "R-9", "R-8", "R-7", "R-6", "R-5")  # by deadline
    started = InFlight(now(), frozenset(p.pending))
    time_machine.shift(DAY)
    assert plan_adapter("cpp", Queue(burst, DURATION, started), now()).action == "wait"


def test_request_arriving_during_a_retrain_is_not_covered(time_machine: TimeMachineFixture) -> None:
    first, late = pending(T0, "R-1"), pending(T0 + 25 * DAY, "R-2")
    time_machine.move_to(T0 + 26 * DAY, tick=False)
    running = InFlight(T0 + 25 * DAY - HOUR, frozenset({"R-1"}))
    p = plan_adapter("cpp", Queue([first, late], DURATION, running), now())
    assert (p.action, p.pending, p.retrain_at) == ("wait", ("R-1", "R-2"), late.deadline - LEAD)
    assert p.earliest_deadline == first.deadline and "1 uncovered" in p.reason

    time_machine.move_to(late.deadline - LEAD, tick=False)  # R-1 released meanwhile
    p = plan_adapter("cpp", Queue([late], DURATION, running), now())
    assert (p.action, p.start_retrain) == ("retrain", True)


def test_failed_retrain_is_retried(time_machine: TimeMachineFixture) -> None:
    queue = [pending(T0)]
    time_machine.move_to(T0 + 30 * DAY - LEAD + DAY, tick=False)
    failed = InFlight(T0 + 30 * DAY - LEAD, frozenset({"R-1"}), failed=True)
    p = plan_adapter("cpp", Queue(queue, DURATION, failed), now())
    assert (p.action, p.start_retrain) == ("retrain", True)
    assert p.reason.startswith("the last retrain failed; no retrain under way")


def test_retrain_that_cannot_finish_in_time_starts_now_and_warns(time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(T0 + 29 * DAY, tick=False)
    p = plan_adapter("cpp", Queue([pending(T0)], DURATION), now())
    assert (p.action, p.start_retrain, p.at_risk, p.overdue) == ("retrain", True, ("R-1",), ())
    assert "cannot be released by 2025-05-31T12:00:00Z even starting now" in p.reason


def test_late_retrain_under_way_warns_without_another(time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(T0 + 28 * DAY, tick=False)
    running = InFlight(T0 + 28 * DAY, frozenset({"R-1"}))
    p = plan_adapter("cpp", Queue([pending(T0)], DURATION, running), now())
    assert (p.action, p.start_retrain, p.at_risk) == ("warn", False, ("R-1",))


def test_missed_deadline_is_overdue(time_machine: TimeMachineFixture) -> None:
    requests = [pending(T0, "R-1"), pending(T0 + 20 * DAY, "R-2")]
    time_machine.move_to(T0 + 31 * DAY, tick=False)
    p = plan_adapter("cpp", Queue(requests, DURATION), now())
    assert (p.action, p.overdue, p.start_retrain) == ("overdue", ("R-1",), True)
    assert p.reason.startswith("deadline passed for R-1")

    running = InFlight(now() - HOUR, frozenset({"R-1", "R-2"}))
    p = plan_adapter("cpp", Queue(requests, DURATION, running), now())
    assert (p.action, p.overdue, p.start_retrain, p.retrain_at) == ("overdue", ("R-1",), False, None)


@pytest.mark.parametrize(
    ("opened_local", "local_shift"),
    [
        (dt.datetime(2025, 3, 29, 23, 30, tzinfo=PARIS), HOUR),  # CET; clocks go forward 2025-03-30 02:00
        (dt.datetime(2025, 10, 25, 23, 30, tzinfo=PARIS), -HOUR),  # CEST; clocks go back 2025-10-26 03:00
    ],
)
def test_deadline_is_opened_plus_30_utc_days_across_dst(
    time_machine: TimeMachineFixture, opened_local: dt.datetime, local_shift: dt.timedelta
) -> None:
    deadline = deadline_for(opened_local)
    assert deadline == opened_local.astimezone(dt.UTC) + 30 * DAY
    assert deadline.tzinfo == dt.UTC
    wall_clock = deadline.astimezone(PARIS).replace(tzinfo=None) - opened_local.replace(tzinfo=None)
    assert wall_clock == 30 * DAY + local_shift  # only its local rendering moves, by the DST hour

    queue = Queue([Pending("R-1", deadline)], DURATION)
    time_machine.move_to(deadline - dt.timedelta(seconds=1), tick=False)
    assert plan_adapter("cpp", queue, now()).action == "retrain"
    time_machine.move_to(deadline, tick=False)
    assert plan_adapter("cpp", queue, now()).overdue == ("R-1",)


def test_naive_times_are_refused() -> None:
    with pytest.raises(BadInput, match="^now: naive time"):
        plan_adapter("cpp", Queue([], DURATION), dt.datetime(2025, 5, 1))
    with pytest.raises(BadInput, match="^R-1.deadline: naive time"):
        Pending("R-1", dt.datetime(2025, 5, 1))
    with pytest.raises(BadInput, match="^opened: naive time"):
        deadline_for(dt.datetime(2025, 5, 1))


def test_plan_from_ledger_is_per_adapter_and_json(tmp_path: Path) -> None:
    path = tmp_path / "removals.jsonl"
    ref = {"id": "R-4", "issue": 4}
    ledgerfile.append_once(
        path,
        "requested",
        ref,
        "alice",
        T0,
        selectors=["alice"],
        body_sha256="0" * 64,
        deadline=deadline_for(T0),
        adapters=["cpp", "rust"],
    )
    ledgerfile.append_once(
        path, "purged", ref, "kiki-bot[bot]", T0, records=[["s", 1, "1" * 64]], adapters=["cpp", "rust"]
    )
    ledgerfile.append_once(path, "released", ref, "kiki-bot[bot]", T0 + DAY, adapter="cpp", version="1.0.1",
                           train_sha256="2" * 64, adapter_sha256="3" * 64)
    queues = {
        a: Queue(p, DURATION) for a, p in pending_by_adapter(ledger.request_state(ledgerfile.read(path))).items()
    }
    plans = plan({**queues, "cpp": Queue([], DURATION)}, T0 + 2 * DAY)
    assert [(p.adapter, p.action, p.pending) for p in plans] == [
        ("cpp", "wait", ()),
        ("rust", "wait", ("R-4",)),
    ]
    assert json.loads(json.dumps(plans[1].as_json()))["retrain_at"] == iso(T0 + 30 * DAY - LEAD)


# ---------------------------------------------------------------- greedy vs brute force
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
windows = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=6)


def _arrivals(hours: list[tuple[int, int]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """(arrival, deadline) from (arrival hour, slack hours) pairs."""
    return [(START + a * HOUR, START + (a + slack) * HOUR) for a, slack in hours]


def _brute_force_minimum(
    arrivals: list[tuple[dt.datetime, dt.datetime]], duration: dt.timedelta
) -> int | None:
    """Fewest starts stabbing every [arrival, deadline - duration]; None when infeasible.

    Only window endpoints need trying: the windows containing any point all contain the endpoint just
    before it, so some optimal schedule uses endpoints only.
    """
    windows = [(a, d - duration) for a, d in arrivals]
    points = sorted({t for w in windows for t in w})
    for k in range(len(windows) + 1):
        for starts in itertools.combinations(points, k):
            if all(any(a <= s <= b for s in starts) for a, b in windows):
                return k
    return None


def _covering_start(
    arrivals: list[tuple[dt.datetime, dt.datetime]], starts: list[dt.datetime]
) -> list[dt.datetime | None]:
    """Each request is released by the first retrain starting after it arrives (it covers all then pending)."""
    return [min((s for s in starts if s >= a), default=None) for a, _ in arrivals]


@settings(max_examples=400, deadline=None)
@given(windows, st.integers(0, 40))
def test_greedy_uses_the_fewest_retrains_and_misses_nothing(
    hours: list[tuple[int, int]], duration_h: int
) -> None:
    arrivals, duration = _arrivals(hours), duration_h * HOUR
    best = _brute_force_minimum(arrivals, duration)
    if best is None:
        with pytest.raises(ValueError, match="cannot be released within its deadline"):
            plan_offline(arrivals, duration)
        return
    starts = plan_offline(arrivals, duration)
    assert len(starts) == best
    for (_, deadline), start in zip(arrivals, _covering_start(arrivals, starts), strict=True):
        assert start is not None and start + duration <= deadline


@settings(max_examples=200, deadline=None)
@given(windows, st.integers(0, 40))
def test_online_rule_with_exact_timing_is_the_greedy(hours: list[tuple[int, int]], duration_h: int) -> None:
    """Woken at every arrival and at each retrain_at, with no margin, the online planner starts retrains
    exactly when plan_offline does: the deadline run is the greedy minus what it cannot foresee."""
    arrivals, duration = _arrivals([(a, duration_h + slack) for a, slack in hours]), duration_h * HOUR
    arrival_times, starts, covered = sorted({a for a, _ in arrivals}), [], set()
    clock = arrival_times[0]
    while True:
        queue = [
            Pending(f"R-{i + 1}", d) for i, (a, d) in enumerate(arrivals) if a <= clock and i not in covered
        ]
        p = plan_adapter("cpp", Queue(queue, duration), clock, margin=dt.timedelta(0))
        if p.start_retrain:
            starts.append(clock)
            covered |= {int(i.removeprefix("R-")) - 1 for i in p.pending}
            continue
        wake = [t for t in arrival_times if t > clock] + ([p.retrain_at] if p.retrain_at else [])
        if not wake:
            break
        clock = min(wake)
    assert starts == plan_offline(arrivals, duration)
