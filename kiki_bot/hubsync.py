"""Removal requests that arrive outside the issue form: the scheduled run's sync (also `kiki-bot hub sync` and
`kiki-bot handle --hub-event FILE`).

* A Community discussion of an adapter's Hub repository that holds a removal request is mirrored to a GitHub
  removal issue naming the Hub author, triaged there like any other, and answered on the Hub at triage and at
  each later step (approved, purged, released, closed), each answer once.
* An upstream opt-out list (BigCode's format) or a newer revision of the Hub dataset a source was drawn from
  becomes a removal request the bot files itself (actor `upstream:<name>`), approved by policy
  (`policy.upstream_approval`: `auto`, or a maintainer's `/kiki approve` on its issue), with the same deadlines.

Every step is looked up before it is taken (the mirror by its marker in the bot's own issues, an answer by its
marker in the bot's own Hub comments, an upstream identifier by the bot's earlier issues for that list), so a
re-run, a redelivered webhook or two triggers for one discussion change nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from kiki_bot import removal
from kiki_bot.console import say
from kiki_bot.context import Context
from kiki_bot.core import hubrequests as hr
from kiki_bot.core import ledger, upstream
from kiki_bot.core.canonical import canonical_json, sha256_hex
from kiki_bot.core.escape import md
from kiki_bot.core.issueform import GITHUB_BODY_LIMIT, parse_removal_request
from kiki_bot.core.selectors import parse_selector
from kiki_bot.core.tags import REMOVAL_LABEL
from kiki_bot.repo import ledgerfile
from kiki_bot.repo.records import iter_source

_UPSTREAM = re.compile(r"<!-- kiki-bot:upstream:([a-z0-9._-]+):([a-z0-9._-]+) -->")
TDM_REASON = "Text and data mining opt-out (DSM Directive Art. 4(3))"


def sync(ctx: Context, only: tuple[str, str, int] | None = None) -> dict[str, str]:
    """One pass: the Hub discussions (or only the one a webhook named), then the upstream lists and revisions."""
    outputs = sync_discussions(ctx, only) if ctx.project.config.hub.sync_discussions else {}
    return outputs if only else outputs | check_upstream(ctx)


# ---------------------------------------------------------------- Hub discussions
@dataclass
class _Known:
    """What the sync reads lazily, once: the bot's mirror issues, the ledger entries and the published versions."""

    ctx: Context
    _mirrors: dict[tuple[str, str, int], tuple[int, str]] | None = None
    _entries: list[ledger.Entry] | None = None
    _published: dict[str, list[str]] | None = None

    @property
    def mirrors(self) -> dict[tuple[str, str, int], tuple[int, str]]:
        if self._mirrors is None:
            self._mirrors = {}
            for number, body in self.ctx.fx.bot_issues(REMOVAL_LABEL):
                if (key := hr.mirrored(body)) is not None:
                    self._mirrors.setdefault(key, (number, body))
        return self._mirrors

    @property
    def entries(self) -> list[ledger.Entry]:
        if self._entries is None:
            self._entries = removal.with_open_purges(self.ctx)
        return self._entries

    @property
    def published(self) -> dict[str, list[str]]:
        """Each adapter's published versions: a `released` entry counts only for one (the review PR's merge
        puts it on the default branch before `publish` runs)."""
        if self._published is None:
            self._published = removal.published(self.ctx.project)
        return self._published


