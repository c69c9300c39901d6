"""Moment 2: a removal request. Triage answers at once; an authorised approval purges the records,
opens a purge PR and hands the retrain to the deadline scheduler.

Issue text is attacker text: it is parsed, never evaluated, and everything echoed is escaped. Triage
runs with a read-only token, so what it validated is kept in its own comment; the privileged step acts
on that stored request (never on the issue as edited later) and writes the ledger.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiki_bot import render
from kiki_bot.context import Context
from kiki_bot.core import ledger
from kiki_bot.core.errors import BadInput, CheckFailed
from kiki_bot.core.escape import Markup, cell, code, md
from kiki_bot.core.issueform import (
    CONTENT, GITHUB_BODY_LIMIT, FieldError, RemovalRequest, parse_removal_request,
)
from kiki_bot.core.matching import MatchResult, match_records
from kiki_bot.core.schedule import deadline_for
from kiki_bot.core.selectors import Selector, parse_selector
from kiki_bot.repo import ledgerfile
from kiki_bot.repo.project import HubData, Project
from kiki_bot.repo.records import iter_source
from kiki_bot.shells.github import PERMISSION_ORDER

KIND = "removal"
BRANCH_PREFIX = "kiki/removal/"
_VERDICT = {"approved": "approved", "rejected": "declined"}
_FINAL = ("purged", "rejected")  # the step a request's PR records last: on the default branch, the PR merged
STORED = re.compile(r"<!-- kiki-bot:request:([A-Za-z0-9+/=]+) -->")
_COMMAND = re.compile(r"^/kiki\s+(approve|reject)\b[ \t]*(.*)$", re.IGNORECASE)
UNCOVERED = {"github_identity": "carry no GitHub repository or path", "path": "carry a repository but no path",
             "origin": "carry no origin URL"}


@dataclass
class Triaged:
    """What triage validated and stored: the request acts on this, whatever the issue says later."""

    id: str
    issue: int | None
    selectors: list[str]
    body_sha256: str
    opened_at: dt.datetime
    deadline: dt.datetime
    adapters: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def encode(self) -> str:
        doc = {"id": self.id, "issue": self.issue, "selectors": self.selectors, "body_sha256": self.body_sha256,
               "opened_at": self.opened_at.isoformat(), "deadline": self.deadline.isoformat(),
               "adapters": self.adapters, "counts": self.counts}
        return base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()

    @classmethod
    def decode(cls, blob: str) -> Triaged:
        doc = json.loads(base64.b64decode(blob))
        return cls(doc["id"], doc["issue"], doc["selectors"], doc["body_sha256"],
                   dt.datetime.fromisoformat(doc["opened_at"]), dt.datetime.fromisoformat(doc["deadline"]),
                   doc["adapters"], doc["counts"])

    def parsed(self) -> list[Selector]:
        return [parse_selector(s) for s in self.selectors]


@dataclass
class Matched:
    result: MatchResult
    per_adapter: dict[str, int]


# ---------------------------------------------------------------- the pure part
def match(project: Project, selectors: list[Selector]) -> Matched:
    """Match every source's records against the selectors: through the provenance index (refreshed and
    verified first; files it cannot vouch for are streamed), or by streaming every record when the index
    cannot be used here. Both give the same result."""
    from kiki_bot.index import store
    from kiki_bot.index.match import match as match_indexed

    sources = sorted(project.sources)
    urls = {sid: str(s.url) if s.url else None for sid, s in project.sources.items()}
    with store.opened(project, sources) as ix:
        if ix is not None:
            result = match_indexed(ix, sources, selectors, urls)
        else:
            records = (rec for sid in sources for rec in iter_source(project.data_dir, sid))
            result = match_records(selectors, records, urls)
    per_adapter = {name: n for name, a in sorted(project.adapters.items())
                   if (n := sum(result.counts[s] for s in a.sources))}
    return Matched(result, per_adapter)


def published(project: Project, adapters: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Every published version (publish ran) of each adapter, as its card.json records them: what a `released`
    ledger entry's version must be before the removal counts as honoured there (ledger.request_state)."""
    from kiki_bot.core.cardmodel import published_versions

    return {name: published_versions(render.load_card(project.card_dir(name)))
            for name in (project.adapters if adapters is None else adapters)}


