"""The maintainer's own commands on the model repository, between the moments: `card render`, `card import`,
`data manifest`, `data check-optouts`. Each checks everything before it writes anything, writes through Effects (so --dry-run
writes nothing, not even the lock file), says what it did, and returns the command's --json document.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kiki_bot import console
from kiki_bot.console import say
from kiki_bot.context import Context
from kiki_bot.core.cardmodel import RunFacts
from kiki_bot.core.errors import BadInput
from kiki_bot.repo.project import Adapter, Project
from kiki_bot.repo.storage import differing, writer_lock


def render_cards(ctx: Context, chosen: list[Adapter], version: str | None, day: dt.date | None,
                 facts: RunFacts | None) -> dict[str, Any]:
    """Write cards/<adapter>/{README.md,CHANGELOG.md,card.json} of the chosen adapters: every card is rendered
    and checked before any is written."""
    from kiki_bot.repo import cards

    proj, doc = ctx.project, {}
    with writer_lock(proj.root, ctx.dry_run):
        with console.progress("rendering cards", len(chosen)) as advance:
            rendered = []
            for a in chosen:
                rendered.append((a, cards.render_adapter(proj, a, version, day, facts)))
                advance(1)
        changed = differing(cards.files_of(proj, rendered))
        ctx.fx.write_files(files=changed)
    for a, r in rendered:
        names = [path.name for path in changed if path.parent == proj.card_dir(a.name)]
        doc[a.name] = {"version": r.card.header.version, "written": [] if ctx.dry_run else names}
        say(f"{a.name} v{r.card.header.version}: {', '.join(names) or 'unchanged'}{' (dry run)' if ctx.dry_run else ''}")
    return doc


def import_card(ctx: Context, file: Path, name: str | None, day: dt.date | None) -> dict[str, Any]:
    """Take the hand-written card `file` of adapter `name` into its card.json history (marked imported) and
    write the draft of the next version, which links every imported one."""
    from kiki_bot.repo import cards

    proj = ctx.project
    adapter, hand = cards.hand_written(proj, file, name)  # read (and refused) before anything is locked
    with writer_lock(proj.root, ctx.dry_run):
        rendered = cards.import_card(proj, adapter, hand, day)
        changed = differing(cards.files_of(proj, [(adapter, rendered)]))
        ctx.fx.write_files(files=changed)
    card = rendered.card
    imported = [v.version for v in card.header.previous_versions if v.imported]
    say(f"{adapter.name}: imported {', '.join('v' + v for v in imported)}; draft v{card.header.version} "
        f"{'would link' if ctx.dry_run else 'links'} them ({', '.join(p.name for p in changed) or 'unchanged'})")
    return {adapter.name: {"imported": imported, "version": card.header.version,
                           "written": [] if ctx.dry_run else [p.name for p in changed]}}


def _known(project: Project, source: str) -> None:
    if source not in project.sources:
        raise BadInput("source", f"unknown source {source!r} (known: {', '.join(sorted(project.sources))})")


def refresh_manifests(ctx: Context, source: str | None) -> dict[str, Any]:
    """Refresh data/<source>/MANIFEST.json (every source when None) from the files on disk, after validating
    every record."""
    from kiki_bot.repo import manifests

    proj = ctx.project
    if source is not None:
        _known(proj, source)
    ids = [source] if source else sorted(proj.sources)
    with writer_lock(proj.root, ctx.dry_run):
        counts, manifests_now = manifests.refreshed_all(proj.data_dir, ids)
        changed = differing(manifests_now)
        ctx.fx.write_files(files=changed)
    doc = {}
    for sid in ids:
        stale = proj.data_dir / sid / manifests.MANIFEST in changed
        doc[sid] = {"records": counts[sid], "changed": stale and not ctx.dry_run}
        state = ("would be updated" if ctx.dry_run else "updated") if stale else "unchanged"
        say(f"{sid}: {counts[sid]} records, manifest {state}")
    return doc


def check_optouts(ctx: Context, source: str | None, offline: bool) -> dict[str, Any]:
    """Check the origin hosts of the crawled sources (or the one named) for reservations of rights and append
    the answers to their evidence; `refused` in the document lists the records the build refuses."""
    from kiki_bot.core.optouts import latest
    from kiki_bot.repo.evidence import crawled
    from kiki_bot.shells import optouts

    proj = ctx.project
    ids = [s.id for s in crawled(proj.sources.values()) if source in (None, s.id)]
    if source is not None and not ids:
        _known(proj, source)
        raise BadInput("source", f"{source} is not a crawled source (category {proj.sources[source].category.value}); "
                                 "opt-out checks are for category 2.3 sources")
    with writer_lock(proj.root, ctx.dry_run):
        outcome = optouts.run(proj, sorted(ids), ctx.now, offline)
        if outcome.files:
            ctx.fx.write_files(files=outcome.files)
    doc: dict[str, Any] = {"sources": {}}
    for sid in sorted(ids):
        lines = outcome.evidence[sid]
        last = latest(lines or [])
        counts = {v: sum(e.verdict == v for ls in last.values() for e in ls) for v in ("reserved", "allowed", "unavailable")}
        doc["sources"][sid] = {"checked": len(outcome.lines.get(sid, [])), "hosts": sorted(last), "latest": counts,
                    "reserved": [e.model_dump(mode="json") for ls in last.values() for e in ls if e.verdict == "reserved"]}
        state = "stored evidence (offline)" if offline else f"{len(last)} host(s) checked"
        found = ", ".join(f"{n} {v}" for v, n in counts.items()) if lines else "no evidence stored"
        say(f"{sid}: {state}; latest check: {found}")
    doc["refused"] = [f"{w}: {why}" for w, why in outcome.refused]
    for where, why in outcome.refused:
        say(f"  refused at build: {where}: {why}")
    return doc