def sync_discussions(ctx: Context, only: tuple[str, str, int] | None = None) -> dict[str, str]:
    repos = sorted({("model", a.hub_repo) for a in ctx.project.adapters.values()})
    if only is not None and only[:2] not in repos:
        return {"hub": f"{only[1]} is not the Hub repository of an adapter here"}
    keys = [only] if only else [(kind, repo, n) for kind, repo in repos for n in ctx.fx.hub_discussions(repo, kind)]
    if keys and ctx.repository is None:
        say("Hub discussions: skipped, the GitHub repository is not known (set GITHUB_REPOSITORY)")
        return {"hub": "skipped: no GitHub repository"}
    known, followed = _Known(ctx), []
    for key in keys:
        thread = ctx.fx.hub_thread(key[1], key[2], key[0])
        if thread is None:
            continue
        mirror = known.mirrors.get(key)
        if mirror is None:
            if not hr.is_request(thread) or thread.status != "open":
                continue
            body = hr.issue_body(thread)
            if _too_long(ctx, thread, body):
                continue
            number = ctx.fx.open_issue(title=hr.issue_title(thread), body=body, labels=[REMOVAL_LABEL])
            if number is None:  # a dry run: the issue, and so what follows, is only planned
                continue
            mirror = known.mirrors[key] = (number, body)
        _follow(ctx, known, thread, *mirror)
        followed.append(f"{key[1]}#{key[2]}:R-{mirror[0]}")
    return {"hub": ",".join(followed)}


def follow_issues(ctx: Context, numbers: set[int]) -> None:
    """Answer on the Hub right after a step taken elsewhere (a purge, a publish) for the issues that mirror a
    discussion; the scheduled sync would answer too, later."""
    if not numbers or ctx.repository is None or not ctx.project.config.hub.sync_discussions:
        return
    known = _Known(ctx)
    for (kind, repo, num), (number, body) in sorted(known.mirrors.items()):
        if number in numbers and (thread := ctx.fx.hub_thread(repo, num, kind)) is not None:
            _follow(ctx, known, thread, number, body)


def follow_up(ctx: Context, outputs: dict[str, str]) -> dict[str, str]:
    """The step after a removal request's decision (purged or declined, by `/kiki` or `kiki-bot removal purge`):
    the Hub discussion its issue mirrors hears it now. Removal knows nothing of the Hub; the route table and the
    command call this after it."""
    rid = outputs.get("request", "")
    if outputs.get("status") in ("purged", "rejected") and rid.startswith("R-"):  # R-<issue> (ledger.RequestRef)
        follow_issues(ctx, {int(rid.removeprefix("R-"))})
    return outputs


def _follow(ctx: Context, known: _Known, thread: hr.Thread, number: int, body: str) -> None:
    """Bring the Hub discussion up to date with its request: triage once (again while it is invalid and the
    author posts a corrected form), then one answer per step the ledger records."""
    done = hr.answered(thread, ctx.fx.hub_login())
    where = dict(repo=thread.repo_id, repo_type=thread.repo_type, num=thread.num)
    issue = f"{_issue_url(ctx, number)} (request R-{number})"
    if "triaged" not in done and f"R-{number}" in ledger.request_state(known.entries):
        ctx.fx.hub_comment(**where, body=hr.answer("triaged", f"kiki-bot filed this removal request as {issue}."))
    elif "triaged" not in done:
        fresh = hr.issue_body(thread)
        invalid_key = f"invalid:{sha256_hex(fresh.encode())[:12]}"
        if invalid_key in done or _too_long(ctx, thread, fresh):
            return  # this text was answered as invalid; nothing new from the author yet
        if fresh != body:
            ctx.fx.edit_issue(number=number, body=fresh)
        answer = removal.triage(ctx, number, fresh, thread.created_at, ctx.settings.bot_login)
        removal.post_triage(ctx, number, answer)
        if answer.triaged is None:
            ctx.fx.hub_comment(**where, body=hr.answer(invalid_key, (
                f"kiki-bot could not read this removal request, mirrored as {issue}; nothing is recorded yet. "
                "Please post the corrected form as a new comment here: kiki-bot reads it at its next run.\n\n"
                f"{_public(answer.body)}")))
            return
        ctx.fx.hub_comment(**where, body=hr.answer("triaged", (
            f"kiki-bot received this removal request and filed it as {issue}, where a maintainer decides on it. "
            f"kiki-bot answers here at each step.\n\n{_public(answer.body)}")))
    for step, text in _steps(known.entries, f"R-{number}", known.published):
        if step not in done:
            ctx.fx.hub_comment(**where, body=hr.answer(step, text))
            if step == "closed":
                ctx.fx.hub_close_discussion(**where)


