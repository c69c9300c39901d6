"""Purging a request's records from the data: the ledger entry first, then each file rewritten atomically.

The `purged` ledger entry is the write-ahead log: once it is appended, the records it names must go, and a
run that finds it (after a crash, or a repeat) only finishes the rewrite. A data file is replaced by a copy
of its kept byte ranges (never re-serialised, so kept records stay byte-identical), hashed as it is copied
(its manifest entry needs the SHA-256: one pass reads each kept byte once), written beside it (around
the page cache where the system allows) and renamed over it, so at any instant it is either its old or
its new version. Several files are rewritten at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import mmap
import os
import stat
from array import array
from collections.abc import Collection
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from kiki_bot import console
from kiki_bot.core import ledger
from kiki_bot.core.errors import BadInput
from kiki_bot.repo import ledgerfile, manifests
from kiki_bot.repo.project import Project
from kiki_bot.repo.records import data_files, iter_source_file
from kiki_bot.repo.storage import atomic_writer, fsync_dir, project_lock, write_text

Triple = tuple[str, int, str]  # (source, record_idx, content_hash), as in a `purged` ledger entry
CHUNK = 1 << 20  # bytes per read and per write
# uncached writes are whole blocks from block-aligned memory (4 KiB also covers 512-byte devices)
BLOCK = 4096
DIRECT = getattr(os, "O_DIRECT", 0)  # Linux
# files rewritten at once: more than the 2 cores of a typical runner, so that the disk has writes in flight
# while other threads read and hash (a thread waiting on its writes or fsync leaves its core to another)
WORKERS = 4


@dataclass(frozen=True)
class FileCut:
    """The (offset, length) byte ranges to drop from one data file; the file's identity when planned
    (inode, size, mtime), so that a plan applied to a file that changed since (e.g. twice) cuts nothing;
    and how many records it keeps, for its manifest entry."""

    source: str
    name: str
    stamp: tuple[int, int, int]
    drops: tuple[tuple[int, int], ...]
    keeps: int
    # (file id, SHA-256 as indexed, row ids cut) when the provenance index served the plan: noted there
    # once the file is rewritten, so that its rows are derived rather than parsed again
    indexed: tuple[int, str, bytes] | None = None


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

    Byte ranges come from the provenance index (refreshed and verified first; see `kiki_bot.index`).
    Files the index does not serve, or every file when it cannot be used, are streamed."""
    from kiki_bot.index import queries, store
    from kiki_bot.index.rows import IndexedFile

    scan = sorted({source for source, _ in keys} | (set(project.sources) if hashes else set()))
    wanted = {source: {i for s, i in keys if s == source} for source in scan}
    cuts: list[FileCut] = []
    records: list[Triple] = []
    with store.opened(project, scan) as ix:
        found = queries.lookup(ix, wanted, hashes) if ix is not None else {}
        for source in scan:
            if ix is None:
                files = [IndexedFile(source, path) for path in data_files(project.data_dir / source)]
            else:
                files = ix.files[source]
            for f in files:
                if not f.served:
                    _plan_stream(f.path, source, wanted[source], hashes, cuts, records)
                elif hits := found.get(f.fid):  # type: ignore[arg-type]
                    drops = tuple((f.locate(h.rid, h.off)[1], h.length) for h in hits)
                    indexed = (f.fid, f.sha256, array("q", [h.rid for h in hits]).tobytes())
                    keeps = f.n - len(hits)
                    cuts.append(FileCut(source, f.path.name, f.stamp, drops, keeps, indexed))  # type: ignore[arg-type]
                    records += [(source, h.idx, h.content_hash) for h in hits]
    return PurgePlan(tuple(cuts), tuple(records))


def _plan_stream(
    path: Path, source: str, keys: AbstractSet[int], hashes: AbstractSet[str], cuts: list, records: list
) -> None:
    """Plan one file by parsing every record (a file the index does not serve)."""
    stamp, hits, total = _stamp(path.stat()), [], 0
    for r in iter_source_file(path, source):
        total += 1
        if r.provenance.record_idx in keys or r.content_hash in hashes:
            hits.append(r)
    if hits:
        drops = tuple((r.offset, r.length) for r in hits)
        cuts.append(FileCut(source, path.name, stamp, drops, total - len(hits)))
        records += [(*r.key, r.content_hash) for r in hits]


def _uncached(fd: int) -> None:
    """Write `fd` around the page cache where the system can (Linux O_DIRECT): a rewritten data file is not
    read again until the next training run, and skipping the cache halves the kernel's work per byte
    (bench/scale.py). Elsewhere, or where the file system refuses, the writes stay buffered."""
    if DIRECT:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | DIRECT)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except OSError as exc:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            if exc.errno != errno.EINVAL or not flags & DIRECT:
                raise
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~DIRECT)  # a device that wants larger blocks: buffered


