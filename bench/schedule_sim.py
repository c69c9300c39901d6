"""A simulated year of removal requests: the deadline planner vs a retrain per request vs a monthly retrain.

Model (seeded, deterministic):
- 3 adapters; requests open as a Poisson process of 2 a week per adapter for 365 days; each is approved
  and purged 0-5 days (uniform) after opening; its deadline is opened + 30 days (UTC).
- One shared runner. Other work keeps it busy half the time: alternating busy and idle blocks, each
  uniform between 1 and 24 hours (`longest_block`). A triggered retrain waits for the end of a busy
  block and for the runner's earlier retrains (FIFO), then trains for 12 h; the release follows a 2-day
  review. Its training set is taken when it is triggered (the tag's commit): it covers what is pending then.
- `planner`: the deadline run calls `kiki_bot.core.schedule.plan_adapter` every 6 hours (CHECK_EVERY: a
  cron of `0 */6 * * *`; a daily cron needs a larger margin, see the sweep) with the expected duration
  12 h + 2 days and the default SAFETY_MARGIN, and starts a retrain when told to.
  `per_request`: a retrain at every purge. `monthly`: a retrain on the 1st of each month when anything
  is pending. Every policy runs until all requests are released; all its retrains count.
- `lower_bound`: `plan_offline` on the real purge times and deadlines with the duration without any
  queueing (12 h + 2 days): not even a policy that knew the future could retrain fewer times.
- `margin_sweep`: the planner over 20 seeds for other margins and check intervals, and with busy blocks
  up to 48 h, to show why SAFETY_MARGIN is what it is.

Run: .venv/bin/python bench/schedule_sim.py   (prints one JSON document; ~10 s of CPU)
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from kiki_bot.core.schedule import (
    SAFETY_MARGIN,
    InFlight,
    Pending,
    Queue,
    deadline_for,
    plan_adapter,
    plan_offline,
)

SEED = 2025
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
HORIZON = START + YEAR + dt.timedelta(days=60)
ADAPTERS = ("adapter-a", "adapter-b", "adapter-c")
PER_WEEK = 2.0
TRAIN = dt.timedelta(hours=12)
REVIEW = dt.timedelta(days=2)
DURATION = TRAIN + REVIEW
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
CHECK_EVERY = 6 * HOUR


@dataclass
class Request:
    id: str
    adapter: str
    opened: dt.datetime
    purged: dt.datetime
    deadline: dt.datetime
    released: dt.datetime | None = None


def make_requests(rng: random.Random) -> list[Request]:
    out = []
    for adapter in ADAPTERS:
        t = START
        while (t := t + dt.timedelta(days=rng.expovariate(PER_WEEK / 7))) < START + YEAR:
            purged = t + dt.timedelta(days=rng.uniform(0, 5))
            out.append(Request(f"{adapter}#{len(out)}", adapter, t, purged, deadline_for(t)))
    return out


def make_busy_blocks(
    rng: random.Random, longest_block: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    def block() -> dt.timedelta:
        return HOUR + rng.random() * (longest_block - HOUR)

    blocks, t = [], START
    while t < HORIZON + YEAR:
        t += block()  # idle
        blocks.append((t, t + (length := block())))
        t += length
    return blocks


class Runner:
    """The shared runner: busy blocks of other work, then our retrains one after another."""

    def __init__(self, blocks: list[tuple[dt.datetime, dt.datetime]]) -> None:
        self.blocks, self.starts, self.free = blocks, [b[0] for b in blocks], START

    def release_time(self, triggered: dt.datetime) -> dt.datetime:
        start = max(triggered, self.free)
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and start < self.blocks[i][1]:
            start = self.blocks[i][1]
        self.free = start + TRAIN
        return start + TRAIN + REVIEW


# A policy: (adapter, now, pending, retrain under way) -> start a retrain now?
Policy = Callable[[str, dt.datetime, list[Request], InFlight | None], bool]


def simulate(
    requests: list[Request], blocks: list, check_times: Iterable[dt.datetime], policy: Policy
) -> dict:
    for r in requests:
        r.released = None
    runner = Runner(blocks)
    retrains = dict.fromkeys(ADAPTERS, 0)
    in_flight: dict[str, tuple[InFlight, dt.datetime]] = {}
    queued = {a: sorted((r for r in requests if r.adapter == a), key=lambda r: r.purged) for a in ADAPTERS}
    pending: dict[str, list[Request]] = {a: [] for a in ADAPTERS}
    for now in sorted(set(check_times)):
        for adapter in ADAPTERS:
            todo, waiting = pending[adapter], queued[adapter]
            while waiting and waiting[0].purged <= now:
                todo.append(waiting.pop(0))
            todo[:] = [r for r in todo if r.released is None or r.released > now]
            live = in_flight.get(adapter)
            if not todo or not policy(adapter, now, todo, live[0] if live and live[1] > now else None):
                continue
            released = runner.release_time(now)
            retrains[adapter] += 1
            in_flight[adapter] = (InFlight(now, frozenset(r.id for r in todo)), released)
            for r in todo:
                r.released = min(r.released or released, released)
    assert all(r.released for r in requests), "horizon too short"
    days = [(r.released - r.opened) / DAY for r in requests]
    return {
        "retrains_per_adapter": retrains,
        "retrains_total": sum(retrains.values()),
        "missed_deadlines": sum(r.released > r.deadline for r in requests),
        "median_days_to_release": round(statistics.median(days), 1),
        "longest_days_to_release": round(max(days), 1),
    }


def planner(margin: dt.timedelta) -> Policy:
    def policy(adapter: str, now: dt.datetime, pending: list[Request], live: InFlight | None) -> bool:
        queue = Queue([Pending(r.id, r.deadline) for r in pending], DURATION, live)
        return plan_adapter(adapter, queue, now, margin=margin).start_retrain

    return policy


def lower_bound(requests: list[Request]) -> dict[str, int]:
    return {
        a: len(plan_offline([(r.purged, r.deadline) for r in requests if r.adapter == a], DURATION))
        for a in ADAPTERS
    }


def every(step: dt.timedelta) -> list[dt.datetime]:
    return [START + step * i for i in range(int((HORIZON - START) / step) + 1)]


def run(
    seed: int,
    margin: dt.timedelta = SAFETY_MARGIN,
    check_every: dt.timedelta = CHECK_EVERY,
    longest_block: dt.timedelta = 24 * HOUR,
) -> tuple[list[Request], list[tuple[dt.datetime, dt.datetime]], dict[str, int], dict]:
    """One seeded world and the planner's figures in it: (requests, busy blocks, lower bound, figures)."""
    requests = make_requests(random.Random(seed))
    blocks = make_busy_blocks(random.Random(seed + 1), longest_block)
    bound = lower_bound(requests)
    figures = simulate(requests, blocks, every(check_every), planner(margin))
    figures["ratio_to_lower_bound"] = round(figures["retrains_total"] / sum(bound.values()), 3)
    return requests, blocks, bound, figures


