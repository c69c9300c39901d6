"""Moment 3: a pull request touches data, sources, adapters, cards or compliance files.

Re-render every affected adapter's card from the PR head, check it (drift, template, Hub metadata,
licences, manifests, ledger, removed content coming back), and post one sticky comment with what the
summary now says differently from the base branch. The base side comes from git in the checkout
(fetch-depth 0), not the API. Everything from the PR is attacker text: it is escaped when rendered and
never reaches git as an option. A fork's token cannot comment, so its result goes to the job summary only.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup
from pydantic import ValidationError

from kiki_bot import render
from kiki_bot.context import Context
from kiki_bot.core.carddiff import Change, summarise
from kiki_bot.core.cardmodel import Card
from kiki_bot.core.errors import BadInput, CheckFailed
from kiki_bot.core.escape import code_block
from kiki_bot.repo import cards, ledgerfile
from kiki_bot.repo.project import Project

KIND = "card-review"
TEMPLATE = "review_comment.md.j2"
PROJECT_WIDE = ("kiki.toml", "compliance/")
WATCHED = (*PROJECT_WIDE, "data/", "sources/", "adapters/", "cards/")
SHA = re.compile(r"[0-9a-f]{40}")
MAX_CHARS = 60_000  # GitHub refuses comments over 65,536 characters
COLLAPSE_OVER = 2  # more adapters than this: one collapsed <details> each
CUT = "\n\n… cut: too long for one comment; `kiki-bot card check` prints everything.\n"


@dataclass(frozen=True)
class Detail:
    """How much of each adapter's review is shown; the comment gives up detail rather than length."""

    rows: int
    lines: int
    problems: int
    width: int


DETAILS = (Detail(30, 30, 10, 120), Detail(10, 10, 3, 60), Detail(3, 3, 1, 40))


@dataclass
class Check:
    """One validation result; no problems means it passed."""

    title: str
    problems: list[str]
    diff: bool = False  # shown verbatim as a diff in a fenced block


@dataclass
class AdapterReview:
    """What the comment says about one adapter: the summary's changes and the checks."""

    adapter: str
    new: bool  # no card on the base branch
    changes: list[Change]
    checks: list[Check]

    @property
    def problems(self) -> list[str]:
        return [p for c in self.checks for p in c.problems]


def on_pull_request(ctx: Context, payload: dict) -> dict[str, str]:
    """Review the cards the PR affects; report, then raise CheckFailed (exit 1) when any has a problem."""
    pr = payload["pull_request"]
    base, head = _sha(pr, "base"), _sha(pr, "head")
    changed = changed_paths(ctx.project.root, base, head)
    if not any(p.startswith(WATCHED) for p in changed):
        return {}
    growth = ledger_growth(ctx.project, base, changed)
    reviews = [review_adapter(ctx.project, base, name, growth) for name in affected(ctx.project, changed)]
    text = comment_text(reviews)
    ctx.fx.job_summary(text=text)
    if not from_fork(payload):
        ctx.fx.sticky_comment(number=int(pr["number"]), kind=KIND, body=text)
    if failed := [r for r in reviews if r.problems]:
        raise CheckFailed(
            f"card review: {', '.join(r.adapter for r in failed)} disagree with the data or the rules",
            [f"{r.adapter}: {p}" for r in failed for p in r.problems],
        )
    return {"adapters": ",".join(r.adapter for r in reviews)}


def from_fork(payload: dict) -> bool:
    """A PR from a fork gets a read-only token: it cannot comment (a deleted fork has no head repo)."""
    head_repo = payload["pull_request"]["head"].get("repo") or {}
    return head_repo.get("full_name") != payload["repository"]["full_name"]


def affected(project: Project, changed: list[str]) -> list[str]:
    """Adapters whose card can change: through their sources' files, their own files, or project-wide ones."""
    if any(p.startswith(PROJECT_WIDE) for p in changed):
        return sorted(project.adapters)
    touched = {tuple(p.split("/", 2)[:2]) for p in changed}
    return sorted(
        name
        for name, a in project.adapters.items()
        if {("adapters", f"{name}.toml"), ("cards", name)} & touched
        or any({("data", s), ("sources", f"{s}.toml")} & touched for s in a.sources)
    )