def published_versions(project: Project, adapters: dict[str, int]) -> dict[str, list[str]]:
    """Every published version of each adapter (publish ran): all were trained on data still holding the records."""
    return {name: [f"v{v}" for v in versions] for name, versions in published(project, adapters).items()}


def match_document(project: Project, body: str) -> dict:
    """The `removal match --json` document: selectors, matches, adapters, errors."""
    parsed = parse_removal_request(body)
    if isinstance(parsed, list):
        return {"selectors": [], "matches": [], "adapters": {}, "errors": [e.model_dump() for e in parsed]}
    matched = match(project, [s.selector for s in parsed.selectors])
    return {"selectors": [str(s.selector) for s in parsed.selectors],
            "matches": [{"source": s, "record_idx": i, "selector": k} for s, i, k in matched.result.matches],
            "adapters": matched.per_adapter, "errors": [],
            "uncovered": {s: dict(c) for s, c in matched.result.uncovered.items()}}


def uncovered_notes(result: MatchResult) -> list[str]:
    return [f"{n:,} records of source {sid} {UNCOVERED[why]}: only a whole-source removal, `record:` or "
            f"`sha256:` identifiers cover them." for sid, c in sorted(result.uncovered.items())
            for why, n in sorted(c.items())]


def allowed_to_decide(role: str, needed: str) -> bool:
    return PERMISSION_ORDER.index(role if role in PERMISSION_ORDER else "none") >= PERMISSION_ORDER.index(needed)


def owns_all(login: str, selectors: list[Selector]) -> list[str]:
    """The selectors a requester does NOT own (empty = they may self-approve all of them)."""
    return [str(s) for s in selectors if (s.owner_login or "").lower() != login.lower()]


# ---------------------------------------------------------------- comment text
def _comment(**values) -> str:
    return render.environment().get_template("removal_comment.md.j2").render(**values)


def _request_comment(ctx: Context, triaged: Triaged, req: RemovalRequest | None, per_source: dict[str, int],
                     notes: list[str], status_line: str, next_step: str) -> str:
    lines = req.selectors if req else []
    rows = [{"line": lines[i].line if lines else i + 1, "raw": lines[i].raw if lines else s, "normalised": s,
             "count": triaged.counts[i] if i < len(triaged.counts) else 0} for i, s in enumerate(triaged.selectors)]
    per_adapter = {name: n for name, a in sorted(ctx.project.adapters.items())
                   if (n := sum(per_source.get(s, 0) for s in a.sources))}
    text = _comment(state="request", request_id=triaged.id, status_line=status_line, body_sha256=triaged.body_sha256,
                    selectors=rows, relationship=req.relationship if req else "as triaged",
                    reason=req.reason if req else "as triaged", per_source=dict(sorted(per_source.items())),
                    per_adapter=per_adapter, versions=published_versions(ctx.project, per_adapter), uncovered=notes,
                    deadline=triaged.deadline.strftime("%Y-%m-%d %H:%M"),
                    window=ctx.project.config.policy.removal_window_days, next_step=next_step)
    return f"{text}\n<!-- kiki-bot:request:{triaged.encode()} -->"


def _per_selector(result: MatchResult, n: int) -> list[int]:
    counts = [0] * n
    for _, _, k in result.matches:
        counts[k] += 1
    return counts


def _stored(ctx: Context, number: int) -> Triaged | None:
    """The request as triage stored it, read only from the bot's own comment."""
    for body in ctx.fx.bot_comments(number):
        if m := STORED.search(body):
            return Triaged.decode(m.group(1))
    return None


