"""Moment 1, second half: the review PR was merged. Publish the staged adapter on the Hub, tag it,
make the GitHub release, and tell the requesters whose removals this version satisfies."""

from __future__ import annotations

from kiki_bot import render
from kiki_bot.context import Context
from kiki_bot.core import ledger, tags
from kiki_bot.core.cardhistory import superseded_notice
from kiki_bot.core.errors import BadInput, CheckFailed
from kiki_bot.core.escape import md
from kiki_bot.release import hub_title, parse_tag
from kiki_bot.repo import ledgerfile


def changelog_text(card) -> str:
    entry = card.changelog[0]
    parts = []
    for title, lines in (("Added", entry.added), ("Changed", entry.changed), ("Removed", entry.removed),
                         ("Security", entry.security)):
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(f"- {md(line)}" for line in lines))
    return "\n\n".join(parts) + "\n"


def _record_published(ctx: Context, adapter: str, card) -> None:
    """The Hub tag and the GitHub release exist: card.json says so (`published_at`), in the checkout and on the
    default branch, where the next release and triage read which versions were published."""
    text = render.card_json(card.model_copy(update={"published_at": ctx.now.replace(microsecond=0)})).encode()
    ctx.fx.write_files(files={ctx.project.card_dir(adapter) / render.CARD_JSON: text})
    ctx.fx.commit(branch=ctx.default_branch, files={f"cards/{adapter}/{render.CARD_JSON}": text},
                  message=f"{adapter} v{card.header.version} is published: record published_at in card.json")


def check_staged(ctx: Context, repo: str, tag: tags.Tag, card, entries: list[ledger.Entry], pr: int | None) -> None:
    """Refuse to publish weights other than those the card and the ledger's `released` entries of this version
    name: a removal is honoured by what is published, not by what was trained at some point."""
    from kiki_bot.shells.peft_export import PEFT_WEIGHTS
    from kiki_bot.shells.trainspec import ADAPTER_FILE

    named = [("card.json", card.run.adapter_sha256)] + [
        (f"{ctx.project.ledger_path.name} seq {e.seq} (released for {e.request.id})", e.adapter_sha256)
        for e in entries if e.event == "released" and (e.adapter, e.version) == (tag.adapter, tag.version)]
    expected = {h for _, h in named if h}
    if len(expected) > 1:
        raise CheckFailed(f"{tag}: the card and the ledger name different weights; nothing was published",
                          [f"{where}: adapter_sha256 {h or 'not recorded'}" for where, h in named])
    if pr is not None:
        revision = f"refs/pr/{pr}"
    else:  # a re-run after the merge: what is published already, or about to be tagged
        revision = f"v{tag.version}" if ctx.fx.hub_has_tag(repo, f"v{tag.version}") else "main"
    weights = card.run.mlx_dir + ADAPTER_FILE
    staged = ctx.fx.hub_file_sha256(repo, revision, weights)
    if staged is None and not expected:
        return  # no weights staged and none claimed: a card-only version
    want = next(iter(expected), None)
    if staged != want:
        raise CheckFailed(
            f"{tag}: the weights staged on the Hub are not the ones recorded; nothing was published",
            [f"{repo} at {revision}: {weights} sha256 {staged or 'missing'}",
             *(f"{where}: adapter_sha256 {h or 'not recorded'}" for where, h in named)])
    if card.run.peft_sha256 and (peft := ctx.fx.hub_file_sha256(repo, revision, PEFT_WEIGHTS)) != card.run.peft_sha256:
        raise CheckFailed(f"{tag}: the PEFT weights staged on the Hub are not the ones recorded; nothing was published",
                          [f"{repo} at {revision}: {PEFT_WEIGHTS} sha256 {peft or 'missing'}",
                           f"card.json: peft_sha256 {card.run.peft_sha256}"])


_DONE = {"flag": ("flagged in the changelog, and its Hub tag moved to a commit that adds a notice of the removal "
                  "atop its README (the weights unchanged), so a download of that revision says so; the original "
                  "commit stays reachable by its hash"),
         "gate": "the Hub repository is gated, so downloads need the provider's approval"}


_UNTAGGED = "flagged in the changelog; the Hub has no tag `v{}` whose README could say so"


