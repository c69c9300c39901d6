"""Purging a request's records from the data: the ledger entry first, then each file rewritten atomically.

The `purged` ledger entry is the write-ahead log: once it is appended, the records it names must go, and a
run that finds it (after a crash, or a repeat) only finishes the rewrite. A data file is replaced by a copy
of its kept byte ranges (never re-serialised, so kept records stay byte-identical), written beside it and
renamed over it, so at any instant it is either its old or its new version.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from collections.abc import Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from pathlib import Path

from kiki_bot import ledger, manifests
from kiki_bot.project import Project
from kiki_bot.records import data_files
from kiki_bot.storage import atomic_writer, project_lock, write_text

Triple = tuple[str, int, str]  # (source, record_idx, content_hash), as in a `purged` ledger entry
CHUNK = 1 << 20  # bytes per read when the kernel cannot copy file to file
# copy_file_range errors that mean "not here" (old kernel, file system, sandbox) rather than a failed copy
NO_KERNEL_COPY = {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


@dataclass(frozen=True)
class FileCut:
    """The (offset, length) byte ranges to drop from one data file, and the file's identity when planned
    (inode, size, mtime) so that a plan applied to a file that changed since, e.g. twice, cuts nothing."""

    source: str
    name: str
    stamp: tuple[int, int, int]
    drops: tuple[tuple[int, int], ...]
    # the manifest entry (sha256, bytes, records) the file will have once cut, computed by `plan` from the
    # file as planned (when the provenance index serves it; else None)
    expected: tuple[str, int, int] | None = None


@dataclass(frozen=True)
class PurgePlan:
    """Every file to rewrite and every record to remove, in source, file and line order."""

    cuts: tuple[FileCut, ...]
    records: tuple[Triple, ...]

    @property
    def sources(self) -> list[str]:
        return sorted({cut.source for cut in self.cuts})


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def plan(
    project: Project, keys: AbstractSet[tuple[str, int]], hashes: AbstractSet[str] = frozenset()
) -> PurgePlan:
    """Find the records whose (source, record_idx) is in `keys` or whose content hash is in `hashes`,
    in the sources that can hold one (every source when matching by hash).

    Byte ranges come from the provenance index (refreshed and verified first; see `kiki_bot.index`), and
    each cut is noted there so the rewritten files' rows are derived rather than parsed again. Files the
    index does not serve, or every file when it cannot be used, are streamed as before."""
    from kiki_bot import index

    scan = sorted({source for source, _ in keys} | (set(project.sources) if hashes else set()))
    wanted = {source: {i for s, i in keys if s == source} for source in scan}
    cuts: list[FileCut] = []
    records: list[Triple] = []
    with index.opened(project, scan) as ix:
        if ix is None:
            for source in scan:
                for path in data_files(project.data_dir / source):
                    _plan_stream(path, source, wanted[source], hashes, cuts, records)
            return PurgePlan(tuple(cuts), tuple(records))
        found = ix.lookup(wanted, hashes)
        noted = [(f, found[f.fid]) for source in scan for f in ix.files[source] if f.fid in found]
        ranges = {
            f.fid: tuple(f.locate(rid, off)[1:] + (length,) for rid, off, length, _, _ in rows)
            for f, rows in noted
        }
        expected = ix.note_cuts([(f, [row[0] for row in rows], ranges[f.fid]) for f, rows in noted])
        for source in scan:
            for f in ix.files[source]:
                if not f.served:
                    _plan_stream(f.path, source, wanted[source], hashes, cuts, records)
                elif f.fid in found:
                    rows = found[f.fid]
                    sha = expected.get(f.fid)  # type: ignore[arg-type]
                    cuts.append(
                        FileCut(
                            source,
                            f.path.name,
                            f.stamp,
                            ranges[f.fid],  # type: ignore[arg-type]
                            sha and (*sha, f.n - len(rows)),
                        )
                    )
                    records += [(source, idx, ch.hex()) for _, _, _, idx, ch in rows]
    return PurgePlan(tuple(cuts), tuple(records))


def _plan_stream(
    path: Path, source: str, keys: AbstractSet[int], hashes: AbstractSet[str], cuts: list, records: list
) -> None:
    """Plan one file by parsing every record (a file the index does not serve)."""
    from kiki_bot.index import stream_file

    stamp = _stamp(path.stat())
    hits = [
        r for r in stream_file(path, source) if r.provenance.record_idx in keys or r.content_hash in hashes
    ]
    if hits:
        cuts.append(FileCut(source, path.name, stamp, tuple((r.offset, r.length) for r in hits)))
        records += [(*r.key, r.content_hash) for r in hits]


def _copy(src: int, dst: int, offset: int, count: int) -> None:
    """Append `count` bytes of `src` from `offset` to `dst`: in the kernel when it can (copy_file_range: no
    user-space buffer, shared extents on CoW file systems), else in CHUNK-sized reads."""
    kernel = hasattr(os, "copy_file_range")
    end = offset + count
    while offset < end:
        try:
            if kernel:
                done = os.copy_file_range(src, dst, end - offset, offset)
            else:
                done = os.write(dst, os.pread(src, min(CHUNK, end - offset), offset))
        except OSError as exc:
            if not kernel or exc.errno not in NO_KERNEL_COPY:
                raise
            done = 0
        if done:
            offset += done
        elif kernel:
            kernel = False  # refused, or 0 bytes (how some file systems say "not here"): read instead
        else:
            raise EOFError(f"source ended at byte {offset}, {end - offset} bytes before the planned end")


def _rewrite(path: Path, cut: FileCut) -> bool:
    """Swap in a copy of the kept ranges; False (nothing written) when the file is not the one planned."""
    with open(path, "rb") as src:
        st = os.fstat(src.fileno())
        if _stamp(st) != cut.stamp:
            return False
        with atomic_writer(path) as dst:
            os.fchmod(dst.fileno(), stat.S_IMODE(st.st_mode))
            pos = 0
            for offset, length in (*cut.drops, (st.st_size, 0)):
                _copy(src.fileno(), dst.fileno(), pos, offset - pos)
                pos = offset + length
    return True


def _update_manifest(source_dir: Path, rewritten: list[FileCut]) -> None:
    """Update only the rewritten files' entries, so a drift elsewhere in the source stays visible. The entry
    `plan` predicted from the exact bytes it planned is used as is; only files without one are read again."""
    current = manifests.load(source_dir)
    if current is None:
        manifests.refresh(source_dir)
        return
    fresh = {cut.name: manifests.FileEntry(sha256=cut.expected[0], bytes=cut.expected[1], records=cut.expected[2])
             if cut.expected else manifests.describe_file(source_dir / cut.name) for cut in rewritten}
    write_text(source_dir / manifests.MANIFEST, manifests.render({**current.files, **fresh}))


def apply(project: Project, plan: PurgePlan) -> list[Path]:
    """Rewrite every planned file without its dropped ranges, then its source's manifest; returns the files
    rewritten. A file that changed since it was planned (already purged, say) is left as it is."""
    rewritten: list[Path] = []
    for source, cuts in groupby(plan.cuts, key=attrgetter("source")):
        source_dir = project.data_dir / source
        done = [cut for cut in cuts if _rewrite(source_dir / cut.name, cut)]
        if done:
            _update_manifest(source_dir, done)
            rewritten += [source_dir / cut.name for cut in done]
    return rewritten


def _finish(project: Project, entry: ledger.Entry) -> None:
    """Complete a purge whose ledger entry exists. Its records are re-found by key alone: the entry lists
    every record the first run found, and re-matching their hashes would also take identical copies that
    run kept. A crash may also have left temp files, and a manifest that lags behind a rewritten file
    (which one is not recorded), so the temp files go and those sources' manifests are redone."""
    records = entry.records or []
    apply(project, plan(project, {(source, idx) for source, idx, _ in records}))
    for source in sorted({source for source, _, _ in records}):
        source_dir = project.data_dir / source
        for orphan in source_dir.glob(".*.tmp"):  # atomic_writer's temp files; the project lock is ours
            orphan.unlink()
        manifests.refresh(source_dir)


def purge(
    project: Project,
    request_id: str,
    issue: int | None,
    keys: AbstractSet[tuple[str, int]],
    hashes: AbstractSet[str],
    adapters: Collection[str],
    actor: str,
    at: dt.datetime,
) -> list[Triple]:
    """Remove one approved request's records: ledger entry first, then the data. Run again (after a crash,
    or not) it finishes the purge its entry records, whatever `keys` and `hashes` say, and returns the same
    (source, record_idx, content_hash) triples."""
    with project_lock(project.root):
        entry = ledger.find(ledger.read(project.ledger_path), "purged", request_id)
        if entry is None:
            todo = plan(project, keys, hashes)
            entry = ledger.append(
                project.ledger_path,
                "purged",
                {"id": request_id, "issue": issue},
                actor,
                at,
                records=list(todo.records),
                adapters=sorted(adapters),
            )
            apply(project, todo)
        else:
            _finish(project, entry)
        return list(entry.records or [])