def _rewrite(path: Path, cut: FileCut) -> manifests.FileEntry | None:
    """Swap in a copy of the kept ranges, hashed on the way; returns the file's new manifest entry, or None
    (nothing written) when the file is not the one planned. Kept bytes are gathered in a page-aligned
    buffer and written in whole CHUNKs (the tail zero-padded to whole blocks, then cut to its length), as
    uncached writes require."""
    with open(path, "rb", buffering=0) as src:
        st = os.fstat(src.fileno())
        if _stamp(st) != cut.stamp:
            return None
        digest, kept, fill = hashlib.sha256(), 0, 0
        view = memoryview(mmap.mmap(-1, CHUNK))  # page-aligned; unmapped with the last reference to it
        with atomic_writer(path, sync_dir=False) as dst:
            fd = dst.fileno()
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            _uncached(fd)
            pos = 0
            for offset, length in (*cut.drops, (st.st_size, 0)):
                src.seek(pos)
                while pos < offset:
                    got = src.readinto(view[fill : fill + min(CHUNK - fill, offset - pos)])
                    if not got:
                        raise EOFError(
                            f"{path} ended at byte {pos}, {offset - pos} bytes before the planned end"
                        )
                    digest.update(view[fill : fill + got])
                    fill, pos = fill + got, pos + got
                    if fill == CHUNK:
                        _write_all(fd, view)
                        kept, fill = kept + CHUNK, 0
                pos = offset + length
            if fill:
                padded = -(-fill // BLOCK) * BLOCK
                view[fill:padded] = bytes(padded - fill)
                _write_all(fd, view[:padded])
                kept += fill
                os.ftruncate(fd, kept)
    return manifests.FileEntry(sha256=digest.hexdigest(), bytes=kept, records=cut.keeps)


def _update_manifest(source_dir: Path, fresh: dict[str, manifests.FileEntry]) -> None:
    """Update only the rewritten files' entries, so that a drift elsewhere in the source stays visible."""
    current = manifests.load(source_dir)
    if current is None:
        manifests.refresh(source_dir)
        return
    write_text(source_dir / manifests.MANIFEST, manifests.render({**current.files, **fresh}))


def apply(project: Project, plan: PurgePlan) -> list[Path]:
    """Rewrite every planned file without its dropped ranges (a few at once, largest first), note the cuts
    in the provenance index, then update each source's manifest; returns the files rewritten. A file that
    changed since it was planned (already purged, say) is left as it is."""
    from kiki_bot.index import store

    def rewrite(cut: FileCut) -> manifests.FileEntry | None:
        return _rewrite(project.data_dir / cut.source / cut.name, cut)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool, \
            console.progress("rewriting data files", sum(cut.stamp[1] for cut in plan.cuts)) as advance:
        started = {cut: pool.submit(rewrite, cut) for cut in sorted(plan.cuts, key=lambda c: -c.stamp[1])}
        sizes = {future: cut.stamp[1] for cut, future in started.items()}
        for future in as_completed(sizes):
            advance(sizes[future])
    done = [(cut, entry) for cut in plan.cuts if (entry := started[cut].result()) is not None]
    store.note_cuts(
        project.root, [(*cut.indexed, entry.sha256, entry.bytes) for cut, entry in done if cut.indexed]
    )
    for source, group in groupby(done, key=lambda pair: pair[0].source):
        fsync_dir(project.data_dir / source)  # the renames, once per directory
        _update_manifest(project.data_dir / source, {cut.name: entry for cut, entry in group})
    return [project.data_dir / cut.source / cut.name for cut, _ in done]


def _within(todo: PurgePlan, approved: Collection[Triple], request_id: str) -> PurgePlan:
    """The plan, if it removes nothing but `approved` (source, record_idx, content_hash) triples: a key
    found twice, or found holding other content than at approval, is someone else's record."""
    allowed = {tuple(t) for t in approved}
    where = [(cut.source, cut.name) for cut in todo.cuts for _ in cut.drops]
    extra = [(rec, w) for rec, w in zip(todo.records, where, strict=True) if rec not in allowed]
    if extra:
        listed = "; ".join(f"{s}#{i} (content {h[:12]}…) in data/{s}/{name}" for (s, i, h), (_, name) in extra[:5])
        raise BadInput(f"purge of {request_id}", f"refused, nothing changed: the plan finds {len(extra)} record(s) "
                       f"that were not matched at approval: {listed}" + (" …" if len(extra) > 5 else ""))
    return todo


def _finish(project: Project, entry: ledger.Entry) -> None:
    """Complete a purge whose ledger entry exists. Its records are re-found by key alone: the entry lists
    every record the first run found, and re-matching their hashes would also take identical copies that
    run kept. A crash may also have left temp files, and a manifest that lags behind a rewritten file
    (which one is not recorded), so the temp files go and those sources' manifests are redone."""
    records = entry.records or []
    apply(project, _within(plan(project, {(source, idx) for source, idx, _ in records}), records, entry.request.id))
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
    approved: Collection[Triple] | None = None,
) -> list[Triple]:
    """Remove one approved request's records: ledger entry first, then the data. Run again (after a crash,
    or not) it finishes the purge its entry records, whatever `keys` and `hashes` say, and returns the same
    (source, record_idx, content_hash) triples. With `approved` (the pairs matched at approval), and always
    when finishing, a plan that finds any other record is refused with nothing written."""
    with project_lock(project.root):
        entry = ledger.find(ledgerfile.read(project.ledger_path), "purged", request_id)
        if entry is None:
            todo = plan(project, keys, hashes)
            if approved is not None:
                _within(todo, approved, request_id)
            entry, _ = ledgerfile.append_once(
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
