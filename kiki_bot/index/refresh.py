"""Bringing the index up to date with the data files: verify, hash, parse (in worker processes when there
is much), merge, and derive the rows of files a purge cut (see the package docstring)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat as stat_mod
import time
from array import array
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from kiki_bot import console
from kiki_bot.core.errors import BadInput
from kiki_bot.index import rows
from kiki_bot.index.rows import COLUMNS, LINE_BITS, LINE_MASK, IndexedFile
from kiki_bot.index.schema import (
    FILE_COLS,
    INSERT,
    ROW_SQL,
    SECONDARY,
    add_aggregates,
    aggregates,
    delete,
    ensure_indexes,
    forget,
    insert_file,
    pack_drops,
    row_aggregates,
    set_stat,
    transaction,
    unpack_drops,
    view,
)
from kiki_bot.repo import manifests
from kiki_bot.repo.records import data_files, duplicate_key

RACY_NS = 2_000_000_000  # a stat taken within 2 s of the file's mtime/ctime is re-verified next time
PARALLEL_BYTES = 64 << 20  # parse in worker processes only when at least this much data needs parsing
BULK_FRACTION = 0.5  # rebuilding more than this share of the rows: drop the secondary indexes, then rebuild
BATCH = 20_000
CHUNK = 1 << 20


# ---------------------------------------------------------------- building one file's rows
def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash_file(path: Path, prefix: int | None = None) -> dict | None:
    """SHA-256 and size of a file, with the stat it had while read; None if it changed meanwhile.

    With `prefix`, also the SHA-256 of its first `prefix` bytes, how many lines they hold and whether
    they end a line: when they are what the index holds rows for, only the rest needs parsing."""
    try:
        verified = time.time_ns()
        st = os.stat(path)
        with open(path, "rb") as fh:
            if prefix is None or prefix > st.st_size:
                digest = hashlib.file_digest(fh, "sha256")
                out = {}
            else:
                digest, lines, left = hashlib.sha256(), 0, prefix
                last = b"\n"
                while left:
                    chunk = fh.read(min(CHUNK, left))
                    if not chunk:
                        return None
                    digest.update(chunk)
                    lines += chunk.count(b"\n")
                    left -= len(chunk)
                    last = chunk[-1:]
                out = {
                    "prefix_sha256": digest.hexdigest(),
                    "prefix_lines": lines,
                    "prefix_ends_line": last == b"\n",
                }
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
            size = fh.tell()
        if _stat_key(os.stat(path)) != _stat_key(st):
            return None
    except OSError:
        return None
    return {**out, "sha256": digest.hexdigest(), "bytes": size, "stat": _stat_key(st), "verified": verified}


def _build_shard(path: str, source: str, shard: str, start: tuple[int, int] | None = None) -> dict:
    """Parse one file (or, with `start`, its tail from that (offset, line)) into a shard database of its
    own: rows with ids = line numbers, no indexes, no journal. Runs in a worker process, or here.

    Returns the file's sha256 (None for a tail), size and stat, plus `bad` (a line `parse_line` refuses:
    no rows are usable) or `unusable` (a record the index cannot hold, e.g. an integer beyond 64 bits, or
    a file that changed while read: stream it)."""
    verified = time.time_ns()
    conn = sqlite3.connect(shard, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"CREATE TABLE rows {ROW_SQL}")
        conn.execute("BEGIN")
        st = os.stat(path)
        digest = hashlib.sha256() if start is None else None
        out: dict[str, Any] = {"bad": False, "unusable": False}
        parsed = rows.iter_rows(Path(path), source, digest, start or (0, 1))
        try:
            while batch := list(islice(parsed, BATCH)):
                conn.executemany(INSERT.replace("records", "rows"), batch)
        except BadInput:
            out["bad"] = True
            parsed.close()
            if digest is not None:
                with open(path, "rb") as fh:  # the bad state is remembered for these bytes
                    digest = hashlib.file_digest(fh, "sha256")
        conn.execute("COMMIT")
        if _stat_key(os.stat(path)) != _stat_key(st):
            return {"unusable": True}
        out.update(
            sha256=digest and digest.hexdigest(), bytes=st.st_size, stat=_stat_key(st), verified=verified
        )
        if not out["bad"]:
            out["agg"] = aggregates(conn, "rows")  # here, in the worker: the merge only adds them up
        return out
    except (OSError, ValueError, OverflowError, TypeError, RecursionError, sqlite3.Error):
        return {"unusable": True}
    finally:
        conn.close()



def _manifest(source_dir: Path) -> dict[str, manifests.FileEntry] | None:
    try:
        found = manifests.load(source_dir)
    except (BadInput, OSError):
        return None  # an unreadable manifest verifies nothing: every file of the source is streamed
    return None if found is None else found.files


def _derive(conn: sqlite3.Connection, row: sqlite3.Row, meta: dict) -> bool:
    """Apply a noted cut to a file's rows, if the file now has exactly the bytes the cut predicted."""
    fid = row["fid"]
    cut = conn.execute("SELECT * FROM pending WHERE fid = ?", (fid,)).fetchone()
    if (
        cut is None
        or cut["old_sha256"] != row["sha256"]
        or (cut["new_sha256"], cut["new_bytes"]) != (meta["sha256"], meta["bytes"])
    ):
        return False
    ids = array("q")
    ids.frombytes(cut["ids"])
    with transaction(conn):
        gone = []
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            gone += conn.execute(
                f"SELECT id, off, len, lic, dom, tb, day, flags FROM records WHERE id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
        if len(gone) != len(ids):
            conn.execute("DELETE FROM pending WHERE fid = ?", (fid,))
            return False
        conn.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
        drops = unpack_drops(row["drops"]) + [
            (rid & LINE_MASK, off, length) for rid, off, length, *_ in gone
        ]
        conn.execute(
            "UPDATE files SET sha256 = ?, bytes = ?, drops = ? WHERE fid = ?",
            (meta["sha256"], meta["bytes"], pack_drops(drops), fid),
        )
        set_stat(conn, fid, meta)
        for table in ("pending", "file_tokens"):
            conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
        add_aggregates(conn, fid, row_aggregates(r[3:] for r in gone), sign=-1)
    return True


def refresh(
    conn: sqlite3.Connection, kiki: Path, data_dir: Path, sources: list[str], known: set[str]
) -> dict[str, list[IndexedFile]]:
    """Bring the rows of `sources` up to date with the files on disk (see the module docstring)."""
    tmp = kiki / "index-tmp"
    if tmp.exists():  # shards of a killed build
        for p in tmp.iterdir():
            p.unlink()
    have = {(r["source"], r["name"]): r for r in conn.execute(f"SELECT {FILE_COLS} FROM files")}
    on_disk: dict[str, list[Path]] = {s: data_files(data_dir / s) for s in sources}
    wanted = {s: _manifest(data_dir / s) for s in sources}
    views: dict[str, list[IndexedFile]] = {s: [IndexedFile(s, p) for p in on_disk[s]] for s in sources}
    names = {s: {p.name for p in paths} for s, paths in on_disk.items()}
    stale = [
        r["fid"]
        for (s, name), r in have.items()
        if (s in names and name not in names[s]) or (s not in known and s not in names)
    ]
    if stale:
        with transaction(conn):
            for fid in stale:
                forget(conn, fid)
    fresh: set[tuple[str, str]] = set()
    to_hash: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None]] = []
    for s in sources:
        for f in views[s]:
            want = (wanted[s] or {}).get(f.path.name)
            row = have.get((s, f.path.name))
            if want is None:
                continue
            try:
                st = os.stat(f.path)
            except OSError:
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                continue
            if (
                row is not None
                and (row["sha256"], row["bytes"]) == (want.sha256, want.bytes)
                and tuple(row[k] for k in ("st_dev", "st_ino", "st_size", "st_mtime", "st_ctime"))
                == _stat_key(st)
                and max(st.st_mtime_ns, st.st_ctime_ns) < row["verified"] - RACY_NS
            ):
                fresh.add((s, f.path.name))
            else:
                to_hash.append((f, want, row))

    def hash_job(job: tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None]) -> dict | None:
        f, want, row = job
        same = row is not None and (row["sha256"], row["bytes"]) == (want.sha256, want.bytes)
        tail = (
            row is not None and not same and not row["bad"] and not row["drops"] and row["bytes"] < want.bytes
        )
        return _hash_file(f.path, row["bytes"] if tail else None)  # type: ignore[index]

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool, \
            console.progress("hashing data files", sum(want.bytes for _, want, _ in to_hash)) as advance:
        hashed = []
        for (_, want, _), meta in zip(to_hash, pool.map(hash_job, to_hash), strict=True):
            hashed.append(meta)
            advance(want.bytes)
    to_parse: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None, dict]] = []
    for (f, want, row), meta in zip(to_hash, hashed, strict=True):
        key = (f.source, f.path.name)
        if meta is None or (meta["sha256"], meta["bytes"]) != (want.sha256, want.bytes):
            if row is not None and row["fid"] not in stale:
                with transaction(conn):
                    forget(conn, row["fid"])  # rows of other bytes than those on disk: never served
            continue
        if row is not None and (row["sha256"], row["bytes"]) == (meta["sha256"], meta["bytes"]):
            with transaction(conn):
                set_stat(conn, row["fid"], meta)
            fresh.add(key)
        elif row is not None and _derive(conn, row, meta):
            fresh.add(key)
        else:
            to_parse.append((f, want, row, meta))
    if to_parse:
        _parse_files(conn, tmp, to_parse)
        fresh |= {(f.source, f.path.name) for f, _, _, _ in to_parse}
    ensure_indexes(conn)
    indexed = {
        (r["source"], r["name"]): r
        for r in conn.execute(
            f"SELECT {FILE_COLS} FROM files WHERE bad = 0 AND source IN ({','.join('?' * len(sources))})",
            sources,
        )
    }
    for s in sources:
        for i, f in enumerate(views[s]):
            key = (s, f.path.name)
            if key in indexed and key in fresh:
                views[s][i] = view(s, f.path, indexed[key])
    for s in sorted({f.source for f, _, _, _ in to_parse}):
        _refuse_duplicate_keys(conn, views[s], {f.path.name for f, _, _, _ in to_parse if f.source == s})
    return views


