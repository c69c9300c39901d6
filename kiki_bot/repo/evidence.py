"""Opt-out evidence on disk: compliance/optouts/<source>.jsonl (DESIGN.md section 8), read, appended, applied.

The files only grow: each check appends its lines, so the state of a host on any past day stays readable.
The build refuses a record whose origin host was reserved on the day the record was collected.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from kiki_bot.core import optouts
from kiki_bot.core.optouts import Evidence, Facts, Reservations
from kiki_bot.repo.project import Category, Project, Source
from kiki_bot.repo.records import iter_source


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


def refused(project: Project, sources: Iterable[Source], purged: Collection[tuple[str, int]] = frozenset(),
            blocked: Collection[str] = frozenset(),
            evidence: dict[str, list[Evidence] | None] | None = None) -> list[tuple[str, str]]:
    """(file:line, why) of each record the build refuses: its origin host was reserved, for a signal that
    applies to how it was fetched, on its access date. Purged and blocklisted records are gone already.
    Only sources whose evidence (`evidence`, else the stored files) holds a reservation are read record by record."""
    out = []
    for source in crawled(sources):
        lines = evidence[source.id] if evidence is not None else load(project, source.id)
        rules = Reservations.of(lines or [], through_api(source))
        if not rules.any_reserved:
            continue
        for rec in iter_source(project.data_dir, source.id):
            if rec.key in purged or rec.content_hash in blocked:
                continue
            day = rec.provenance.access_date
            if (hit := rules.reserved(rec.provenance.origin, day)) is not None:
                out.append(optouts.refusal(f"{rec.file}:{rec.line}", source.id, hit, day, relative(project, source.id)))
    return out


def facts(project: Project, sources: Iterable[Source], purged: Collection[tuple[str, int]] = frozenset(),
          blocked: Collection[str] = frozenset()) -> Facts:
    """What card section 3.1 states about the crawled sources' opt-out checks."""
    srcs = crawled(sources)
    return Facts(evidence={s.id: load(project, s.id) for s in srcs}, through_api={s.id: through_api(s) for s in srcs},
                 refused=refused(project, srcs, purged, blocked))
