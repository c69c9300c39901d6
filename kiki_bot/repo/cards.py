"""Rendering and checking one adapter's card files: the data → card → files pipeline, and drift."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kiki_bot import render
from kiki_bot.core import cardimport, carddiff, ledger, pst_rules, tags
from kiki_bot.core.cardbuilder import build
from kiki_bot.core.cardmodel import Card, History, Purge, Removals, RunFacts, last_published, published_versions
from kiki_bot.core.errors import BadInput, CheckFailed
from kiki_bot.core.optouts import Facts
from kiki_bot.repo import evidence, figures, ledgerfile, manifests, skeleton, trainset
from kiki_bot.repo.project import Adapter, Project
from kiki_bot.repo.storage import write_files


@dataclass
class Rendered:
    card: Card
    files: dict[str, str]
    figures: figures.DataFigures
    optouts: Facts


@dataclass
class Report:
    """What `card check` found for one adapter; empty lists mean it passed."""

    adapter: str
    drift: list[str] = field(default_factory=list)
    template: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    licences: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    ledger: list[str] = field(default_factory=list)
    reappeared: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    reserved: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)  # records accessed outside their source's declared period
    pending_retrain: list[str] = field(default_factory=list)  # notices: data changed by recorded purges only
    rendered: Rendered | None = None

    @property
    def problems(self) -> list[str]:
        return [*self.drift, *self.template, *self.metadata, *self.licences, *self.manifests, *self.ledger,
                *self.reappeared, *self.placeholders, *self.reserved, *self.stale, *self.periods]

    def as_json(self) -> dict:
        """The `card check --json` entry: the findings, not the rendered card they came from."""
        return {**{k: v for k, v in vars(self).items() if k not in ("adapter", "rendered")}, "ok": not self.problems}


def removals(entries: list[ledger.Entry], adapter: Adapter, released_in: list[str]) -> Removals:
    stats = ledger.removal_stats(entries, adapter.name, released_in, set(adapter.sources))
    return Removals(received=stats["requests_received"], approved=stats["approved"], rejected=stats["rejected"],
                    records_removed=stats["records_removed"],
                    median_days_to_release=stats["median_days_to_release"],
                    longest_days_to_release=stats["longest_days_to_release"])


def purges(entries: list[ledger.Entry], adapter: Adapter) -> list[Purge]:
    """The ledger's purges of this adapter's records: which published versions they leave superseded."""
    return [Purge(seq=e.seq, request=e.request.id, issue=e.request.issue) for e in entries
            if e.event == "purged" and adapter.name in (e.adapters or ())
            and any(source in adapter.sources for source, _, _ in e.records or ())]


def render_adapter(
    project: Project,
    adapter: Adapter,
    version: str | None = None,
    date: dt.date | None = None,
    run: RunFacts | None = None,
    entries: list[ledger.Entry] | None = None,
    ledger_head: tuple[int, str] | None = None,
    history: History | None = None,
) -> Rendered:
    """Build the card from data; version, date and run facts default to the committed card's own, the ledger
    head it records to the head of `entries`.

    A new `version` must be semver and newer than the last published one; the card is a draft
    (`published_at` null) until `publish` runs for it. A published version is never rebuilt: its card is
    rendered again as it was published (DESIGN.md section 7, invariant 5).
    """
    committed = render.load_card(project.card_dir(adapter.name))
    if version is not None:
        check_version(committed, adapter.name, version)
    same = committed is not None and version in (None, committed.header.version)
    version = version or (committed.header.version if committed else "0.1.0")
    date = date or (committed.header.last_update if same else render.today())
    run = run or (committed.run if same else RunFacts())
    entries = ledgerfile.read(project.ledger_path) if entries is None else entries
    eligible = trainset.rule(project, entries)
    figs = figures.compute(project, adapter, eligible)
    sources = project.adapter_sources(adapter)
    opt = evidence.facts(project, sources, figs.reserved,
                         {sid: frozenset(f.domain_bytes) for sid, f in figs.sources.items()})
    if same and committed.published_at is not None:
        return Rendered(committed, render.files(committed), figs, opt)
    released_in = [*published_versions(committed), version]
    card = build(project.config, sources, adapter, figs, removals(entries, adapter, released_in), version, date,
                 run, committed, committed.published_at if same else None, ledger_head or ledger.head(entries), opt,
                 upstream=_upstream_followed(project, adapter, date), purges=purges(entries, adapter),
                 history=history)
    return Rendered(card, render.files(card), figs, opt)


def _upstream_followed(project: Project, adapter: Adapter, date: dt.date) -> str:
    """Card 3.1's statement of the upstream lists and revisions followed, from their check evidence."""
    from kiki_bot.core.upstream import followed

    sources = project.adapter_sources(adapter)
    paths = {s.id: project.upstream_evidence(s.id) for s in sources if s.upstream}
    return followed(sources, {sid: p.read_bytes() for sid, p in paths.items() if p.is_file()}, date)


