"""Reading a hand-written card's version history (`kiki-bot card import`), so the first generated card links
every version published before kiki-bot.

Pure: takes the card's text, returns its versions. A hand-written card holds the template's answers as
`**<label>:** <answer>` lines and a changelog table with a version, a date and a changes column (the first
table that has all three); the newest row is the card's own version. Every version becomes an `imported`
history entry whose placement date is its release date; only the card's own version has its answers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import semver

from kiki_bot.core.cardhistory import hub_revision_url
from kiki_bot.core.cardmodel import ChangelogEntry, History, Previous, VersionLink
from kiki_bot.core.errors import BadInput
from kiki_bot.core.tags import parse_version

_LABEL = re.compile(r"^\*\*(?P<label>[^*]+?):?\*\*:?\s*(?P<value>.*)$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_COLUMNS = {
    "version": re.compile(r"(?i)^(version|release)$"),
    "date": re.compile(r"(?i)^(date|released|release date|published)$"),
    "changes": re.compile(r"(?i)^(changes?|description|notes|summary|what changed)$"),
}
_DATES = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y")


@dataclass(frozen=True)
class Row:
    line: int
    version: str
    date: dt.date
    changes: str


@dataclass(frozen=True)
class HandWritten:
    version: str
    sections: dict[str, str]
    rows: list[Row]  # oldest first


def _plain(cell: str) -> str:
    """A cell's text without the Markdown a writer puts around a version or a date (links, code, emphasis)."""
    return _LINK.sub(r"\1", cell).strip().strip("`*_ ").strip()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _date(text: str, where: str) -> dt.date:
    for form in _DATES:
        try:
            return dt.datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise BadInput(where, f"date {text!r} is not YYYY-MM-DD, DD/MM/YYYY or DD/MM/YY")


def _sections(lines: list[str]) -> dict[str, str]:
    """The `**label:** answer` lines; an answer runs on until a blank line, a heading or the next label."""
    out: dict[str, str] = {}
    label = None
    for line in lines:
        if m := _LABEL.match(line.strip()):
            label = m["label"].strip()
            out[label] = m["value"].strip()
        elif label and line.strip() and not line.startswith(("#", "|")):
            out[label] = f"{out[label]} {line.strip()}".strip()
        else:
            label = None
    return out


def _table(lines: list[str], where: str) -> list[Row]:
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|") or i + 1 >= len(lines) or not re.fullmatch(r"[\s|:-]+", lines[i + 1]):
            continue
        header = [_plain(c) for c in _cells(line)]
        cols = {k: next((j for j, h in enumerate(header) if p.match(h)), None) for k, p in _COLUMNS.items()}
        if None in cols.values():
            continue
        rows, seen = [], {}
        for no, row in enumerate(lines[i + 2:], i + 3):
            if not row.lstrip().startswith("|"):
                break
            cells = _cells(row)
            here = f"{where}:{no}"
            if len(cells) != len(header):
                raise BadInput(here, f"changelog row has {len(cells)} cells, its table has {len(header)} columns")
            try:
                version = parse_version(_plain(cells[cols["version"]]).removeprefix("v"))
            except BadInput as exc:
                raise BadInput(here, exc.problem) from None
            if version in seen:
                raise BadInput(here, f"version {version} is listed twice (first on line {seen[version]})")
            seen[version] = no
            rows.append(Row(no, version, _date(_plain(cells[cols["date"]]), here), cells[cols["changes"]]))
        if not rows:
            raise BadInput(f"{where}:{i + 1}", "the changelog table has no rows")
        return sorted(rows, key=lambda r: semver.Version.parse(r.version))
    raise BadInput(where, "no changelog table: expected a Markdown table with Version, Date and Changes columns")


def parse(text: str, where: str) -> HandWritten:
    """The card's own version (its `Version of the Summary`, else the newest changelog row), its answers and
    its changelog rows; bad input names the file and line."""
    lines = text.replace("\r\n", "\n").split("\n")
    rows = _table(lines, where)
    sections = _sections(lines)
    stated = _plain(sections.get("Version of the Summary", "")).split(" ")[0].removeprefix("v")
    version = rows[-1].version
    if stated and stated != version:
        raise BadInput(where, f"`Version of the Summary` says {stated!r} but the newest changelog row is {version}")
    return HandWritten(version, sections, rows)


def history(card: HandWritten, repo: str) -> History:
    """The imported versions as history: links to their Hub revisions, their changelog rows, the newest as the
    version the next one is compared with (without figures: they were typed by hand, not computed)."""
    def link(row: Row) -> VersionLink:
        return VersionLink(version=row.version, date=row.date, url=hub_revision_url(repo, row.version),
                           published_at=dt.datetime.combine(row.date, dt.time(), dt.UTC), placed_on_market=row.date,
                           revision=f"v{row.version}", imported=True,
                           sections=card.sections if row.version == card.version else {})

    newest = card.rows[-1]
    return History(versions=[link(r) for r in card.rows],
                   changelog=[ChangelogEntry(version=r.version, date=r.date, changed=[r.changes])
                              for r in reversed(card.rows)],
                   previous=Previous(version=newest.version, date=newest.date, fingerprint=None))