def _too_long(ctx: Context, thread: hr.Thread, body: str) -> bool:
    """Whether the mirror would be longer than GitHub takes for an issue. Such a request is not filed (cut,
    it would be decided on part of it): the author is asked, once per text, for a shorter one; the sync goes on."""
    if len(body) <= GITHUB_BODY_LIMIT:
        return False
    key = f"too-long:{sha256_hex(body.encode())[:12]}"
    say(f"Hub discussion {thread.repo_id}#{thread.num}: the request is {len(body):,} characters as a GitHub "
        f"issue, more than the {GITHUB_BODY_LIMIT:,} GitHub takes: not filed, its author is asked for a shorter one")
    if key not in hr.answered(thread, ctx.fx.hub_login()):
        ctx.fx.hub_comment(repo=thread.repo_id, repo_type=thread.repo_type, num=thread.num, body=hr.answer(key, (
            f"kiki-bot could not file this removal request on GitHub: as an issue it is {len(body):,} characters "
            f"long, more than the {GITHUB_BODY_LIMIT:,} GitHub takes. Nothing is recorded yet. Please post the "
            "request form again as a new comment here, shorter (or split it into several requests): kiki-bot "
            "reads it at its next run.")))
    return True


def _public(comment: str) -> str:
    """The triage comment as the Hub shows it: without the stored request (a hidden marker for GitHub)."""
    return removal.STORED.sub("", comment).rstrip()


def _issue_url(ctx: Context, number: int) -> str:
    return f"https://github.com/{ctx.repository}/issues/{number}"


