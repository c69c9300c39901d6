"""The card's figures, computed from the data in one streaming pass — never typed by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kiki_bot.core import licences
from kiki_bot.core.errors import BadInput
from kiki_bot.repo.project import Adapter, Project
from kiki_bot.core.selectors import registrable_domain
from kiki_bot.repo.records import Record, data_files, iter_file, record_text

ESTIMATE_BYTES_PER_TOKEN = 4
TOKEN_BATCH = 512


@dataclass
class SourceFigures:
    records: int = 0
    bytes: int = 0
    tokens: int = 0
    first_access: dt.date | None = None
    last_access: dt.date | None = None
    no_origin: int = 0
    licenses: Counter[str] = field(default_factory=Counter)
    domain_bytes: Counter[str] = field(default_factory=Counter)


@dataclass
class DataFigures:
    """Everything the card says about an adapter's training data, plus what the pass found wrong."""

    sources: dict[str, SourceFigures]
    token_method: str
    tokenizer: str | None
    licence_violations: list[str] = field(default_factory=list)
    reappeared: list[str] = field(default_factory=list)


@lru_cache(maxsize=8)
def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def tokenizer_file(local_path: Path | None) -> Path | None:
    if local_path is None:
        return None
    candidate = local_path / "tokenizer.json"
    if not candidate.is_file():
        raise BadInput(f"base_model.local_path {local_path}", "no tokenizer.json there (needed for exact token counts)")
    return candidate


