"""Selectors against per-record provenance, per the matching table of DESIGN.md section 3.

Comparisons are literal: lower-cased logins, repository names and hosts; exact paths; prefixes only at a
`/` (or, for domains, `.`) boundary. Selectors are compiled once into dict lookups, so judging a record
costs a few hash look-ups per provenance field (one per path depth / host label), not one per selector.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kiki_bot.core.selectors import (
    AccountSelector,
    DomainSelector,
    HfDatasetSelector,
    PathSelector,
    RecordSelector,
    RepositorySelector,
    Selector,
    Sha256Selector,
    UrlSelector,
    github_file_of,
    github_identity,
    hf_dataset_of,
    origin_url,
    split_url,
)
from kiki_bot.core.provenance import Provenance

Missing = Literal["github_identity", "path", "origin"]
"""Provenance a record lacks so that some selector kind of the request cannot judge it."""


class RecordLike(Protocol):
    provenance: Provenance
    content_hash: str


def _slash_prefixes(path: str) -> list[str]:
    """Every `p` such that `path` equals `p` (ignoring trailing `/`) or lies below `p/`."""
    return [path.rstrip("/"), *_folders_above(path)]


def _folders_above(path_key: str) -> list[str]:
    """Every folder path `f` (no trailing `/`) that `path_key` lies strictly below (`f + "/"` starts it).

    The page itself is not among them: a folder covers its own page only by equality, query included.
    """
    found = []
    i = path_key.find("/")
    while i != -1:
        found.append(path_key[:i])
        i = path_key.find("/", i + 1)
    return found


def _host_suffixes(host: str) -> list[str]:
    """`a.b.c` → `a.b.c`, `b.c`, `c`: every host a `domain:` selector may name to cover it."""
    found = [host]
    i = host.find(".")
    while i != -1:
        found.append(host[i + 1 :])
        i = host.find(".", i + 1)
    return found


class Matcher:
    """A request's selectors compiled into lookup tables; `judge` finds the first selector matching a record."""

    def __init__(self, selectors: Sequence[Selector]) -> None:
        self.accounts: dict[str, int] = {}
        self.repos: dict[tuple[str, str], int] = {}
        self.paths: dict[tuple[str, str, str], int] = {}
        self.urls: dict[tuple[str, str, str], int] = {}
        self.url_prefixes: dict[tuple[str, str], int] = {}
        self.domains: dict[str, int] = {}
        self.datasets: dict[tuple[str, str], int] = {}
        self.records: dict[tuple[str, int], int] = {}
        self.hashes: dict[str, int] = {}
        for i, sel in enumerate(selectors):
            match sel:
                case AccountSelector():
                    self.accounts.setdefault(sel.owner.lower(), i)
                case RepositorySelector():
                    self.repos.setdefault((sel.owner.lower(), sel.repo.lower()), i)
                case PathSelector():
                    self.paths.setdefault((sel.owner.lower(), sel.repo.lower(), sel.path), i)
                case UrlSelector():
                    url = split_url(sel.url)
                    self.urls.setdefault(url.key, i)
                    if sel.prefix:
                        self.url_prefixes.setdefault((url.authority, url.path_key), i)
                case DomainSelector():
                    self.domains.setdefault(sel.host.lower(), i)
                case HfDatasetSelector():
                    self.datasets.setdefault((sel.org.lower(), sel.name.lower()), i)
                case RecordSelector():
                    self.records.setdefault((sel.source, sel.idx), i)
                case Sha256Selector():
                    self.hashes.setdefault(sel.digest.lower(), i)
        self.needs_github = bool(self.accounts or self.repos or self.paths)
        self.needs_origin = bool(self.urls or self.domains or self.datasets)

    def judge(
        self, prov: Provenance, content_hash: str, source_dataset: tuple[str, str] | None
    ) -> tuple[int | None, list[Missing]]:
        """(index of the first matching selector or None, provenance missing for some selector kind).

        `source_dataset` is `hf_dataset_of` the record's source URL (computed once per source).
        """
        hits: list[int | None] = [
            self.records.get((prov.source, prov.record_idx)),
            self.hashes.get(content_hash),
            self.hashes.get(prov.sha256) if prov.sha256 else None,
            self.datasets.get(source_dataset) if source_dataset else None,
        ]
        missing: list[Missing] = []
        url = origin_url(prov.origin) if self.needs_origin or (self.needs_github and not prov.repo) else None
        if self.needs_github:
            ident = github_identity(prov) if prov.repo else github_file_of(url)
            if ident is None:
                missing.append("github_identity")
            else:
                owner, repo, path = ident
                hits += [self.accounts.get(owner), self.repos.get((owner, repo))]
                if path is None:
                    if self.paths:
                        missing.append("path")
                elif self.paths:
                    hits += [self.paths.get((owner, repo, p)) for p in _slash_prefixes(path)]
        if self.needs_origin:
            if url is None:
                if self.urls or self.domains or (self.datasets and source_dataset is None):
                    missing.append("origin")
            else:
                hits.append(self.urls.get(url.key))
                if self.url_prefixes:
                    authority = url.authority
                    hits += [self.url_prefixes.get((authority, p)) for p in _folders_above(url.path_key)]
                if self.domains:
                    hits += [self.domains.get(h) for h in _host_suffixes(url.host)]
                if self.datasets and (dataset := hf_dataset_of(url)):
                    hits.append(self.datasets.get(dataset))
        found = [h for h in hits if h is not None]
        return (min(found) if found else None), missing


def matches(selector: Selector, prov: Provenance, content_hash: str, source_url: str | None) -> bool:
    """Whether one selector matches one record (`source_url`: the `url` of the record's source, if any).

    Compiles the selector on every call: for many records use `match_records`.
    """
    idx, _ = Matcher([selector]).judge(prov, content_hash, hf_dataset_of(origin_url(source_url)))
    return idx is not None


@dataclass(slots=True)
class MatchResult:
    """What a request matches.

    `matches`: one `(source, record_idx, selector_index)` per matched record, in input order; a record that
    several selectors match is listed once, with the lowest (first) selector index.
    `hashes`: the content hash of each match, in the same order (a purge removes exactly these pairs).
    `counts`: matched records per source; `scanned`: records seen per source.
    `uncovered`: per source, how many *unmatched* records lack the provenance that some selector kind of
    this request needs (`github_identity` for account/repository/path, `path` for path selectors when the
    record has a repository but no path, `origin` for url/domain, and for hf datasets when the source's
    URL is not a dataset): only a whole-source removal or a `record:`/`sha256:` selector reaches them.
    """

    matches: list[tuple[str, int, int]] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    scanned: Counter[str] = field(default_factory=Counter)
    uncovered: defaultdict[str, Counter[Missing]] = field(default_factory=lambda: defaultdict(Counter))


def match_records(
    selectors: Sequence[Selector], records: Iterable[RecordLike], source_urls: dict[str, str | None]
) -> MatchResult:
    """Stream records once against compiled selectors; `source_urls` maps source id to its `url` (or None)."""
    matcher = Matcher(selectors)
    datasets = {src: hf_dataset_of(origin_url(url)) for src, url in source_urls.items()}
    result = MatchResult()
    for rec in records:
        prov = rec.provenance
        result.scanned[prov.source] += 1
        idx, missing = matcher.judge(prov, rec.content_hash, datasets.get(prov.source))
        if idx is not None:
            result.matches.append((prov.source, prov.record_idx, idx))
            result.hashes.append(rec.content_hash)
            result.counts[prov.source] += 1
        elif missing:
            result.uncovered[prov.source].update(missing)
    return result
