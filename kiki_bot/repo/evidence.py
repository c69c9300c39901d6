"""Opt-out evidence on disk: compliance/optouts/<source>.jsonl (DESIGN.md section 8), read, appended, applied.

The files only grow: each check appends its lines, so the state of a host on any past day stays readable.
`Stored` answers the eligibility rule (`trainset.rule`): a record whose origin host was reserved on the day
it was collected is refused by the training set, the card's figures and `card check` alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiki_bot.core import optouts
from kiki_bot.core.optouts import Evidence, Facts, Reservations
from kiki_bot.repo.project import Category, Project, Source


def path(project: Project, source: str) -> Path:
    return project.root / "compliance" / "optouts" / f"{source}.jsonl"


def relative(project: Project, source: str) -> str:
    return path(project, source).relative_to(project.root).as_posix()


def load(project: Project, source: str) -> list[Evidence] | None:
    """The source's evidence, oldest first; None when it was never checked."""
    p = path(project, source)
    return optouts.parse(p.read_bytes(), relative(project, source)) if p.is_file() else None


def appended(project: Project, lines: dict[str, list[Evidence]]) -> dict[Path, bytes]:
    """Each source's evidence file with `lines` added at its end (written all at once by the caller)."""
    out = {}
    for sid, new in lines.items():
        p = path(project, sid)
        old = p.read_bytes() if p.is_file() else b""
        add = "".join(optouts.dumps(e) + "\n" for e in new).encode("utf-8")
        if add and not old.endswith(add):  # a re-run applying the same check adds nothing
            out[p] = old + (b"\n" if old and not old.endswith(b"\n") else b"") + add
    return out


def through_api(source: Source) -> bool:
    return source.crawler is not None and source.crawler.access == "api"


def crawled(sources: Iterable[Source]) -> list[Source]:
    return [s for s in sources if s.category is Category.CRAWLED]


@dataclass
class Stored:
    """The eligibility rule's `Reservations` from the evidence files (or, for a check not yet written, the
    evidence given): each crawled source's answers, read when the rule first asks about the source."""

    project: Project
    given: dict[str, list[Evidence] | None] | None = None
    _by_source: dict[str, Reservations] = field(default_factory=dict, repr=False)

    def _of(self, source: str) -> Reservations | None:
        src = self.project.sources.get(source)
        if src is None or src.category is not Category.CRAWLED:
            return None
        if source not in self._by_source:
            lines = self.given[source] if self.given is not None and source in self.given else load(self.project, source)
            self._by_source[source] = Reservations.of(lines or [], through_api(src))
        return self._by_source[source]

    def hosts(self, source: str) -> frozenset[str]:
        found = self._of(source)
        return frozenset() if found is None else found.reserved_hosts

    def reserved(self, source: str, host: str, day: dt.date) -> str | None:
        found = self._of(source)
        hit = None if found is None else found.reserved(host, day)
        return None if hit is None else optouts.refusal(source, hit, day, relative(self.project, source))


def facts(project: Project, sources: Iterable[Source], refused: list[str],
          domains: dict[str, frozenset[str]] | None = None) -> Facts:
    """What card section 3.1 states about the crawled sources' opt-out checks; `refused`: the records the
    eligibility rule refused for a reservation; `domains`: the registrable domains of each source's records
    used (those no check covered are named)."""
    srcs = crawled(sources)
    return Facts(evidence={s.id: load(project, s.id) for s in srcs}, through_api={s.id: through_api(s) for s in srcs},
                 refused=refused, domains=domains or {})
