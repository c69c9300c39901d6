"""The deadline run (cron, every 6 hours): every purged removal must reach a published release in time.

It plans with the latest-safe-start rule (kiki_bot.core.schedule), starts each needed retrain exactly once
(a tag and a dispatch of the release workflow; a rerun finds the run it started), warns on issues at
risk, and on a missed deadline applies the configured fallback to the Hub repo and fails loudly.
"""

from __future__ import annotations

import datetime as dt

from kiki_bot import render
from kiki_bot.context import Context
from kiki_bot.core import ledger, schedule, tags
from kiki_bot.core.errors import CheckFailed
from kiki_bot.core.escape import md
from kiki_bot.removal import ledger_at, ledger_file, published, with_open_purges
from kiki_bot.repo import ledgerfile

DEFAULT_RUN = dt.timedelta(hours=12)  # until an adapter has a recorded training run


def next_version(ctx: Context, adapter: str) -> str:
    """The patch after the last published version; before any, the draft's own version (or 0.1.0)."""
    from kiki_bot.core.cardmodel import last_published

    card = render.load_card(ctx.project.card_dir(adapter))
    last = last_published(card)
    return tags.next_patch(last) if last else card.header.version if card else "0.1.0"


def release_tag(ctx: Context, adapter: str) -> str:
    """The tag a retrain of `adapter` releases: the next version's, or a later one's while that tag exists on a
    commit whose ledger the default branch has moved past. Its release is refused (a purge merged after the tag
    was made: the review PR would drop those entries) and tags are never moved, so dispatching it again would
    be refused again, run after run until the deadline passed."""
    version = next_version(ctx, adapter)
    if ctx.repository is None:
        return f"{adapter}/v{version}"
    name = ledger_file(ctx)
    head = ctx.fx.file_at(name, ctx.default_branch) or b""
    while ctx.fx.tag_exists(tag := f"{adapter}/v{version}") and not (
            ctx.fx.file_at(name, f"refs/tags/{tag}") or b"").startswith(head):
        version = tags.next_patch(version)
    return tag


def duration(ctx: Context, adapter: str) -> dt.timedelta:
    """From starting a retrain to a published version: the last run's wall time plus the review buffer."""
    card = render.load_card(ctx.project.card_dir(adapter))
    wall = card.run.wall_time_s if card and card.run.wall_time_s else None
    run = dt.timedelta(seconds=wall) if wall else DEFAULT_RUN
    return run + dt.timedelta(days=ctx.project.config.policy.review_buffer_days)


def in_flight(ctx: Context, tag: str) -> schedule.InFlight | None:
    """The retrain for `tag`, as GitHub shows it: its newest workflow run, and the ledger at the tag. A tag
    with no run is a retrain that never started (its dispatch was refused): none is in flight."""
    if ctx.repository is None or not ctx.fx.tag_exists(tag):
        return None
    runs = ctx.fx.workflow_runs(ctx.settings.release_workflow, tag)
    if not runs:
        return None
    started, status, conclusion = runs[0]
    failed = status == "completed" and conclusion != "success"
    covers = {e.request.id for e in ledger_at(ctx, f"refs/tags/{tag}", tag) if e.event == "purged"}
    return schedule.InFlight(started, frozenset(covers), failed)


def plan(ctx: Context) -> tuple[list[schedule.AdapterPlan], dict[str, str], dict[str, ledger.RequestState]]:
    """The plan per adapter with pending removals, the tag each would release, and the request states."""
    states = ledger.request_state(with_open_purges(ctx), published(ctx.project))
    pending = schedule.pending_by_adapter(states)
    release_tags = {a: release_tag(ctx, a) for a in pending}
    queues = {a: schedule.Queue(items, duration(ctx, a), in_flight(ctx, release_tags[a]))
              for a, items in pending.items()}
    warn = dt.timedelta(days=ctx.project.config.policy.warn_days)
    return schedule.plan(queues, ctx.now, warn_within=warn), release_tags, states


def run(ctx: Context) -> dict[str, str]:
    """Sync the requests that arrive outside the issue form, then act on the plan; raise CheckFailed (exit 1)
    after acting when a deadline was missed."""
    from kiki_bot import hubsync

    synced = hubsync.sync(ctx)
    plans, release_tags, states = plan(ctx)
    policy = ctx.project.config.policy
    missed = []
    for p in plans:
        adapter = ctx.project.adapter(p.adapter)
        if p.start_retrain:
            ctx.fx.start_release(tag=release_tags[p.adapter], branch=ctx.default_branch,
                                 workflow=ctx.settings.release_workflow)
        for rid in p.at_risk:
            if (issue := states[rid].issue) is not None and rid not in p.overdue:
                ctx.fx.comment_once(number=issue, kind=f"deadline-at-risk:{p.adapter}",
                              body=f"The release of {md(p.adapter)} without the records of {md(rid)} is at risk of "
                                   f"missing its deadline ({states[rid].deadline:%Y-%m-%d %H:%M} UTC). "
                                   f"{'A retrain has been started.' if p.start_retrain else 'Maintainers are asked to act.'}")
                ctx.fx.label(number=issue, add=["deadline-at-risk"], remove=[])
        for rid in p.overdue:
            state = states[rid]
            missed.append(f"{rid} ({p.adapter}): deadline {state.deadline:%Y-%m-%d %H:%M} UTC passed")
            ctx.fx.ledger_append(path=ctx.project.ledger_path, event="deadline_missed",
                                 request={"id": rid, "issue": state.issue}, actor=ctx.settings.bot_login,
                                 at=state.deadline, once=["adapter"],
                                 fields={"adapter": p.adapter, "fallback": policy.missed_deadline_fallback})
            if state.issue is not None:
                ctx.fx.label(number=state.issue, add=["deadline-missed"], remove=["deadline-at-risk"])
        if p.overdue:
            ctx.fx.hub_fallback(repo=adapter.hub_repo, how=policy.missed_deadline_fallback)
            if ctx.repository:
                ctx.fx.pull_request(branch=f"kiki/deadline/{p.adapter}", base=ctx.default_branch,
                                    title=f"Record missed removal deadlines of {p.adapter}",
                                    body=f"kiki-bot recorded missed deadlines in the ledger and applied the "
                                         f"`{policy.missed_deadline_fallback}` fallback to {md(adapter.hub_repo)}.",
                                    files={"compliance/removals.jsonl": ledgerfile.data(ctx.project.ledger_path)})
    if missed:
        raise CheckFailed("removal deadline missed", missed)
    return {"actions": ",".join(f"{p.adapter}:{p.action}" for p in plans), **synced}