# ---------------------------------------------------------------- moment: the issue is opened or labelled
@dataclass
class Triage:
    """Triage's answer to one issue: the sticky comment, the labels, and the request when it is valid."""

    status: str
    body: str
    add: list[str]
    remove: list[str]
    triaged: Triaged | None = None


def triage(ctx: Context, number: int, body: str | None, opened: dt.datetime, login: str) -> Triage:
    """Parse, validate and match a request; `opened` starts its deadline, `login` may self-approve."""
    parsed = parse_removal_request(body)
    if isinstance(parsed, list):
        return Triage("invalid", _comment(state="invalid", errors=parsed), ["invalid"], ["awaiting-approval"])
    selectors = [s.selector for s in parsed.selectors]
    matched = match(ctx.project, selectors)
    triaged = Triaged(f"R-{number}", number, [str(s) for s in selectors], parsed.body_sha256, opened,
                      deadline_for(opened, ctx.project.config.policy.removal_window_days), list(matched.per_adapter),
                      _per_selector(matched.result, len(selectors)))
    need = ctx.project.config.policy.approve_permission
    self_ok = ctx.project.config.policy.auto_approve_owner and not owns_all(login, selectors)
    approve = code("/kiki approve")  # the bot's own Markdown: code spans, so the commands copy as typed
    next_step = Markup(f"a maintainer (permission {code(need)} or higher) approves with a comment {approve}, or "
                       f"declines with {code('/kiki reject <reason>')}." +
                       (f" As every identifier is under your own GitHub login, you may approve it yourself with "
                        f"{approve}." if self_ok else "") +
                       " Approved records are removed from the data at once and every affected adapter is "
                       "retrained and republished before the deadline.")
    text = _request_comment(ctx, triaged, parsed, dict(matched.result.counts), uncovered_notes(matched.result),
                            "received, awaiting approval.", next_step)
    if len(text) > GITHUB_BODY_LIMIT:  # GitHub would refuse the answer, and so the request's one record
        error = FieldError(field=CONTENT, line=None, message=(
            f"kiki-bot's answer, which lists and stores each identifier, would be {len(text):,} characters, more "
            f"than the {GITHUB_BODY_LIMIT:,} GitHub takes in a comment: split it into several requests"))
        return Triage("invalid", _comment(state="invalid", errors=[error]), ["invalid"], ["awaiting-approval"])
    return Triage("awaiting-approval", text, ["awaiting-approval"], ["invalid"], triaged)


def post_triage(ctx: Context, number: int, answer: Triage) -> dict[str, str]:
    ctx.fx.sticky_comment(number=number, kind=KIND, body=answer.body)
    ctx.fx.label(number=number, add=answer.add, remove=answer.remove)
    return {"request": f"R-{number}", "status": answer.status}


def on_issue(ctx: Context, payload: dict) -> dict[str, str]:
    """Triage: parse, validate, match, answer in one sticky comment; labels say where it stands."""
    issue = payload["issue"]
    number = int(issue["number"])
    answer = triage(ctx, number, issue.get("body"), dt.datetime.fromisoformat(issue["created_at"]),
                    issue["user"]["login"])
    return post_triage(ctx, number, answer)