def _refuse_duplicate_keys(conn: sqlite3.Connection, files: list[IndexedFile], parsed: set[str]) -> None:
    """Refuse a record_idx held twice among the served files of one source. Checked when rows enter the
    index (parsed files are the only way a duplicate gets in; purges only take rows out), by one scan of
    the idx index; the parsed files are then forgotten, so every later refresh parses and refuses again
    until the data is fixed."""
    served = {f.fid: f for f in files if f.served}
    if not served:
        return
    fids = ",".join(str(fid) for fid in served)
    dup = conn.execute(
        f"SELECT idx FROM records INDEXED BY records_idx WHERE (id >> {LINE_BITS}) IN ({fids})"
        " GROUP BY idx HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if dup is None:
        return
    order = {f.fid: n for n, f in enumerate(files)}
    twins = sorted(
        conn.execute(f"SELECT id, off FROM records WHERE idx = ? AND (id >> {LINE_BITS}) IN ({fids})", (dup[0],)),
        key=lambda r: (order[r[0] >> LINE_BITS], r[0]),
    )[:2]
    where = [served[rid >> LINE_BITS].where(rid, off) for rid, off in twins]
    with transaction(conn):
        for f in served.values():
            if f.path.name in parsed:
                forget(conn, f.fid)  # type: ignore[arg-type]
    raise duplicate_key(files[0].source, dup[0], *where)


def _tail(row: sqlite3.Row | None, meta: dict) -> tuple[int, int] | None:
    """Where to start parsing when the file is the indexed one with lines appended: (offset, line)."""
    if row is None or meta.get("prefix_sha256") != row["sha256"] or not meta["prefix_ends_line"]:
        return None
    return row["bytes"], meta["prefix_lines"] + 1


def _parse_files(
    conn: sqlite3.Connection,
    tmp: Path,
    jobs: list[tuple[IndexedFile, manifests.FileEntry, sqlite3.Row | None, dict]],
) -> None:
    """Parse files whose rows are missing or stale (only the appended lines of a file that grew), in
    worker processes when there is much to parse; then merge each into the index, one transaction each."""
    tmp.mkdir(exist_ok=True)
    total = conn.execute("SELECT coalesce(sum(bytes), 0) FROM files").fetchone()[0]
    size = sum(want.bytes - (row["bytes"] if _tail(row, meta) else 0) for _, want, row, meta in jobs)
    if size >= (8 << 20) and size > BULK_FRACTION * max(total, size):
        for name in SECONDARY:  # much to insert: build the indexes afterwards, in one sorted pass each
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    tasks = [
        (f, want, row, meta, _tail(row, meta), tmp / f"shard-{n}.sqlite")
        for n, (f, want, row, meta) in enumerate(jobs)
    ]
    workers = min(os.cpu_count() or 1, len(tasks))
    with console.progress("indexing records", size) as advance:
        _parse_tasks(conn, tasks, workers if size >= PARALLEL_BYTES else 1, advance)


def _parse_tasks(conn: sqlite3.Connection, tasks: list[tuple], workers: int, advance: Any) -> None:
    """Parse each file (in worker processes when `workers` > 1) and merge it, advancing by its bytes parsed."""
    if workers > 1:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [
                pool.submit(_build_shard, str(f.path), f.source, str(shard), tail)
                for f, _, _, _, tail, shard in tasks
            ]
            for (f, want, row, seen, tail, shard), future in zip(tasks, futures, strict=True):
                try:
                    meta = future.result()
                except Exception:  # noqa: BLE001  a worker that died: that file is streamed instead
                    meta = {"unusable": True}
                _merge(conn, f, want, row, seen, tail, meta, shard)
                advance(want.bytes - (tail[0] if tail else 0))
        return
    for f, want, row, seen, tail, shard in tasks:
        _merge(conn, f, want, row, seen, tail, _build_shard(str(f.path), f.source, str(shard), tail), shard)
        advance(want.bytes - (tail[0] if tail else 0))


_SAME = " AND ".join(f"s.{c} IS r.{c}" for c in COLUMNS[3:])  # a row identical but for where it sits


def _merge(
    conn: sqlite3.Connection,
    f: IndexedFile,
    want: manifests.FileEntry,
    row: sqlite3.Row | None,
    seen: dict,
    tail: tuple[int, int] | None,
    meta: dict,
    shard: Path,
) -> None:
    """Put one parsed file (or its appended tail) into the index in one transaction. A file parsed again
    keeps its rows that did not change (only their offsets are corrected), so that an edit costs index
    work for the records it touched, not for the whole file. `seen` is what hashing the file found: a
    tail is used only if the file kept that stat while its tail was parsed."""
    try:
        ok = (
            not meta.get("unusable")
            and (meta["bytes"] == want.bytes)
            and (meta["sha256"] == want.sha256 if tail is None else meta["stat"] == seen["stat"])
        )
        if not ok or (tail is not None and meta["bad"]):
            if row is not None and (not ok or tail is not None):
                with transaction(conn):
                    forget(conn, row["fid"])
            if ok:  # a bad line in the tail: remember the whole file as bad
                meta = {**meta, "sha256": want.sha256}
                tail = row = None
            else:
                return
        keep = row is not None and not row["bad"] and not row["drops"] and not meta["bad"]
        sha = want.sha256
        conn.execute("ATTACH DATABASE ? AS shard", (str(shard),))
        try:
            with transaction(conn):
                if keep:
                    fid = row["fid"]  # type: ignore[index]
                    conn.execute(
                        "UPDATE files SET sha256 = ?, bytes = ?, bad = 0 WHERE fid = ?",
                        (sha, meta["bytes"], fid),
                    )
                    set_stat(conn, fid, meta)
                    for table in ("pending", "file_tokens"):
                        conn.execute(f"DELETE FROM {table} WHERE fid = ?", (fid,))
                else:
                    if row is not None:
                        forget(conn, row["fid"])
                    fid = insert_file(conn, f.source, f.path.name, {**meta, "sha256": sha})
                base = fid << LINE_BITS
                if meta["bad"]:
                    pass  # a file with a bad line serves no rows: it is streamed, which names the line
                elif keep and tail is None:
                    conn.execute(
                        f"DELETE FROM records AS r WHERE id BETWEEN ? AND ? AND NOT EXISTS"
                        f" (SELECT 1 FROM shard.rows s WHERE s.id = r.id - ? AND {_SAME})",
                        (base, base | LINE_MASK, base),
                    )
                    conn.execute(
                        "UPDATE records AS r SET off = s.off, len = s.len FROM shard.rows s WHERE r.id BETWEEN ? AND ?"
                        " AND s.id = r.id - ? AND (r.off != s.off OR r.len != s.len)",
                        (base, base | LINE_MASK, base),
                    )
                    conn.execute(
                        f"INSERT INTO records SELECT s.id + ?, {', '.join('s.' + c for c in COLUMNS[1:])} FROM shard.rows s"
                        " WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = s.id + ?)",
                        (base, base),
                    )
                else:
                    conn.execute(
                        f"INSERT INTO records SELECT id + ?, {', '.join(COLUMNS[1:])} FROM shard.rows",
                        (base,),
                    )
                if not meta["bad"]:
                    add_aggregates(conn, fid, meta["agg"], replace=tail is None)
        finally:
            conn.execute("DETACH DATABASE shard")
    finally:
        delete(shard)