def hand_written(project: Project, path: Path, name: str | None) -> tuple[Adapter, cardimport.HandWritten]:
    """The adapter a hand-written card is of (`name`, needed when there are several) and the card's versions and
    answers (`kiki-bot card import`), or bad input naming file and line. Read before anything is locked."""
    if name is None and len(project.adapters) != 1:
        raise BadInput("ADAPTER", f"name the adapter the card is of (one of: {', '.join(sorted(project.adapters))})")
    adapter = project.adapter(name) if name else next(iter(project.adapters.values()))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(str(path), f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise BadInput(str(path), f"not UTF-8 text (byte {exc.start})") from None
    return adapter, cardimport.parse(text, str(path))


def import_card(project: Project, adapter: Adapter, hand: cardimport.HandWritten,
                date: dt.date | None = None) -> Rendered:
    """The card rendered with a hand-written card's versions as its history, marked imported: the committed
    draft's version, or the one after the newest imported. Refused once kiki-bot has published a version (the
    history is then kiki-bot's own); importing the same card again changes nothing."""
    committed = render.load_card(project.card_dir(adapter.name))
    if committed is not None:
        ours = [v.version for v in committed.header.previous_versions if not v.imported]
        ours += [committed.header.version] if committed.published_at else []
        if ours:
            raise BadInput(str(project.card_dir(adapter.name) / render.CARD_JSON),
                           f"kiki-bot has published {', '.join('v' + v for v in ours)} of {adapter.name} already: a "
                           "hand-written card's history is imported before the first release")
    version = (committed.header.version if committed and tags.newer(committed.header.version, hand.version)
               else tags.next_patch(hand.version))
    return render_adapter(project, adapter, version, date, history=cardimport.history(hand, adapter.hub_repo))


def check_version(committed: Card | None, adapter: str, version: str) -> None:
    """A version to render is semver and newer than the last published one (or that published one itself)."""
    tags.parse_version(version)
    last = last_published(committed)
    if committed is not None and committed.published_at is not None and version == committed.header.version:
        return
    if not tags.newer(version, last):
        raise BadInput("version", f"v{version} is not newer than the last published version v{last} of {adapter}")


def write(project: Project, adapter: Adapter, rendered: Rendered) -> list[str]:
    """Write one adapter's card files atomically; the names of those that changed."""
    return write_all(project, [(adapter, rendered)])[adapter.name]


def files_of(project: Project, cards: list[tuple[Adapter, Rendered]]) -> dict[Path, bytes]:
    """The card files of every adapter with their bytes; none when any adapter's data holds a record the
    eligibility rule refuses or breaks the manifests (a `BadInput` naming every problem)."""
    problems = [p for adapter, rendered in cards for p in rendered.figures.refused + rendered.figures.reserved + [
        p for s in adapter.sources for p in manifests.mismatches(project.data_dir / s)]]
    found = [(p.split(": ", 1)[0], p.split(": ", 1)[-1]) for p in dict.fromkeys(problems)]
    if found:
        raise BadInput.of(found)
    return {project.card_dir(a.name) / name: text.encode("utf-8") for a, r in cards for name, text in r.files.items()}


def write_all(project: Project, cards: list[tuple[Adapter, Rendered]]) -> dict[str, list[str]]:
    """Write the card files of every adapter, or none (see `files_of`). Per adapter: the file names that changed."""
    written = set(write_files(files_of(project, cards)))
    return {a.name: [name for name in r.files if project.card_dir(a.name) / name in written] for a, r in cards}


def check(project: Project, adapter: Adapter) -> Report:
    """Re-render from the data and compare with what is committed; validate rules, metadata and policy."""
    report = Report(adapter.name)
    card_dir = project.card_dir(adapter.name)
    committed = render.load_card(card_dir)
    recorded = {} if committed is None else {str(card_dir / render.CARD_JSON): _head(committed)}
    try:
        ledgerfile.verify(project.ledger_path, recorded)
    except CheckFailed as exc:  # names the first bad entry, or the card whose ledger head is gone
        report.ledger.append(str(exc))
    entries = _readable_entries(project)
    # A ledger grown since the card was rendered is no drift; one that lost the card's head failed just above.
    fresh = report.rendered = render_adapter(project, adapter, entries=entries,
                                             ledger_head=_head(committed) if committed else None)
    report.licences = fresh.figures.refused
    report.reserved = fresh.figures.reserved
    report.placeholders = skeleton.placeholders(project.root, adapter.name)
    report.reappeared = [f"removed content is back: {r}" for r in fresh.figures.reappeared]
    report.manifests = [p for s in adapter.sources for p in manifests.mismatches(project.data_dir / s)]
    report.periods = outside_period(project, adapter, fresh.figures, entries)
    # Every earlier version with figures from data (an imported one has none), the newest first
    report.stale = pst_rules.stale_figures(
        typed_text(project, adapter),
        [(v.version, pst_rules.figures_of(v.fingerprint.sources))
         for v in reversed(fresh.card.header.previous_versions) if v.fingerprint],
        pst_rules.figures_of(fresh.card.fingerprint.sources))
    if committed is None:
        report.drift.append(f"{card_dir / render.CARD_JSON}: missing (run `kiki-bot card render {adapter.name}`)")
        return report
    if committed.published_at is not None:
        notices, report.drift = since_published(project, adapter, committed, fresh.figures, entries)
        report.pending_retrain = notices
    diffs = carddiff.field_diff(committed.model_dump(mode="json", by_alias=True),
                                fresh.card.model_dump(mode="json", by_alias=True))
    report.drift += [f"card.json {line}" for line in carddiff.describe(diffs)]
    for name, expected in fresh.files.items():
        path = card_dir / name
        actual = path.read_text(encoding="utf-8") if path.is_file() else ""
        if actual != expected and not (name == render.CARD_JSON and diffs):
            report.drift += [f"{path}: differs from what the data says"] + carddiff.text_diff(name, actual, expected)
    readme = fresh.files[render.README]
    report.template = pst_rules.check_body(readme)
    report.metadata = pst_rules.check_metadata(render.metadata(readme))
    return report


def outside_period(project: Project, adapter: Adapter, figs: figures.DataFigures,
                   entries: list[ledger.Entry]) -> list[str]:
    """Sources with records accessed outside their declared `collected_from`..`collected_to`: sections 2.1,
    2.2.2 and 2.6 describe each source by that period, so such a record makes the card untrue. The figures'
    first and last access dates say whether to look; only then are that source's records read, to count
    them and name the first (removed records, which the figures leave out, are left out here too)."""
    from kiki_bot.repo.records import data_files, iter_source_file

    rule, found = None, []
    for s in project.adapter_sources(adapter):
        f = figs.sources.get(s.id)
        if f is None or f.first_access is None or f.last_access is None or (
                s.collected_from <= f.first_access and f.last_access <= s.collected_to):
            continue
        rule = rule or trainset.rule(project, entries)
        outside = (rec for path in data_files(project.data_dir / s.id) for rec in iter_source_file(path, s.id)
                   if not s.collected_from <= rec.provenance.access_date <= s.collected_to
                   and not rule.of_record(rec).removed)
        first = next(outside)
        n = 1 + sum(1 for _ in outside)
        found.append(f"source {s.id}: {n:,} record{'s' if n != 1 else ''} accessed outside its declared period "
                     f"{s.collected_from} to {s.collected_to}, the first {first.file}:{first.line} "
                     f"(record {s.id}#{first.provenance.record_idx}, accessed {first.provenance.access_date}): "
                     f"the card describes the source by that period (correct `collected_from`/`collected_to` in "
                     f"sources/{s.id}.toml or the records' `_provenance.access_date`)")
    return found


def typed_text(project: Project, adapter: Adapter) -> list[tuple[str, str]]:
    """Every free text of the card that a person typed, with the file and key it is typed in."""
    keys = ("description", "intended_use", "limitations", "illegal_content_measures", "other_processing")
    out = [(f"adapters/{adapter.name}.toml: key `{k}`", v) for k in keys if (v := getattr(adapter, k))]
    if adapter.eval and adapter.eval.caveats:
        out.append((f"adapters/{adapter.name}.toml: key `eval.caveats`", adapter.eval.caveats))
    for s in project.adapter_sources(adapter):
        where = f"sources/{s.id}.toml: key"
        out += [(f"{where} `{k}`", getattr(s, k)) for k in ("name", "selection", "description")]
        out += [(f"{where} `content_types[{i}]`", c) for i, c in enumerate(s.content_types)]
        if s.crawler:
            out += [(f"{where} `crawler.{k}`", getattr(s.crawler, k)) for k in ("purpose", "behaviour",
                                                                              "content_description")]
        if s.payload and s.payload.note:
            out.append((f"{where} `payload.note`", s.payload.note))
    return out


def since_published(project: Project, adapter: Adapter, card: Card, figs: figures.DataFigures,
                    entries: list[ledger.Entry]) -> tuple[list[str], list[str]]:
    """(notices, problems): the published version `card` against the data now. Records removed since by a
    recorded purge are *pending retrain* (a notice: the next release trains without them); any other change is
    drift, since a published version's card is never rewritten (DESIGN.md section 7, invariant 5)."""
    version, seq = card.header.version, card.header.ledger_seq
    later = [e for e in entries if e.event == "purged" and e.seq > seq and adapter.name in (e.adapters or ())]
    removed = Counter(source for source, _ in ledger.purged_keys(later))
    was, problems = card.fingerprint.sources, []
    for sid in sorted(set(was) | set(figs.sources)):
        (r0, t0), gone = was.get(sid, (0, 0)), removed[sid]
        r1, t1 = (figs.sources[sid].records, figs.sources[sid].tokens) if sid in figs.sources else (0, 0)
        if r1 != r0 - gone or t1 > t0 or (not gone and t1 != t0):
            problems.append(f"source {sid}: {r0:,} records ({t0:,} tokens) in published v{version}, {r1:,} ({t1:,}) "
                            f"now, and the ledger records {gone:,} removed since")
    if not problems and not removed and card.run.train_sha256:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="kiki-check-") as tmp:
            try:
                now = trainset.assemble(project, adapter, Path(tmp), trainset.rule(project, entries)).train_sha256
            except BadInput as exc:  # the data no longer makes a training set at all
                now = f"none ({exc})"
        if now != card.run.train_sha256:
            problems.append(f"training set: {now} now, {card.run.train_sha256} recorded by published v{version} "
                            "(train_sha256): a record's content changed")
    if problems:
        return [], [f"v{version} is published and its card is never rewritten, but the data changed in a way no "
                    f"removal explains: render a new version (`kiki-bot card render {adapter.name} --version "
                    f"<newer>`)", *problems]
    if not removed:
        return [], []
    count = sum(removed.values())
    requests = ", ".join(sorted({e.request.id for e in later}))
    return [f"v{version}: pending retrain: {count:,} record(s) removed since it was published ({requests}); the "
            "next release trains without them"], []


def _head(card: Card) -> tuple[int, str]:
    return card.header.ledger_seq, card.header.ledger_hash


def recorded_heads(project: Project) -> dict[str, tuple[int, str]]:
    """The ledger head each committed card recorded, by card file: `ledger verify` holds the ledger to it."""
    paths = sorted(project.root.glob(f"cards/*/{render.CARD_JSON}"))
    return {str(path): _head(card) for path in paths if (card := render.load_card(path.parent)) is not None}


def _readable_entries(project: Project) -> list[ledger.Entry]:
    """The ledger's entries for figures even when its chain is broken (verify reports that separately)."""
    try:
        return ledgerfile.read(project.ledger_path)
    except BadInput:
        return []
