"""What a card keeps of its earlier versions and says about them: their links and history (copied, never
recomputed: DESIGN.md section 7, invariant 5), the versions a removal supersedes, the changelog entry against
the previous published version, and the model repository's removal form.

Pure: `cardbuilder` calls it while building a card; `cardimport` makes the history of a hand-written card.
"""

from __future__ import annotations

import datetime as dt
import re

from kiki_bot.core.cardmodel import (
    Card,
    ChangelogEntry,
    Fingerprint,
    History,
    Previous,
    Purge,
    Removals,
    Superseded,
    VersionLink,
)
from kiki_bot.core.escape import md


def hub_revision_url(repo: str, version: str) -> str:
    return f"https://huggingface.co/{repo}/blob/v{version}/README.md"


def history_of(previous_card: Card | None, version: str, repo: str) -> History:
    """The history a card of `version` keeps from the committed card: a draft (never published) and the version
    itself are left out, a published predecessor is added as it was published."""
    if previous_card is None:
        return History()
    h = previous_card.header
    changelog = [e for e in previous_card.changelog if previous_card.published_at is not None or e.version != h.version]
    if h.version == version or previous_card.published_at is None:
        return History(versions=list(h.previous_versions), changelog=changelog, previous=previous_card.previous)
    link = VersionLink(version=h.version, date=h.last_update, url=hub_revision_url(repo, h.version),
                       published_at=previous_card.published_at, placed_on_market=previous_card.section1.placement_date,
                       revision=f"v{h.version}", train_sha256=previous_card.run.train_sha256, ledger_seq=h.ledger_seq,
                       ledger_hash=h.ledger_hash, fingerprint=previous_card.fingerprint)
    return History(versions=[*h.previous_versions, link], changelog=changelog,
                   previous=Previous(version=h.version, date=h.last_update, fingerprint=previous_card.fingerprint))


def superseded(versions: list[VersionLink], purges: list[Purge], action: str, issues_url: str | None
               ) -> list[Superseded]:
    """The published versions built before a purge (the ledger head they saw is older): they may hold the
    removed records. Imported versions predate the ledger, so every purge concerns them."""
    out = []
    for v in versions:
        later = [p for p in purges if p.seq > v.ledger_seq]
        if later:
            out.append(Superseded(version=v.version, requests=sorted({p.request for p in later}),
                                  issues=sorted({p.issue for p in later if p.issue is not None}),
                                  issues_url=issues_url, action=action))
    return out


def issues_url(contact: str) -> str | None:
    """The model repository's issue tracker, when the provider's contact is it (what `init` writes)."""
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)/issues/?", contact)
    return f"https://github.com/{m.group(1)}/issues" if m else None


def removal_form_url(contact: str) -> str | None:
    """The removal-request form of the model repository: a direct link for rightsholders."""
    issues = issues_url(contact)
    return f"{issues}/new?template=removal-request.yml" if issues else None


