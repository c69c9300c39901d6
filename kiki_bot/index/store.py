"""The open index callers use: locked, refreshed and verified for the sources they ask (see the package
docstring), or None when it cannot be used here and the files are to be streamed."""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from kiki_bot.core.errors import BadInput
from kiki_bot.index.refresh import refresh
from kiki_bot.index.rows import IndexedFile
from kiki_bot.index.schema import Rebuild, connect, delete, identity, index_path, transaction


class Index:
    """An open, locked and refreshed index: `files` lists every data file of the refreshed sources in
    stream order (sources as asked, files as `records.data_files` orders them)."""

    def __init__(self, conn: sqlite3.Connection, lock: Any, files: dict[str, list[IndexedFile]]) -> None:
        self.conn = conn
        self._lock = lock
        self.files = files
        self.by_fid = {f.fid: f for fs in files.values() for f in fs if f.fid is not None}

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._lock.release()

    def temp(self, name: str, cols: str, rows: Iterable[tuple]) -> None:
        """Fill the temporary table `name` (created on first use) with `rows`: a query's parameters."""
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols})")
        self.conn.execute(f"DELETE FROM temp.{name}")
        self.conn.executemany(
            f"INSERT INTO temp.{name} VALUES ({','.join('?' * (cols.count(',') + 1))})", rows
        )


def adopt(root: Path) -> None:
    """Bind an index file copied on purpose (a bench's scratch copy of a project) to its new inode.
    Never called by the bot itself: a copied index is otherwise rebuilt."""
    path = index_path(root)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'file'", (identity(path),))
    finally:
        conn.close()


def note_cuts(root: Path, cuts: Sequence[tuple[int, str, bytes, str, int]]) -> None:
    """Remember rewrites a purge made: (file id, SHA-256 as indexed, row ids cut, SHA-256 and size now)
    each, so that the next refresh derives those files' rows instead of parsing them again. Best effort:
    an index that cannot take the note just parses the files again."""
    path = index_path(root)
    if not cuts or not path.is_file():
        return
    try:
        lock = _Lock(root / ".kiki" / "index.lock")
    except OSError:
        return
    try:
        if not path.is_file():  # deleted meanwhile: a new index must not take notes about old file ids
            return
        conn = connect(path)
        try:
            with transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO pending (fid, old_sha256, ids, new_sha256, new_bytes)"
                    " VALUES (?, ?, ?, ?, ?)",
                    cuts,
                )
        finally:
            conn.close()
    except (sqlite3.Error, Rebuild, OSError):
        pass  # the refresh that finds the index unusable rebuilds it
    finally:
        lock.release()


@contextlib.contextmanager
def opened(project: Any, sources: Iterable[str]) -> Iterator[Index | None]:
    """The index of `project` (anything with `root`, `data_dir` and `sources`), refreshed for `sources`
    and locked while in use; None when it cannot be used here (callers then stream the files)."""
    ix = _open(project.root, project.data_dir, list(dict.fromkeys(sources)), set(project.sources))
    try:
        yield ix
    finally:
        if ix is not None:
            ix.close()


class _Lock:
    """`.kiki/index.lock`, exclusive across processes and threads (each thread opens the file itself, and
    flock excludes separate opens); taken again by the same thread (a caller of `opened` inside another's
    `with`), it just counts, so nesting cannot deadlock."""

    _local: ClassVar[threading.local] = threading.local()

    @property
    def held(self) -> dict[str, int]:
        if not hasattr(self._local, "held"):
            self._local.held = {}
        return self._local.held

    def __init__(self, path: Path) -> None:
        self.key = str(path.resolve())
        self.fh: Any = None
        if self.held.get(self.key):
            self.held[self.key] += 1
            return
        self.fh = open(path, "a+b")  # noqa: SIM115  held until release
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except BaseException:
            self.fh.close()
            raise
        self.held[self.key] = 1

    def release(self) -> None:
        self.held[self.key] -= 1
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _open(root: Path, data_dir: Path, sources: list[str], known: set[str]) -> Index | None:
    kiki = root / ".kiki"
    try:
        kiki.mkdir(exist_ok=True)
        lock = _Lock(kiki / "index.lock")
    except OSError:
        return None  # a read-only checkout: stream instead
    try:
        path = index_path(root)
        for _attempt in range(2):
            conn = None
            try:
                conn = connect(path)
                files = refresh(conn, kiki, data_dir, sources, known)
                return Index(conn, lock, files)
            except BadInput:  # the data is wrong (a duplicate key), not the index
                if conn is not None:
                    conn.close()
                raise
            except (sqlite3.DatabaseError, Rebuild):
                if conn is not None:
                    conn.close()
                delete(path)
            except OSError:  # no space, read-only, permissions: the files are streamed instead
                if conn is not None:
                    conn.close()
                break
    except BaseException:
        lock.release()
        raise
    lock.release()
    return None