def sweep(margin: dt.timedelta, check_every: dt.timedelta, longest_block: dt.timedelta) -> dict:
    figures = [run(seed, margin, check_every, longest_block)[3] for seed in range(SEED, SEED + 20)]
    ratios = [f["ratio_to_lower_bound"] for f in figures]
    return {
        "margin_h": margin / HOUR,
        "check_every_h": check_every / HOUR,
        "longest_block_h": longest_block / HOUR,
        "missed_deadlines": sum(f["missed_deadlines"] for f in figures),
        "mean_ratio": round(statistics.mean(ratios), 3),
        "worst_ratio": max(ratios),
    }


def main() -> None:
    requests, blocks, bound, ours = run(SEED)
    total_bound = sum(bound.values())
    months = [dt.datetime(2025 + m // 12, m % 12 + 1, 1, tzinfo=dt.UTC) for m in range(15)]
    policies = {
        "planner": ours,
        "per_request": simulate(
            requests, blocks, [r.purged for r in requests], lambda _a, now, todo, _l: todo[-1].purged == now
        ),
        "monthly": simulate(requests, blocks, months, lambda *_: True),
    }
    for figures in policies.values():
        figures["ratio_to_lower_bound"] = round(figures["retrains_total"] / total_bound, 3)
    settings = [(h * HOUR, CHECK_EVERY, 24 * HOUR) for h in (24, 36, 48)]
    settings += [(h * HOUR, DAY, 24 * HOUR) for h in (48, 72)] + [
        (h * HOUR, CHECK_EVERY, 48 * HOUR) for h in (48, 72)
    ]
    busy = sum((end - start for start, end in blocks), dt.timedelta()) / (blocks[-1][1] - START)
    report = {
        "seed": SEED,
        "requests": len(requests),
        "runner_busy_share": round(busy, 3),
        "planner_settings": {"check_every_h": CHECK_EVERY / HOUR, "safety_margin_h": SAFETY_MARGIN / HOUR},
        "lower_bound": {"retrains_per_adapter": bound, "retrains_total": total_bound},
        "policies": policies,
        "target_met": ours["missed_deadlines"] == 0 and ours["ratio_to_lower_bound"] <= 1.1,
        "margin_sweep_20_seeds": [sweep(*setting) for setting in settings],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