def changelog_entry(version: str, date: dt.date, now: Fingerprint, previous: Previous | None,
                    removals: Removals, trained: bool = False) -> ChangelogEntry:
    """What changed since the previous published version, in Keep a Changelog's categories.

    Only a card with a training run (`trained`) may say it was retrained; a re-rendered draft was not.
    """
    entry = ChangelogEntry(version=version, date=date)
    if previous is None:
        entry.added.append("First Public Summary of Training Content for this adapter.")
        entry.added.extend(f"Source {sid}: {rec:,} records, {tok:,} tokens." for sid, (rec, tok) in now.sources.items())
        return entry
    if previous.fingerprint is None:  # an imported card: its sources may be these, so none is said to be added
        counted = "; ".join(f"{sid} {rec:,} records ({tok:,} tokens)" for sid, (rec, tok) in now.sources.items())
        entry.added.append(f"First Public Summary of Training Content generated from the data; v{previous.version} "
                           "and earlier were written by hand (imported from their card, not recomputed, so what "
                           f"changed since cannot be said). Counted from the data: {counted}.")
        return entry
    was = previous.fingerprint
    for sid in sorted(set(now.sources) | set(was.sources)):
        if sid not in was.sources:
            entry.added.append(f"Source {sid}: {now.sources[sid][0]:,} records.")
        elif sid not in now.sources:
            entry.removed.append(f"Source {sid} ({was.sources[sid][0]:,} records).")
        elif now.sources[sid][0] != was.sources[sid][0]:
            delta = now.sources[sid][0] - was.sources[sid][0]
            target = entry.added if delta > 0 else entry.removed
            target.append(f"Source {sid}: {abs(delta):,} records {'added' if delta > 0 else 'removed'} "
                          f"({was.sources[sid][0]:,} → {now.sources[sid][0]:,}).")
    honoured = now.removals - was.removals
    if honoured > 0:
        r = removals
        days = ("" if r.median_days_to_release is None else
                f"; median {r.median_days_to_release:g} days, longest {r.longest_days_to_release:g} days from "
                "request to release")
        entry.removed.append(f"{honoured:,} records removed on rightsholders' requests (removal ledger: "
                             f"{r.received} received, {r.approved} approved, {r.rejected} rejected, "
                             f"{r.records_removed:,} records removed in all{days}).")
    for key in sorted(set(now.training) | set(was.training)):
        if now.training.get(key) != was.training.get(key):
            entry.changed.append(f"Training {key}: {was.training.get(key)} → {now.training.get(key)}.")
    for label, old, new in (("Licences", was.licenses, now.licenses), ("Size bin", was.size_bins, now.size_bins),
                            ("Latest collection", was.latest_collection, now.latest_collection),
                            ("Crawl period", was.period, now.period), ("Top domains", was.domains, now.domains),
                            ("Large public datasets", was.large, now.large)):
        if old != new:
            entry.changed.append(f"{label}: {_show(old)} → {_show(new)}.")
    if not (entry.added or entry.changed or entry.removed):
        entry.changed.append("Retrained; the training data is unchanged." if trained else
                             f"No change to the training data or parameters since v{previous.version}.")
    return entry


def _show(value: object) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


_NOTICE_START, _NOTICE_END = "<!-- kiki-bot:superseded -->", "<!-- /kiki-bot:superseded -->"
_FRONT_MATTER = re.compile(r"\A\s*---\r?\n[\s\S]*?\r?\n---(?:\r?\n|\Z)")
_OLD_NOTICE = re.compile(re.escape(_NOTICE_START) + r"[\s\S]*?" + re.escape(_NOTICE_END) + r"\n*")


def superseded_notice(s: Superseded, repo: str, replacement: str) -> str:
    """What a superseded version's own README says at its top, so a download of that revision tells it: the
    requests whose records it was trained on, and the version that replaces it (linked)."""
    requests = ", ".join(f"[{md(r)}]({s.issues_url}/{n})" if s.issues_url and n is not None else md(r)
                         for r, n in _request_issues(s))
    new = f"https://huggingface.co/{repo}/tree/v{replacement}"
    return (f"> **Superseded.** Version {md(s.version)} was trained on records since removed at their rightsholders' "
            f"request (removal request {requests}). Use version [{md(replacement)}]({new}) instead, trained "
            "without them.")


def _request_issues(s: Superseded) -> list[tuple[str, int | None]]:
    """Each request with its issue number, when the requests and issues pair up (ids are `R-<issue>`)."""
    return [(r, int(r[2:]) if r.startswith("R-") and r[2:].isdigit() and int(r[2:]) in s.issues else None)
            for r in s.requests]


def flag_readme(readme: str, notice: str) -> str:
    """The README with `notice` at the top of its body: after the YAML front matter (left byte for byte, so the
    Hub's card validator reads the same metadata), in place of any notice an earlier flag put there. The same
    notice twice gives the same text, so flagging again changes nothing."""
    m = _FRONT_MATTER.match(readme)
    head, body = (readme[:m.end()], readme[m.end():]) if m else ("", readme)
    if not head.endswith("\n") and head:
        head += "\n"
    body = body.lstrip("\n")
    body = _OLD_NOTICE.sub("", body, count=1) if body.startswith(_NOTICE_START) else body
    return f"{head}{_NOTICE_START}\n\n{notice}\n\n{_NOTICE_END}\n\n{body}"