def compute(
    project: Project,
    adapter: Adapter,
    purged: set[tuple[str, int]] = frozenset(),
    blocklist: set[str] = frozenset(),
) -> DataFigures:
    """Every record of the adapter's sources, counted once: counts, tokens, dates, domains, licences, exclusions.

    Figures come from the provenance index (`kiki_bot.index`: refreshed and verified against the manifests
    first) as per-file aggregates; only the excluded records (purged keys, blocklisted content) are looked
    up one by one. Files the index does not serve, or every file when it cannot be used here, are streamed
    record by record. Token counts with a tokenizer are cached per file, keyed by the tokenizer file's
    SHA-256. Both ways give the same figures, in the same order.
    """
    from kiki_bot import index

    tok_file = tokenizer_file(project.base_model_path[adapter.name])
    tokenizer = _tokenizer(tok_file) if tok_file else None
    allow = frozenset(project.config.policy.allowed_licenses)
    out = DataFigures(
        {}, "tokenizer" if tokenizer else "estimate", adapter.base_model.id if tokenizer else None
    )
    sources = project.adapter_sources(adapter)
    with index.opened(project, [s.id for s in sources]) as ix:
        excluded: dict[int, list[tuple]] = {}
        tok_key = None
        if ix is not None:
            wanted: dict[str, set[int]] = {}
            for sid, idx in purged:
                wanted.setdefault(sid, set()).add(idx)
            excluded = ix.lookup(wanted, blocklist)
            if tokenizer is not None:
                with open(tok_file, "rb") as fh:  # type: ignore[arg-type]
                    tok_key = hashlib.file_digest(fh, "sha256").hexdigest()
        for source in sources:
            figs = out.sources[source.id] = SourceFigures()
            crawled = source.category.value == "2.3"
            pending: list[str] = []
            files = ix.files[source.id] if ix is not None else data_files(project.data_dir / source.id)
            for f in files:
                if isinstance(f, index.IndexedFile) and f.served and not f.bad_text:
                    _from_index(
                        ix,
                        f,
                        source.id,
                        figs,
                        out,
                        excluded.get(f.fid, []),
                        purged,
                        allow,
                        crawled,  # type: ignore[arg-type]
                        tokenizer,
                        tok_key,
                    )
                    continue
                path = f.path if isinstance(f, index.IndexedFile) else f
                for rec in index.stream_file(path, source.id):
                    if rec.key in purged or rec.content_hash in blocklist:
                        why = (
                            "was purged (removal ledger)"
                            if rec.key in purged
                            else (f"has the content {rec.content_hash[:12]}… of a removed record")
                        )
                        out.reappeared.append(
                            f"{rec.file}:{rec.line} (record {source.id}#{rec.provenance.record_idx} {why})"
                        )
                        continue
                    _check_licence(rec, allow, out.licence_violations)
                    text = record_text(rec.payload)
                    size = len(text.encode("utf-8"))
                    _add(figs, rec, size, crawled)
                    if tokenizer is None:
                        figs.tokens += -(-size // ESTIMATE_BYTES_PER_TOKEN)
                    else:
                        pending.append(text)
                        if len(pending) >= TOKEN_BATCH:
                            figs.tokens += _count(tokenizer, pending)
            if pending:
                figs.tokens += _count(tokenizer, pending)
    return out


def _from_index(
    ix,
    f,
    sid: str,
    figs: SourceFigures,
    out: DataFigures,
    excluded: list[tuple],
    purged: set[tuple[str, int]],
    allow: frozenset[str],
    crawled: bool,
    tokenizer,
    tok_key: str | None,
) -> None:
    """One indexed file's share of the figures: its aggregates, minus the excluded records."""
    for rid, off, _length, idx, ch in excluded:
        why = (
            "was purged (removal ledger)"
            if (sid, idx) in purged
            else (f"has the content {ch.hex()[:12]}… of a removed record")
        )
        out.reappeared.append(f"{f.path}:{f.locate(rid, off)[0]} (record {sid}#{idx} {why})")
    skip = [row[0] for row in excluded]
    agg = ix.file_figures(f, skip)
    refused = [lic for lic in agg.licenses if not licences.allowed(lic, allow)]
    if refused:
        for rid, off, lic in ix.licence_rows(f, refused, skip):
            out.licence_violations.append(
                f"{f.path}:{f.locate(rid, off)[0]}: _provenance.license {lic!r} is not satisfiable by "
                f"the allow-list ({', '.join(sorted(allow))})"
            )
    if agg.n:
        figs.records += agg.n
        figs.bytes += agg.tb
        first, last = dt.date.fromordinal(agg.min_day), dt.date.fromordinal(agg.max_day)  # type: ignore[arg-type]
        figs.first_access = first if figs.first_access is None else min(figs.first_access, first)
        figs.last_access = last if figs.last_access is None else max(figs.last_access, last)
        figs.no_origin += agg.no_origin
        for lic, n in agg.licenses.items():
            figs.licenses[lic] += n
        if crawled:
            for dom, size in agg.domains.items():
                figs.domain_bytes[dom] += size
    if tokenizer is None:
        figs.tokens += agg.tok
        return
    total = ix.tokens(f, tok_key)
    if total is None:
        total, texts = 0, []
        for rec in iter_file(f.path):
            texts.append(record_text(rec.payload))
            if len(texts) >= TOKEN_BATCH:
                total += _count(tokenizer, texts)
        total += _count(tokenizer, texts) if texts else 0
        ix.set_tokens(f, tok_key, total)
    if excluded:
        total -= _count(
            tokenizer,
            [record_text(ix.read_record(f, rid, off, length).payload) for rid, off, length, _, _ in excluded],
        )
    figs.tokens += total


def _count(tokenizer, texts: list[str]) -> int:
    n = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    texts.clear()
    return n


def _check_licence(rec: Record, allow: frozenset[str], violations: list[str]) -> None:
    expr = rec.provenance.license
    if not licences.allowed(expr, allow):
        violations.append(f"{rec.file}:{rec.line}: _provenance.license {expr!r} is not satisfiable by "
                          f"the allow-list ({', '.join(sorted(allow))})")


def _add(figs: SourceFigures, rec: Record, size: int, crawled: bool) -> None:
    """Count one record; `size` is the UTF-8 length of its training text (what "content size" means here)."""
    figs.records += 1
    figs.bytes += size
    day = rec.provenance.access_date
    figs.first_access = day if figs.first_access is None else min(figs.first_access, day)
    figs.last_access = day if figs.last_access is None else max(figs.last_access, day)
    figs.licenses[rec.provenance.license] += 1
    origin = rec.provenance.origin
    if origin is None:
        figs.no_origin += 1
    elif crawled and (domain := registrable_domain(origin)):
        figs.domain_bytes[domain] += size


def merged_domains(figures: Iterable[SourceFigures]) -> Counter[str]:
    total: Counter[str] = Counter()
    for f in figures:
        total.update(f.domain_bytes)
    return total
