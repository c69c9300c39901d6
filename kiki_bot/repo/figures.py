"""The card's figures, computed from the data in one streaming pass — never typed by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from kiki_bot.core.eligibility import Rule
from kiki_bot.core.errors import BadInput
# merged_domains: callers import the figures' names from here too
from kiki_bot.core.figuresmodel import ESTIMATE_BYTES_PER_TOKEN, DataFigures, SourceFigures, merged_domains  # noqa: F401
from kiki_bot.core.selectors import registrable_domain
from kiki_bot.repo.project import Adapter, Project
from kiki_bot.repo.records import Record, data_files, iter_file, iter_source_file, record_text

if TYPE_CHECKING:
    from kiki_bot.index.rows import Hit, IndexedFile
    from kiki_bot.index.store import Index

TOKEN_BATCH = 512


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


def compute(project: Project, adapter: Adapter, rule: Rule | None = None) -> DataFigures:
    """Every record of the adapter's sources, counted once: counts, tokens, dates, domains, licences, and
    what the eligibility `rule` (default: the licence policy alone) leaves out or refuses.

    Figures come from the provenance index (`kiki_bot.index`: refreshed and verified against the manifests
    first) as per-file aggregates; only the rows the rule does not simply use are looked up one by one.
    Files the index does not serve, or every file when it cannot be used here, are streamed record by
    record. Token counts with a tokenizer are cached per file, keyed by the tokenizer file's SHA-256. Both
    ways give the same figures, in the same order.
    """
    from kiki_bot.index import queries, store

    rule = rule or Rule(allowed=frozenset(project.config.policy.allowed_licenses))
    tok_file = tokenizer_file(project.base_model_path[adapter.name])
    tokenizer = _tokenizer(tok_file) if tok_file else None
    out = DataFigures(
        {}, "tokenizer" if tokenizer else "estimate", adapter.base_model.id if tokenizer else None
    )
    sources = project.adapter_sources(adapter)
    with store.opened(project, [s.id for s in sources]) as ix:
        removed: dict[int, list[Hit]] = {}
        tok_key = None
        if ix is not None:
            wanted: dict[str, set[int]] = {}
            for sid, idx in rule.purged:
                wanted.setdefault(sid, set()).add(idx)
            removed = queries.lookup(ix, wanted, rule.removed_hashes)
            if tokenizer is not None:
                with open(tok_file, "rb") as fh:  # type: ignore[arg-type]
                    tok_key = hashlib.file_digest(fh, "sha256").hexdigest()
        for source in sources:
            figs = out.sources[source.id] = SourceFigures()
            crawled = source.category.value == "2.3"
            pending: list[str] = []
            files = ix.files[source.id] if ix is not None else data_files(project.data_dir / source.id)
            for f in files:
                if ix is not None and f.served and not f.bad_text:
                    _from_index(ix, f, figs, out, removed.get(f.fid, []), rule, crawled, tokenizer, tok_key)
                    continue
                for rec in iter_source_file(f if ix is None else f.path, source.id):
                    verdict = rule.of_record(rec)
                    if verdict.removed:
                        out.reappeared.append(rule.note(rec, verdict))
                        continue
                    if verdict.refused:
                        out.refusals(verdict).append(rule.note(rec, verdict))
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
    ix: Index,
    f: IndexedFile,
    figs: SourceFigures,
    out: DataFigures,
    hits: list[Hit],
    rule: Rule,
    crawled: bool,
    tokenizer,
    tok_key: str | None,
) -> None:
    """One indexed file's share of the figures: its aggregates, minus the rows the rule leaves out."""
    from kiki_bot.index import queries

    judged = queries.judge(ix, f, rule, hits)
    for hit, verdict in judged.removed:
        out.reappeared.append(rule.removed_note(f.where(hit.rid, hit.off), verdict, f.source, hit.idx, hit.content_hash))
    for r in judged.refused:
        out.refusals(r.verdict).append(str(rule.refusal(f.where(r.rid, r.off), r.verdict, f.source, r.lic, r.host, r.day,
                                            r.notices)))
    agg = queries.file_figures(ix, f, judged.skip)
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
    total = queries.tokens(ix, f, tok_key)
    if total is None:
        total, texts = 0, []
        for rec in iter_file(f.path):
            texts.append(record_text(rec.payload))
            if len(texts) >= TOKEN_BATCH:
                total += _count(tokenizer, texts)
        total += _count(tokenizer, texts) if texts else 0
        queries.set_tokens(ix, f, tok_key, total)
    if judged.removed:
        total -= _count(tokenizer, [record_text(queries.read_record(f, hit).payload) for hit, _ in judged.removed])
    figs.tokens += total


def _count(tokenizer, texts: list[str]) -> int:
    n = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    texts.clear()
    return n


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
