"""Takedowns made upstream, as removal requests: opt-out lists in BigCode's format, and rows that a newer revision
of the Hub dataset a source was drawn from no longer has. Pure: lines in, matches out.

Both are read line by line and keep only what touches this project's records (the records' GitHub identities, or
their content hashes), so a list of any length is processed in memory bounded by the project, not by the list.
An upstream list is someone else's text: a line that is not what the format says is counted and named by its line
number, never quoted, and no entry is ever widened (membership is literal; owners compare case-insensitively).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from kiki_bot.core.canonical import canonical_json
from kiki_bot.core.issueform import CONFIRMATION_TEXT, MAX_IDENTIFIERS
from kiki_bot.core.matching import RecordLike
from kiki_bot.core.selectors import github_identity

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Identities:
    """The GitHub owners and `owner/repo` names (lower-cased) that a source's records come from."""

    owners: frozenset[str]
    repos: frozenset[str]


def identities(records: Iterable[RecordLike]) -> Identities:
    owners, repos = set(), set()
    for rec in records:
        if found := github_identity(rec.provenance):
            owners.add(found[0])
            repos.add(f"{found[0]}/{found[1]}")
    return Identities(frozenset(owners), frozenset(repos))


@dataclass
class Scan:
    """What one pass over an upstream file found: its size and hash, the entries that touch this project, and
    the lines it could not read (counted; the first few named by number and why, in the bot's words)."""

    lines: int = 0
    sha256: str = ""
    matched: set[str] = field(default_factory=set)  # identifiers: `<owner>`, `<owner>/<repo>`
    bad_lines: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int, why: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {line}: {why}")


def _strings(obj: dict, key: str) -> list[str] | None:
    value = obj.get(key, [])
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _objects(lines: Iterable[bytes], scan: Scan, digest=None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each JSON-object line, counted on from `scan.lines`; others are problems."""
    for no, raw in enumerate(lines, scan.lines + 1):
        if digest is not None:
            digest.update(raw + b"\n")
        scan.lines = no
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            scan.problem(no, "not valid JSON")
            continue
        if isinstance(obj, dict):
            yield no, obj
        else:
            scan.problem(no, "not a JSON object")


def scan_optouts(lines: Iterable[bytes], ids: Identities) -> Scan:
    """BigCode's `optouts.jsonl`: one `{"issue", "author", "optout_repos": [...], "optout_owners": [...]}` a line.
    The owners and repositories on it that records come from become selectors (`<owner>`, `<owner>/<repo>`);
    a repository whose owner is matched too is covered by the owner."""
    scan, digest = Scan(), hashlib.sha256()
    owners, repos = set(), set()
    for no, obj in _objects(lines, scan, digest):
        listed_repos, listed_owners = _strings(obj, "optout_repos"), _strings(obj, "optout_owners")
        if listed_repos is None or listed_owners is None:
            scan.problem(no, "`optout_repos` and `optout_owners` must be lists of strings")
            continue
        owners.update(o for o in (v.strip().lower() for v in listed_owners) if o in ids.owners)
        repos.update(r for r in (v.strip().lower().removesuffix(".git") for v in listed_repos) if r in ids.repos)
    scan.sha256 = digest.hexdigest()
    scan.matched = owners | {r for r in repos if r.split("/")[0] not in owners}
    return scan


def row_hash(row: dict, content_field: str | None) -> str | None:
    """A dataset row's identity: SHA-256 of `content_field`'s UTF-8 text, or of the whole row's canonical JSON."""
    if content_field is None:
        return hashlib.sha256(canonical_json(row)).hexdigest()
    value = row.get(content_field)
    return hashlib.sha256(value.encode("utf-8")).hexdigest() if isinstance(value, str) else None


def row_id(value: object) -> str | None:
    """An upstream row id as text (`_provenance.upstream_id`, or the row's `id_field`): a string or an integer."""
    if isinstance(value, bool):
        return None
    return str(value) if isinstance(value, str | int) else None


def scan_rows(lines: Iterable[bytes], wanted: frozenset[str], content_field: str | None, scan: Scan,
              wanted_ids: frozenset[str] = frozenset(), id_field: str | None = None) -> tuple[set[str], set[str]]:
    """Stream one file of a dataset revision; returns which of the `wanted` row hashes and of the `wanted_ids`
    (the values of `id_field`) it holds. Only what is wanted is computed, so an id-only source needs no text."""
    hashes: set[str] = set()
    ids: set[str] = set()
    for no, row in _objects(lines, scan):
        if wanted:
            if (h := row_hash(row, content_field)) is None:
                scan.problem(no, f"no text `{content_field}`")
            elif h in wanted:
                hashes.add(h)
        if id_field is not None:
            if (i := row_id(row.get(id_field))) is None:
                scan.problem(no, f"no id `{id_field}` (a string or an integer)")
            elif i in wanted_ids:
                ids.add(i)
    return hashes, ids


def form_bodies(identifiers: Iterable[str], reason: str, details: str) -> list[str]:
    """The bot's own removal-request form bodies for `identifiers`, at most MAX_IDENTIFIERS of them each."""
    lines = sorted(identifiers)
    chunks = [lines[i:i + MAX_IDENTIFIERS] for i in range(0, len(lines), MAX_IDENTIFIERS)]
    return [f"### Content to remove\n\n" + "\n".join(chunk) + "\n\n### Your relationship to the content\n\n"
            f"I act on behalf of the rightsholder\n\n### Reason\n\n{reason}\n\n### Additional details\n\n{details}\n\n"
            f"### Confirmation\n\n- [X] {CONFIRMATION_TEXT}\n" for chunk in chunks]


def last_checks(evidence: bytes, upto: dt.date) -> dict[str, dict]:
    """The newest evidence line per upstream name checked on or before `upto` (a card states the day it was
    rendered for, so a later check does not change a rendered version)."""
    last: dict[str, dict] = {}
    for raw in evidence.splitlines():
        doc = json.loads(raw)
        if dt.date.fromisoformat(doc["checked_at"][:10]) <= upto:
            last[doc["name"]] = doc
    return last


def followed(sources: Iterable, evidence: dict[str, bytes], upto: dt.date) -> str:
    """Card section 3.1: the upstream opt-out lists and dataset revisions the sources follow, and when each was
    last checked. `sources` are the adapter's sources; `evidence` their compliance/upstream/<id>.jsonl bytes."""
    parts = []
    for s in sources:
        if s.upstream is None:
            continue
        checks = last_checks(evidence.get(s.id, b""), upto)
        followed = [(o.name, f"the opt-out list {o.name} ({o.url or f'{o.hub_dataset}/{o.file} on the Hub'})")
                    for o in s.upstream.optout_lists]
        if (d := s.upstream.dataset) is not None:
            followed.append((d.name, f"the revisions of {d.repo} (pinned {d.revision[:12]})"))
        for name, what in followed:
            check = checks.get(name)
            if check is None:
                when = "not checked yet"
            elif check["status"] != "ok":
                when = f"last checked {check['checked_at'][:10]} (unavailable then: {check['detail']})"
            else:
                when = f"last checked {check['checked_at'][:10]}"
            parts.append(f"source {s.id} follows {what}, {when}")
    if not parts:
        return ""
    return ("Upstream takedowns are followed: " + "; ".join(parts) + ". Records they name become removal requests "
            "with the same deadline.")
