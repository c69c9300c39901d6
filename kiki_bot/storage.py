"""Atomic file writes and a project lock: a crash leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb", sync_dir: bool = True) -> Iterator[IO]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the old file stays.
    `sync_dir=False` leaves the directory's fsync to a caller that renames several files in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def write_bytes(path: Path, data: bytes) -> bool:
    """Atomically write `data`; returns False (and touches nothing) when the file already holds it."""
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_writer(path) as fh:
        fh.write(data)
    return True


def write_text(path: Path, text: str) -> bool:
    return write_bytes(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line durably (the ledger is append-only; a torn last line is detected by verify)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


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