# ---------------------------------------------------------------- moment: someone comments /kiki …
def on_comment(ctx: Context, payload: dict) -> dict[str, str]:
    """A maintainer's decision; anyone else gets a polite refusal and nothing changes."""
    issue, comment = payload["issue"], payload["comment"]
    number, login = int(issue["number"]), comment["user"]["login"]
    m = _COMMAND.match((comment.get("body") or "").strip().splitlines()[0] if comment.get("body") else "")
    if m is None:
        return {}
    verb, reason = m.group(1).lower(), m.group(2).strip()[:500]
    triaged = _stored(ctx, number)
    if triaged is None:
        ctx.fx.comment_once(number=number, kind=f"refusal:{comment['id']}",
                      body="There is no valid triaged request on this issue yet, so there is nothing to decide.")
        return {}
    policy = ctx.project.config.policy
    role = ctx.fx.permission(login)
    allowed = allowed_to_decide(role, policy.approve_permission)
    if not allowed and verb == "approve" and policy.auto_approve_owner and login == issue["user"]["login"]:
        allowed = not owns_all(login, triaged.parsed())
    if not allowed:
        foreign = owns_all(login, triaged.parsed()) if policy.auto_approve_owner else []
        why = (f" Identifiers outside your own login need a maintainer: {', '.join(code(s) for s in foreign)}."
               if foreign and login == issue["user"]["login"] else "")
        ctx.fx.comment_once(number=number, kind=f"refusal:{comment['id']}",
                      body=f"Thank you. Only people with `{policy.approve_permission}` permission or higher can "
                           f"decide on removal requests, so this comment changes nothing.{why}")
        return {"request": triaged.id, "status": "unchanged"}
    at = dt.datetime.fromisoformat(comment["created_at"])
    event = "approved" if verb == "approve" else "rejected"
    if (standing := decision_of(ctx, triaged.id)) is not None:
        first = standing.decision
        if (first.event, first.actor, first.at) != (event, login, at):  # another decision: one per request
            ctx.fx.comment_once(number=number, kind=f"decided:{comment['id']}",
                          body=f"Thank you. This request was already {_VERDICT[first.event]} on "
                               f"{first.at:%Y-%m-%d %H:%M} UTC, and a request is decided once, so this comment "
                               "changes nothing.")
            return {"request": triaged.id, "status": "unchanged"}
        return resume(ctx, standing, triaged)  # redelivered: finishes what a failed run left undone
    if verb == "reject":
        _record_request(ctx, triaged, login)
        return _reject(ctx, triaged.id, triaged.issue, login, reason or "no reason given", at)
    return approve(ctx, triaged, login, at)


def approve(ctx: Context, triaged: Triaged, actor: str, at: dt.datetime) -> dict[str, str]:
    """Record the request and its approval by `actor`, then purge exactly what it matches now."""
    _record_request(ctx, triaged, actor)
    _ledger(ctx, "approved", triaged, actor, at)
    return purge_request(ctx, triaged.id, actor, at, triaged)


@dataclass
class Standing:
    """A request's decision with the entries recorded for the request, where it stands: merged on the
    default branch (this checkout) or in the request's open bot PR (read from the PR head)."""

    entries: list[ledger.Entry]
    merged: bool

    @property
    def decision(self) -> ledger.Entry:
        return next(e for e in self.entries if e.event in _VERDICT)


def branch_of(request_id: str) -> str:
    return f"{BRANCH_PREFIX}{request_id}"


def decision_of(ctx: Context, request_id: str) -> Standing | None:
    """Where the request's decision stands, or None while it is undecided."""
    local = [e for e in ledgerfile.read(ctx.project.ledger_path) if e.request.id == request_id]
    if any(e.event in _VERDICT for e in local):
        return Standing(local, merged=True)
    if ctx.repository and (pr := ctx.fx.open_pull(branch_of(request_id), ctx.default_branch)) is not None:
        head = [e for e in ledger_at(ctx, pr.head.sha, pr.head.ref) if e.request.id == request_id]
        if any(e.event in _VERDICT for e in head):
            return Standing(head, merged=False)
    return None


def ledger_at(ctx: Context, ref: str, name: str) -> list[ledger.Entry]:
    """The ledger as `ref` of the repository holds it, read through the API (`name` says where, for errors)."""
    return ledger.parse(ctx.fx.file_at(ledger_file(ctx), ref) or b"", f"{name}:{ledger_file(ctx)}")


