"""Matching through the index: each selector as one or two indexed equality or range look-ups, giving
exactly what `matching.match_records` gives over a stream of the same records (tests/test_index.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from kiki_bot.core.matching import Matcher, MatchResult
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
    hf_dataset_of,
    origin_url,
    split_url,
)
from kiki_bot.index.rows import LINE_BITS, NO_GH, NO_PATH, NO_URL, reverse_host, url_key
from kiki_bot.index.store import Index
from kiki_bot.repo.records import iter_source_file

_RANGE = "{0} >= ? AND {0} < ?"


def _queries(
    selectors: Sequence[Selector], sources: Sequence[str], datasets: dict[str, tuple[str, str] | None]
) -> tuple[list[tuple[str, tuple, int, str | None]], dict[str, int]]:
    """Each selector as indexed look-ups: (WHERE clause, parameters, selector index, source or None), and
    the sources that a Hub dataset selector takes whole (source → lowest selector index)."""
    out: list[tuple[str, tuple, int, str | None]] = []
    whole: dict[str, int] = {}
    for i, sel in enumerate(selectors):
        match sel:
            case AccountSelector():
                owner = sel.owner.lower()
                out.append((_RANGE.format("gkey"), (owner + "\0", owner + "\1"), i, None))
            case RepositorySelector():
                repo = f"{sel.owner.lower()}\0{sel.repo.lower()}"
                out.append(("gkey = ?", (repo,), i, None))
                out.append((_RANGE.format("gkey"), (repo + "\0", repo + "\1"), i, None))
            case PathSelector():
                path = f"{sel.owner.lower()}\0{sel.repo.lower()}\0{sel.path}"
                out.append(("gkey = ?", (path,), i, None))
                out.append((_RANGE.format("gkey"), (path + "/", path + "0"), i, None))
            case UrlSelector():
                url = split_url(sel.url)
                key = url_key(url.host, url.port, url.path_key)
                out.append(("ukey = ? AND query = ?", (key, url.query), i, None))
                if sel.prefix:  # pages whose path lies below the folder (its own page: only if equal)
                    out.append((_RANGE.format("ukey"), (key + "/", key + "0"), i, None))
            case DomainSelector():
                rev = reverse_host(sel.host.lower())
                out.append((_RANGE.format("ukey"), (rev + "\0", rev + "\1"), i, None))
                out.append((_RANGE.format("ukey"), (rev + ".", rev + "/"), i, None))
            case HfDatasetSelector():
                dataset = (sel.org.lower(), sel.name.lower())
                out.append(("hf = ?", (f"{dataset[0]}/{dataset[1]}",), i, None))
                for s in sources:
                    if datasets.get(s) == dataset:
                        whole[s] = min(whole.get(s, i), i)
            case RecordSelector():
                out.append(("idx = ?", (sel.idx,), i, sel.source))
            case Sha256Selector():
                digest = bytes.fromhex(sel.digest)
                out.append(("substr(ch, 1, 8) = ? AND ch = ?", (digest[:8], digest), i, None))
                out.append(("substr(sha, 1, 8) = ? AND sha = ?", (digest[:8], digest), i, None))
    return out, whole


def match(
    ix: Index, sources: Sequence[str], selectors: Sequence[Selector], source_urls: dict[str, str | None]
) -> MatchResult:
    """`matching.match_records` over every record of `sources` (in that order), answered from the index:
    the same matches in the same order, counts, scanned and uncovered. Files the index does not serve are
    streamed through the same `Matcher`."""
    matcher = Matcher(selectors)
    datasets = {src: hf_dataset_of(origin_url(url)) for src, url in source_urls.items()}
    queries, whole = _queries(selectors, sources, datasets)
    best: dict[int, tuple[int, int, int, bytes]] = {}  # row id → (lowest selector, record_idx, flags, ch)
    for where, params, i, only in queries:
        rows = ix.conn.execute(f"SELECT id, idx, flags, ch FROM records WHERE {where}", params)
        for rid, idx, flags, ch in rows:
            f = ix.by_fid.get(rid >> LINE_BITS)
            if f is None or (only is not None and f.source != only):
                continue
            got = best.get(rid)
            if got is None or i < got[0]:
                best[rid] = (i, idx, flags, ch)
    per_file: dict[int, list[int]] = defaultdict(list)
    for rid in best:
        per_file[rid >> LINE_BITS].append(rid)
    needs_github = bool(matcher.accounts or matcher.repos or matcher.paths)
    result = MatchResult()
    for source in sources:
        needs_origin = bool(
            matcher.urls or matcher.domains or (matcher.datasets and datasets.get(source) is None)
        )
        whole_i = whole.get(source)
        for f in ix.files.get(source, ()):
            if not f.served:
                for rec in iter_source_file(f.path, source):
                    prov = rec.provenance
                    result.scanned[source] += 1
                    i, missing = matcher.judge(prov, rec.content_hash, datasets.get(source))
                    if i is not None:
                        result.matches.append((source, prov.record_idx, i))
                        result.hashes.append(rec.content_hash)
                        result.counts[source] += 1
                    elif missing:
                        result.uncovered[source].update(missing)
                continue
            if not f.n:
                continue
            result.scanned[source] += f.n
            if whole_i is not None:
                for rid, idx, ch in ix.conn.execute(
                    "SELECT id, idx, ch FROM records WHERE id BETWEEN ? AND ? ORDER BY id", (f.lo, f.hi)
                ):
                    got = best.get(rid)
                    result.matches.append((source, idx, whole_i if got is None else min(got[0], whole_i)))
                    result.hashes.append(ch.hex())
                result.counts[source] += f.n
                continue
            hits = sorted(per_file.get(f.fid, ()))  # type: ignore[arg-type]
            missing_gh = missing_path = missing_url = 0
            for rid in hits:
                i, idx, flags, ch = best[rid]
                result.matches.append((source, idx, i))
                result.hashes.append(ch.hex())
                missing_gh += flags & NO_GH
                missing_path += (flags & NO_PATH) >> 1
                missing_url += (flags & NO_URL) >> 2
            if hits:
                result.counts[source] += len(hits)
            left = {
                "github_identity": f.no_gh - missing_gh if needs_github else 0,
                "path": f.no_path - missing_path if matcher.paths else 0,
                "origin": f.no_url - missing_url if needs_origin else 0,
            }
            if any(left.values()):
                result.uncovered[source].update({k: v for k, v in left.items() if v})
    return result