def review_adapter(project: Project, base: str, name: str, growth: list[str] | None = None) -> AdapterReview:
    """Check one adapter and compare its fresh card with the base branch's; bad PR input is a failed check.
    `growth` holds the ways the PR's ledger is not the base's plus appended entries (`ledger_growth`)."""
    adapter = project.adapter(name)
    try:
        old = base_card(project.root, base, name)
        found = cards.check(project, adapter)
    except BadInput as exc:
        return AdapterReview(
            name, False, [], [Check("The card renders from the data", _rel(project, exc.lines))]
        )
    checks = [
        Check("Committed card matches the data", found.drift, diff=True),
        Check("PST template complete", found.template),
        Check("Hub metadata valid", found.metadata),
        Check("Licence policy", found.licences),
        Check("Data manifests", found.manifests),
        Check("Removal ledger intact", [*found.ledger, *(growth or [])]),
        Check("Removed content stays out", found.reappeared),
    ]
    for check in checks:
        check.problems = _rel(project, check.problems)
    new = found.rendered.card if found.rendered else None
    return AdapterReview(name, old is None, summarise(old, new) if new else [], checks)


def comment_text(reviews: list[AdapterReview]) -> str:
    """The comment (and job summary): as detailed as fits under GitHub's comment limit."""
    env = render.environment().overlay()
    env.filters.update(fenced=fenced)
    template = env.get_template(TEMPLATE)
    for detail in DETAILS:
        text = template.render(reviews=reviews, collapse=len(reviews) > COLLAPSE_OVER, d=detail)
        if len(text) <= MAX_CHARS:
            return text
    return text[: MAX_CHARS - len(CUT)] + CUT


def fenced(lines: list[str], limit: int, width: int) -> Markup:
    """Lines as a fenced code block: shown verbatim (no Markdown, HTML, links or mentions), with a fence
    longer than any backtick run inside, so no line of the PR's text can close it."""
    shown = [line if len(line) <= width else line[: width - 1] + "…" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"… {len(lines) - limit} more lines")
    return Markup(code_block("\n".join(shown), "diff"))


# ---------------------------------------------------------------- the base side, from git
def _sha(pr: dict, side: str) -> str:
    sha = str((pr.get(side) or {}).get("sha") or "")
    if not SHA.fullmatch(sha):
        raise BadInput(f"pull_request.{side}.sha", f"expected a 40-hex commit id, got {sha[:50]!r}")
    return sha


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)


def changed_paths(root: Path, base: str, head: str) -> list[str]:
    """Paths the PR changes, relative to the project (which may be a subfolder of the repository)."""
    for revs in ([f"{base}...{head}"], [base, "HEAD"]):
        res = _git(root, "diff", "--name-only", "--no-renames", "--relative", "-z", *revs, "--")
        if res.returncode == 0:
            return [p for p in res.stdout.decode("utf-8", "replace").split("\0") if p]
    raise BadInput(
        "pull_request.base.sha",
        f"commit {base} is not in the checkout of {root} (check out with "
        f"fetch-depth: 0): {res.stderr.decode('utf-8', 'replace').strip()}",
    )


def ledger_growth(project: Project, base: str, changed: list[str]) -> list[str]:
    """The ledger only grows: if the PR changes it, the base branch's ledger must be a byte prefix of the
    PR's; says which base entry is missing or changed. A PR that leaves it alone keeps the base's on merge."""
    rel = project.ledger_path.relative_to(project.root).as_posix()
    if rel not in changed:
        return []
    res = _git(project.root, "cat-file", "blob", f"{base}:./{rel}")
    was = res.stdout if res.returncode == 0 else b""
    now = ledgerfile.data(project.ledger_path)
    if now.startswith(was):
        return []
    old_lines, new_lines = was.splitlines(keepends=True), now.splitlines(keepends=True)
    no = next(i for i, line in enumerate(old_lines) if i >= len(new_lines) or new_lines[i] != line)
    how = "is missing here" if no >= len(new_lines) else "is changed here"
    return [f"{rel}: entry seq {_seq(old_lines[no], no + 1)} (line {no + 1}) of the base branch {how}; the "
            f"removal ledger only grows: keep the base's {len(old_lines)} entries as they are, append after"]


def _seq(line: bytes, default: int) -> int:
    """The `seq` a base-branch ledger line says it has (its line number if it says none)."""
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return default
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else default


def base_card(root: Path, base: str, adapter: str) -> Card | None:
    """The adapter's card.json on the base branch; None when the adapter is new there."""
    path = f"cards/{adapter}/{render.CARD_JSON}"
    res = _git(root, "cat-file", "blob", f"{base}:./{path}")  # plumbing: no textconv, no pager; ./ = project
    if res.returncode != 0:
        return None
    try:
        return Card.model_validate_json(res.stdout)
    except ValidationError as exc:
        raise BadInput.validation(Card, exc.errors(), f"{path} on the base branch") from None


def _rel(project: Project, lines: list[str]) -> list[str]:
    """Problems name files relative to the project: the runner's absolute paths mean nothing to a reviewer."""
    return [line.replace(f"{project.root}/", "") for line in lines]