def ledger_file(ctx: Context) -> str:
    return ctx.project.ledger_path.relative_to(ctx.project.root).as_posix()


def with_open_purges(ctx: Context) -> list[ledger.Entry]:
    """The default branch's ledger, plus the entries of each request whose purge so far is recorded only in
    its open purge PR (read from the PR head): its deadline runs whether the PR has merged or not."""
    found = ledgerfile.read(ctx.project.ledger_path)
    if ctx.repository is None:
        return found
    purged = {e.request.id for e in found if e.event == "purged"}
    for pr in ctx.fx.open_pulls(BRANCH_PREFIX, ctx.default_branch):
        rid = pr.head.ref.removeprefix(BRANCH_PREFIX)
        head = ledger_at(ctx, pr.head.sha, pr.head.ref)
        if rid not in purged and ledger.find(head, "purged", rid) is not None:
            found += [e for e in head if e.request.id == rid]
    return found


def resume(ctx: Context, standing: Standing, triaged: Triaged | None = None,
           branch_only: bool = False) -> dict[str, str]:
    """Carry a decided request's step out on this checkout of the default branch: what its PR head records
    is appended again (same steps, seq continuing from the default branch as it is now), the purge removes
    the records its entry names, the PR branch is rebuilt on the current default branch (none once the PR
    merged), and the Hub dataset and the issue are brought to where the step leaves them. Each part is a
    no-op where it is done, so a redelivery changes nothing while the default branch stands still, and
    finishes what a failed run left undone (a Hub write that failed after the PR merged).
    `branch_only`: rebuild the PR branch alone; the run that decided has told the issue and purged the Hub."""
    purged = None
    for e in standing.entries:
        if e.event == "purged":
            purged = e
        elif not standing.merged:
            ctx.fx.ledger_append(path=ctx.project.ledger_path, event=e.event, request=e.request.model_dump(),
                                 actor=e.actor, at=e.at, fields=e.event_fields())
    first = standing.decision
    if first.event == "rejected":
        return _reject(ctx, first.request.id, first.request.issue, first.actor,
                       first.reason or "no reason given", first.at, branch_only)
    return purge_request(ctx, first.request.id, first.actor, first.at, triaged, recorded=purged,
                         branch_only=branch_only)


def refresh(ctx: Context) -> dict[str, str]:
    """The default branch moved: rebuild on it every open removal PR it has left behind, so each can merge
    and the ledger's seq continues across them. Only branches change: the job holds no issue or Hub access."""
    rebuilt, refused = [], []
    for pr in ctx.fx.open_pulls(BRANCH_PREFIX, ctx.default_branch):
        rid = pr.head.ref.removeprefix(BRANCH_PREFIX)
        if ctx.fx.built_on(ctx.default_branch, pr.head.ref):
            continue
        if (standing := decision_of(ctx, rid)) is not None:
            try:
                resume(ctx, standing, branch_only=True)
            except CheckFailed as exc:  # this branch cannot be rebuilt (a maintainer's commit): the others can
                refused.append(str(exc))
                continue
            rebuilt.append(rid)
    if refused:
        raise CheckFailed(f"{len(refused)} removal branch(es) not rebuilt on {ctx.default_branch}"
                          f"{' (rebuilt: ' + ', '.join(rebuilt) + ')' if rebuilt else ''}", refused)
    return {"rebuilt": ",".join(rebuilt)}


def _record_request(ctx: Context, triaged: Triaged, actor: str) -> None:
    _ledger(ctx, "requested", triaged, actor, triaged.opened_at, selectors=triaged.selectors,
            body_sha256=triaged.body_sha256, deadline=triaged.deadline, adapters=triaged.adapters)


def _ledger(ctx: Context, event: str, triaged: Triaged, actor: str, at: dt.datetime, **fields) -> None:
    """Append once: a redelivered (or concurrent) event finds its entry and adds nothing."""
    ctx.fx.ledger_append(path=ctx.project.ledger_path, event=event,
                         request={"id": triaged.id, "issue": triaged.issue}, actor=actor, at=at, fields=fields)