def _steps(entries: list[ledger.Entry], rid: str, published: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The answers a request's ledger entries call for, in order: each step, and the close once it is complete
    (released: only in versions `published`)."""
    state = ledger.request_state(entries, published).get(rid)
    if state is None:
        return []
    steps = []
    if state.status == "rejected":
        reason = next((e.reason for e in entries if e.request.id == rid and e.event == "rejected"), None)
        return [("closed", f"Request {rid} was declined by a maintainer on {state.decided_at:%Y-%m-%d %H:%M} UTC. "
                           f"Reason: {md(reason or 'no reason given')}. This discussion is closed.")]
    if state.decided_at is not None:
        steps.append(("approved", f"Request {rid} was approved on {state.decided_at:%Y-%m-%d %H:%M} UTC."))
    if state.purged_at is not None:
        purged = ledger.find(entries, "purged", rid)
        steps.append(("purged", f"The {len(purged.records or []):,} records it matched were removed from the "
                                f"training data on {state.purged_at:%Y-%m-%d %H:%M} UTC. Every affected adapter "
                                f"({md(', '.join(state.adapters) or 'none')}) is retrained without them and "
                                f"republished by {state.deadline:%Y-%m-%d %H:%M} UTC."))
    for adapter, (version, _) in sorted(state.released.items()):
        steps.append((f"released:{adapter}:{version}", f"Version {md(version)} of {md(adapter)} is published and "
                                                       "no longer contains these records."))
    if state.status == "released":
        steps.append(("closed", f"Every affected adapter is published without the records of {rid}: the request "
                                "is complete, and this discussion is closed."))
    return steps


# ---------------------------------------------------------------- upstream lists and revisions
@dataclass
class Check:
    """One upstream check, as its evidence line records it (compliance/upstream/<source>.jsonl)."""

    name: str
    kind: str  # optout-list | dataset-revision
    where: str
    status: str = "ok"  # ok | unavailable
    detail: str = ""
    scan: upstream.Scan = field(default_factory=upstream.Scan)
    revision: str | None = None
    newest: str | None = None
    filed: list[str] = field(default_factory=list)

    def line(self, at: dt.datetime) -> dict:
        doc = {"checked_at": at.replace(microsecond=0).isoformat().replace("+00:00", "Z"), "name": self.name, "kind": self.kind,
               "where": self.where, "status": self.status, "detail": self.detail, "lines": self.scan.lines,
               "sha256": self.scan.sha256 or None, "bad_lines": self.scan.bad_lines,
               "problems": self.scan.problems, "matched": len(self.scan.matched), "filed": self.filed}
        if self.kind == "dataset-revision":
            doc |= {"revision": self.revision, "newest": self.newest}
        return doc


def check_upstream(ctx: Context) -> dict[str, str]:
    """Check every source's upstream lists and revision; file requests for what is new; record the checks."""
    filed, evidence = [], {}
    for sid, source in sorted(ctx.project.sources.items()):
        if source.upstream is None:
            continue
        checks = [_optout_check(ctx, sid, lst) for lst in source.upstream.optout_lists]
        if source.upstream.dataset is not None:
            checks.append(_revision_check(ctx, sid, source.upstream.dataset))
        for check in checks:
            filed += check.filed
            if check.status != "ok":
                say(f"{sid}: upstream {check.name} unavailable: {check.detail}")
        evidence[sid] = checks
    _record(ctx, evidence)
    return {"upstream": ",".join(filed)} if evidence else {}


def _optout_check(ctx: Context, sid: str, lst) -> Check:
    from kiki_bot.shells import upstream as upstream_io

    where = str(lst.url) if lst.url else f"hf:datasets/{lst.hub_dataset}/{lst.file}@{lst.revision}"
    check = Check(lst.name, "optout-list", where)
    ids = upstream.identities(iter_source(ctx.project.data_dir, sid))
    try:
        lines = (upstream_io.url_lines(str(lst.url)) if lst.url else
                 ctx.fx.dataset_lines(lst.hub_dataset, lst.revision, lst.file))
        check.scan = upstream.scan_optouts(lines, ids)
    except upstream_io.UNAVAILABLE as exc:
        check.status, check.detail = "unavailable", upstream_io.why(exc)
        return check
    details = f"Listed on the upstream opt-out list `{lst.name}` ({where}) that source `{sid}` follows."
    check.filed = _file(ctx, sid, lst.name, check.scan.matched, TDM_REASON, details)
    return check


def _revision_check(ctx: Context, sid: str, ds) -> Check:
    """Rows of the pinned revision that the newest one lacks: the source's records of them are requested."""
    from kiki_bot.shells import upstream as upstream_io

    check = Check(ds.name, "dataset-revision", f"hf:datasets/{ds.repo}", revision=ds.revision)
    hashes, by_id = set(), {}  # a record that keeps its row's id is matched by it (`id_field`), others by hash
    for r in iter_source(ctx.project.data_dir, sid):
        if ds.id_field and (i := upstream.row_id(r.provenance.upstream_id)) is not None:
            by_id.setdefault(i, []).append(r.provenance.record_idx)
        elif r.provenance.sha256:
            hashes.add(r.provenance.sha256)
    wanted, wanted_ids = frozenset(hashes), frozenset(by_id)
    try:
        check.newest = ctx.fx.dataset_head(ds.repo)
        present, present_ids = set(), set()
        if check.newest != ds.revision:
            for name in ds.files:
                found = upstream.scan_rows(upstream_io.missing_is_empty(ctx.fx.dataset_lines, ds.repo, check.newest,
                                                                        name),
                                           wanted, ds.content_field, check.scan, wanted_ids, ds.id_field)
                present |= found[0]
                present_ids |= found[1]
    except upstream_io.UNAVAILABLE as exc:
        check.status, check.detail = "unavailable", upstream_io.why(exc)
        return check
    if check.newest != ds.revision:
        check.scan.matched = {f"sha256:{h}" for h in wanted - present} | {
            f"record:{sid}#{idx}" for i in wanted_ids - present_ids for idx in by_id[i]}
        details = (f"Rows removed upstream: the pinned revision {ds.revision[:12]} of `{ds.repo}` (source `{sid}`) "
                   f"has them, its newest revision {check.newest[:12]} does not.")
        check.filed = _file(ctx, sid, ds.name, check.scan.matched, "Other", details)
    return check


def _requested_before(ctx: Context, sid: str, name: str) -> set[str]:
    """The identifiers (normalised) the bot already requested for this upstream: its issues, or its private
    requests in the ledger when no repository is known."""
    bodies = ([body for _, body in ctx.fx.bot_issues(REMOVAL_LABEL)
               if (m := _UPSTREAM.search(body)) and m.groups() == (sid, name)] if ctx.repository else [])
    seen = {s for e in ledgerfile.read(ctx.project.ledger_path) if e.event == "requested" and e.actor == f"upstream:{name}"
            for s in e.selectors or []}
    for body in bodies:
        if not isinstance(parsed := parse_removal_request(body), list):
            seen.update(str(s.selector) for s in parsed.selectors)
    return seen


def _file(ctx: Context, sid: str, name: str, identifiers: set[str], reason: str, details: str) -> list[str]:
    """File what is new as the bot's own requests (issues when the repository is known, else private), triage
    them at once (no workflow runs for an issue the bot opens), and approve them when the policy says `auto`."""
    before = _requested_before(ctx, sid, name)
    new = {i for i in identifiers if str(parse_selector(i)) not in before}
    actor, auto = f"upstream:{name}", ctx.project.config.policy.upstream_approval == "auto"
    filed = []
    for form in upstream.form_bodies(new, reason, details):
        body = f"<!-- kiki-bot:upstream:{sid}:{name} -->\n{form}"
        if ctx.repository is None:
            doc = removal.file_private(ctx, body, actor)
            if auto and not ctx.dry_run:
                ctx.fx.ledger_append(path=ctx.project.ledger_path, event="approved",
                                     request={"id": doc["request"], "issue": None}, actor=actor, at=ctx.now, fields={})
                removal.purge_request(ctx, doc["request"], actor, ctx.now)
            filed.append(doc["request"])
            continue
        number = ctx.fx.open_issue(title=f"Removal request from upstream {name} (source {sid})", body=body,
                                   labels=[REMOVAL_LABEL])
        if number is None:
            continue
        answer = removal.triage(ctx, number, body, ctx.now, ctx.settings.bot_login)
        removal.post_triage(ctx, number, answer)
        if auto and answer.triaged is not None:
            removal.approve(ctx, answer.triaged, actor, ctx.now)
        filed.append(f"R-{number}")
    return filed


def _record(ctx: Context, evidence: dict[str, list[Check]]) -> None:
    """Append each check to its source's evidence, unless the last line for that upstream says the same on the
    same day (the scheduled run checks every 6 hours; the card states the day); commit it to the default branch."""
    files = {}
    for sid, checks in evidence.items():
        path = ctx.project.upstream_evidence(sid)
        old = path.read_bytes() if path.is_file() else b""
        last = {}
        for raw in old.splitlines():
            doc = json.loads(raw)
            last[doc["name"]] = doc
        lines = [check.line(ctx.now) for check in checks]
        fresh = [doc for doc in lines if not _same(last.get(doc["name"]), doc)]
        if fresh:
            files[path] = old + b"".join(canonical_json(doc) + b"\n" for doc in fresh)
    if not files:
        return
    ctx.fx.write_files(files=files)
    if ctx.repository:
        ctx.fx.commit(branch=ctx.default_branch, message="Record the upstream opt-out and revision checks",
                      files={str(p.relative_to(ctx.project.root)): data for p, data in files.items()})


def _same(before: dict | None, now: dict) -> bool:
    """Nothing new to record: the same day, the same outcome, and nothing filed now."""
    if before is None or before["checked_at"][:10] != now["checked_at"][:10] or now["filed"]:
        return False
    return ({k: v for k, v in before.items() if k not in ("checked_at", "filed")} ==
            {k: v for k, v in now.items() if k not in ("checked_at", "filed")})
