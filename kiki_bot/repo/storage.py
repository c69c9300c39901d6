"""Atomic file writes, the SHA-256 of files (streamed), and a project lock: a crash leaves either the old file
or the new one, never half.

Modes: a new file gets what `open()` would give it (0666 less the umask: the kernel applies the umask to
the temp file's creation mode), a rewritten file keeps its own mode (the temp file takes it before the
rename). `mkstemp`'s 0600 would make every card, manifest and workflow private to its writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> tuple[int, Path]:
    """A new temp file `.<name>.<random>.tmp` beside `path` (purge's orphan sweep knows the pattern), with
    the mode `path` should end up with."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    try:
        os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
    except FileNotFoundError:
        pass
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb", sync_dir: bool = True) -> Iterator[IO]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the old file stays.
    `sync_dir=False` leaves the directory's fsync to a caller that renames several files in it."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        if sync_dir:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def files_sha256(*paths: Path) -> str:
    """SHA-256 of the files' bytes one after the other, streamed: a run's training set is its train file
    then its valid file (DESIGN.md section 7), hashed as one."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def differing(files: Mapping[Path, bytes]) -> dict[Path, bytes]:
    """The files whose bytes on disk are not these: what writing them would change."""
    return {p: data for p, data in files.items() if not (p.is_file() and p.read_bytes() == data)}


def write_files(files: Mapping[Path, bytes]) -> list[Path]:
    """Write several files all or nothing, as far as a file system allows: every new content is staged and
    fsynced beside its file first, and only then renamed into place, so a failure while staging (a full
    disk, a directory in the way) changes no file. Files that already hold their content are not touched.
    Returns the paths written."""
    changed = differing(files)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in changed.items():
            fd, tmp = _temp_beside(path)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for directory in {path.parent for path in changed}:
        fsync_dir(directory)
    return list(changed)


def write_bytes(path: Path, data: bytes) -> bool:
    """Atomically write `data`; returns False (and touches nothing) when the file already holds it."""
    return bool(write_files({path: data}))


def write_text(path: Path, text: str) -> bool:
    return write_bytes(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line durably (the ledger is append-only; a torn last line is detected by verify)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def writer_lock(root: Path, dry_run: bool) -> contextlib.AbstractContextManager:
    """The project lock for a step that writes; a dry run writes nothing, not even the lock file."""
    return contextlib.nullcontext() if dry_run else project_lock(root)


_held = threading.local()  # lock files this thread holds: a nested project_lock must not deadlock on flock


@contextlib.contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """Serialise writers of one project (purge, render, release, ledger appends) across processes and threads.
    Re-entrant within a thread, so a step holding the lock may call one that takes it again."""
    lock_dir = root / ".kiki"
    lock_dir.mkdir(exist_ok=True)
    key = str((lock_dir / "lock").resolve())
    held = _held.__dict__.setdefault("paths", set())
    if key in held:
        yield
        return
    with open(key, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)