def _reject(ctx: Context, request_id: str, issue: int, login: str, reason: str, at: dt.datetime,
            branch_only: bool = False) -> dict[str, str]:
    ctx.fx.ledger_append(path=ctx.project.ledger_path, event="rejected", request={"id": request_id, "issue": issue},
                         actor=login, at=at, fields={"reason": reason})
    _propose(ctx, request_id, f"Record the decision on removal request {request_id}",
             f"The removal request {request_id} was declined by a maintainer. This PR records the decision in the "
             "hash-chained ledger; no data changes.",
             {ledger_file(ctx): ledgerfile.data(ctx.project.ledger_path)})
    if branch_only:
        return {"request": request_id, "status": "rejected"}
    ctx.fx.comment_once(number=issue, kind="rejected", body=f"This request was declined by a maintainer. Reason: {md(reason)}")
    ctx.fx.label(number=issue, add=[], remove=["awaiting-approval"])
    ctx.fx.close_issue(number=issue)
    return {"request": request_id, "status": "rejected"}


def _propose(ctx: Context, request_id: str, title: str, body: str, files: dict[str, bytes]) -> str | None:
    """Open or update the request's PR, built on the default branch. Its ledger must extend the default
    branch's (else this checkout is behind it) and keep every step the branch records, so a branch that
    holds a purge is never handed a ledger without it. Nothing is pushed when either fails."""
    if not ctx.repository:
        return None
    name, new = ledger_file(ctx), files[ledger_file(ctx)]
    on_default = ctx.fx.file_at(name, ctx.default_branch) or b""
    if not new.startswith(on_default):
        raise CheckFailed(f"{name} on {ctx.default_branch} has entries this checkout lacks: run again on the "
                          f"current {ctx.default_branch}")
    branch = branch_of(request_id)
    if any(e.request.id == request_id and e.event in _FINAL for e in ledger.parse(on_default, name)):
        return ctx.fx.merged_pull(branch, ctx.default_branch)  # its PR merged: nothing left to propose
    kept = {_step(e) for e in ledger.parse(new, name)}
    if lost := [e for e in ledger_at(ctx, branch, branch) if _step(e) not in kept]:
        raise CheckFailed(f"{branch} records steps this run would drop from {name}",
                          [f"seq {e.seq}: {e.event} of {e.request.id} by {e.actor}" for e in lost])
    return ctx.fx.pull_request(branch=branch, base=ctx.default_branch, title=title, body=body, files=files)


def _step(e: ledger.Entry) -> tuple:
    """What makes a ledger entry the same step wherever its seq puts it."""
    return e.event, e.request.id, e.actor, e.at, json.dumps(e.event_fields(), sort_keys=True)


# ---------------------------------------------------------------- the purge (gated job or CLI)
def purge_command(ctx: Context, request_id: str, actor: str) -> dict[str, str]:
    """`kiki-bot removal purge` (the gated job): a private request is approved by the one who runs it, but only
    a request the ledger knows; an unknown id fails in purge_request with nothing written."""
    entries = ledgerfile.read(ctx.project.ledger_path)
    known = ledger.find(entries, "requested", request_id) is not None
    if known and request_id.startswith("P-") and ledger.find(entries, "approved", request_id) is None:
        ctx.fx.ledger_append(path=ctx.project.ledger_path, event="approved", request={"id": request_id, "issue": None},
                             actor=actor, at=ctx.now, fields={})
    return purge_request(ctx, request_id, actor, ctx.now)