def _earlier(ctx: Context, repo: str, card, rid: str, untagged: set[str]) -> str:
    """The published versions built before this request's records were removed, and what became of them: for
    `delete`, exactly what holds on the Hub (a pull request that staged the version still serves it); for
    `flag`, whether the Hub had its tag to mark (`untagged`: it had not)."""
    out = []
    for s in card.superseded:
        if rid not in s.requests:
            continue
        done = _UNTAGGED.format(s.version) if s.version in untagged else _DONE.get(s.action)
        if done is None:
            prs = ctx.fx.hub_staged_prs(repo, hub_title(tags.Tag(card.adapter, s.version)))
            staged = (f"the Hub pull request that staged it still serves its files at "
                      f"{', '.join(f'`refs/pr/{n}`' for n in prs)}" if prs else "no Hub pull request staged it")
            done = (f"its tag is deleted and the Hub's `main` history squashed, so `revision=\"v{s.version}\"` no "
                    f"longer resolves; {staged}, and the refs of pull requests opened before the squash may still "
                    "reach its commit, since the Hub's API cannot delete a pull request's ref")
        out.append(f" Version **{md(s.version)}** was built before the removal and may contain them: {done}.")
    return "".join(out)


def _supersede(ctx: Context, repo: str, card) -> set[str]:
    """The `superseded` policy on the Hub revisions of the versions this one supersedes (the card lists them):
    flag (the card and changelog say so, and so does the README of the revision their tag names), gate the
    repository, or delete their tags and squash the history. Returns the versions `flag` found no Hub tag of
    (under dry-run, where nothing is asked, none)."""
    if not card.superseded:
        return set()
    action = card.superseded[0].action
    if action == "gate":
        ctx.fx.hub_fallback(repo=repo, how="gate")
    elif action == "delete":
        ctx.fx.hub_delete_revisions(repo=repo, tags=[f"v{s.version}" for s in card.superseded])
    else:
        return {s.version for s in card.superseded
                if ctx.fx.hub_flag_revision(repo=repo, tag=f"v{s.version}",
                                            notice=superseded_notice(s, repo, card.header.version)) is False}
    return set()


def publish(ctx: Context, tag_text: str) -> dict[str, str]:
    tag = parse_tag(ctx, tag_text)
    adapter = ctx.project.adapter(tag.adapter)
    card = render.load_card(ctx.project.card_dir(adapter.name))
    if card is None or card.header.version != tag.version:
        have = card.header.version if card else "none"
        raise BadInput("tag", f"{tag} is not the card version on this branch (v{have}): merge its review PR first")
    entries = ledgerfile.read(ctx.project.ledger_path)
    pr = ctx.fx.hub_pr(adapter.hub_repo, hub_title(tag))
    if not ctx.dry_run:
        check_staged(ctx, adapter.hub_repo, tag, card, entries, pr)
    hub_url = ctx.fx.hub_publish(repo=adapter.hub_repo, pr=pr, tag=f"v{tag.version}")
    release_url = ctx.fx.release(tag=str(tag), name=f"{adapter.name} v{tag.version}", body=changelog_text(card))
    if card.published_at is None:
        _record_published(ctx, adapter.name, card)
    untagged = _supersede(ctx, adapter.hub_repo, card)
    from kiki_bot.removal import published

    done = published(ctx.project)  # and this version, now: other adapters' versions count once published too
    done[adapter.name] = [*done[adapter.name], tag.version]
    told = set()
    for rid, state in sorted(ledger.request_state(entries, done).items()):
        if state.issue is None or state.released.get(adapter.name, ("",))[0] != tag.version:
            continue
        told.add(state.issue)
        others = ", ".join(state.pending)
        body = (f"Version **{md(tag.version)}** of **{md(adapter.name)}** is published and no longer contains the "
                f"records removed for request {md(rid)}." + _earlier(ctx, adapter.hub_repo, card, rid, untagged) +
                (f" Still to be released without them: {md(others)}." if others else
                 " Every affected adapter is now released without them, so this request is complete."))
        ctx.fx.comment_once(number=state.issue, kind=f"released:{adapter.name}:{tag.version}", body=body)
        if not others:
            ctx.fx.close_issue(number=state.issue)
    from kiki_bot.hubsync import follow_issues

    follow_issues(ctx, told)  # requests that came from a Hub discussion are answered there too
    return {"version": tag.version, "hub-url": hub_url or "", "release-url": release_url or ""}