def purge_request(ctx: Context, request_id: str, actor: str, at: dt.datetime, triaged: Triaged | None = None,
                  recorded: ledger.Entry | None = None, branch_only: bool = False) -> dict[str, str]:
    """Remove an approved request's records, open the purge PR, and say so on the issue. `recorded` is the
    request's `purged` entry on its PR head when this checkout lacks it: the purge removes what it names."""
    entries = ledgerfile.read(ctx.project.ledger_path)
    requested = ledger.find(entries, "requested", request_id)
    if requested is None:
        raise BadInput("request", f"{request_id} is not a request recorded in {ctx.project.ledger_path}")
    if ledger.find(entries, "approved", request_id) is None and not ctx.dry_run:
        raise BadInput("request", f"{request_id} is not an approved request in {ctx.project.ledger_path}")
    done = ledger.find(entries, "purged", request_id) or recorded
    if done is not None:  # a re-run (or a run after a crash) finishes the purge the ledger already records
        approved = [tuple(t) for t in done.records or []]
        adapters = list(done.adapters or [])
    else:  # exactly the (key, content hash) pairs the selectors match now, at approval
        matched = match(ctx.project, [parse_selector(s) for s in requested.selectors or []])
        approved = sorted({(s, i, h) for (s, i, _), h in zip(matched.result.matches, matched.result.hashes,
                                                              strict=True)})
        adapters = sorted({name for name, a in ctx.project.adapters.items()
                           if any(s in a.sources for s, _, _ in approved)})
    keys = {(s, i) for s, i, _ in approved}
    # Checked before anything is written; a rebuild (branch_only) leaves the Hub alone: the decision purged it.
    datasets = [] if branch_only else _hub_datasets(ctx, {s for s, _ in keys})
    ctx.fx.purge(root=ctx.project.root, request=request_id, issue=requested.request.issue, keys=sorted(keys),
                 adapters=adapters, actor=actor, at=at, approved=approved)
    files = _purged_files(ctx.project, {s for s, _ in keys})
    url = _propose(ctx, request_id, f"Purge removal request {request_id}",
                   _purge_pr_body(request_id, keys, adapters, [h for sid in sorted({s for s, _ in keys})
                                                               if (h := ctx.project.sources[sid].hub_data)]), files)
    # The Hub's copy after GitHub's: a squash cannot be undone, and a purge GitHub refuses (a file over its limit,
    # a moved ledger) must change nothing there; once the PR holds the entry, a redelivery finishes this part.
    for hub_data, names in datasets:
        ctx.fx.hub_dataset_update(repo=hub_data.repo,
                                  files={name: ctx.project.data_dir / sid / name for sid, name in names},
                                  message=f"Remove records of {request_id}", squash=hub_data.squash_history)
    issue = requested.request.issue
    if issue is not None and not branch_only:
        triaged = triaged or _stored(ctx, issue)
        per_source = Counter(s for s, _ in keys)
        body = _request_comment(ctx, triaged, None, per_source, [], f"approved and purged: {len(keys):,} records removed.",
                                f"The purge PR ({url or 'see the pull requests'}) records the removal. Every affected "
                                f"adapter ({', '.join(adapters) or 'none'}) is retrained without these records and "
                                f"republished before the deadline; this issue is closed when that release is out.")
        ctx.fx.sticky_comment(number=issue, kind=KIND, body=body)
        ctx.fx.label(number=issue, add=["purged", "retrain-scheduled"], remove=["awaiting-approval"])
    return {"request": request_id, "status": "purged", "pr-url": url or ""}


def _hub_datasets(ctx: Context, sources: set[str]) -> list[tuple[HubData, list[tuple[str, str]]]]:
    """Each purged source's Hub dataset and the (source, file name) pairs it gets, or bad input before anything
    is written: the purge rewrites a dataset's files by name, so a data file it holds under any other name (a
    copy, the viewer's data/train-*.jsonl) would keep serving the removed records after the purge."""
    plans, problems = [], []
    for sid in sorted(sources):
        if (hub_data := ctx.project.sources[sid].hub_data) is None:
            continue
        names = [p.name for p in _source_files(ctx.project, sid)]
        if strays := [f for f in ctx.fx.hub_dataset_files(hub_data.repo)
                      if f not in names and not _dataset_extra(f)]:
            problems.append((f"sources/{sid}.toml: key `hub_data.repo`",
                             f"{hub_data.repo} holds {', '.join(strays)}, which the purge cannot rewrite: it replaces "
                             f"the dataset's files by name with data/{sid}/'s ({', '.join(names)}), so the removed "
                             "records would stay there. Keep exactly those files at the dataset's root; nothing was "
                             "written"))
        plans.append((hub_data, [(sid, name) for name in names]))
    if problems:
        raise BadInput.of(problems)
    return plans


def _dataset_extra(path: str) -> bool:
    """A file of a Hub dataset that holds no records: its card, licence and git attributes."""
    return "/" not in path and (path == ".gitattributes" or path.endswith(".md")
                                or path.upper().startswith(("LICENSE", "LICENCE")))


def _source_files(project: Project, sid: str) -> list[Path]:
    return sorted((project.data_dir / sid).glob("*.jsonl"))


def _purged_files(project: Project, sources: set[str]) -> dict[str, bytes]:
    files = {"compliance/removals.jsonl": ledgerfile.data(project.ledger_path)}
    for sid in sorted(sources):
        for path in [*_source_files(project, sid), project.data_dir / sid / "MANIFEST.json"]:
            if path.is_file():
                files[str(path.relative_to(project.root))] = path.read_bytes()
    return files


def _purge_pr_body(request_id: str, keys: set, adapters: list[str], hub: Iterable[HubData] = ()) -> str:
    """What merging does and does not remove: the current data (and the Hub copies `hub`), never git history."""
    per_source = Counter(s for s, _ in keys)
    rows = "\n".join(f"| {cell(s)} | {n:,} |" for s, n in sorted(per_source.items())) or "| none | 0 |"
    copies = "".join(
        f" The Hub dataset {code(h.repo)} is rewritten too and the history of its `main` squashed: earlier "
        "revisions of `main` no longer serve the records (a tag or another branch of the dataset still would)."
        if h.squash_history else
        f" The Hub dataset {code(h.repo)} is rewritten too, but its earlier revisions still serve the records "
        "(`hub_data.squash_history` squashes the history of its `main`)." for h in hub)
    return (f"Removes the records of removal request {md(request_id)} and records the purge in the hash-chained "
            f"ledger (content hashes only, never content).\n\n| Source | Records removed |\n|---|---|\n{rows}\n\n"
            f"Adapters to retrain: {md(', '.join(adapters) or 'none')}. The deadline scheduler starts the retrain.\n\n"
            "**Git history still holds the removed content.** Merging this PR removes it from the current data "
            "only; earlier commits keep it. To remove it from history too, rewrite it (for example "
            "`git filter-repo --replace-text` or `--path` on the affected files), then force-push and ask forks "
            f"and clones to re-clone.{copies}")


# ---------------------------------------------------------------- a request received privately
def file_private(ctx: Context, body: str, actor: str = "private") -> dict:
    """Record a request received outside GitHub: same checks, nothing about the requester made public."""
    parsed = parse_removal_request(body)
    if isinstance(parsed, list):
        raise BadInput("--body", "; ".join(str(e) for e in parsed))
    selectors = [s.selector for s in parsed.selectors]
    matched = match(ctx.project, selectors)
    triaged = Triaged(f"P-{parsed.body_sha256[:12]}", None, [str(s) for s in selectors], parsed.body_sha256, ctx.now,
                      deadline_for(ctx.now, ctx.project.config.policy.removal_window_days), list(matched.per_adapter))
    _record_request(ctx, triaged, actor)
    return {"request": triaged.id, "selectors": triaged.selectors, "adapters": matched.per_adapter,
            "records": len(matched.result.matches), "deadline": triaged.deadline.isoformat()}
