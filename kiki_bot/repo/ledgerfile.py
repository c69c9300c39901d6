"""The removal ledger on disk, `compliance/removals.jsonl`: its format, chain and rules are kiki_bot.core.ledger
(pure, from bytes); reading and writing the file are here. `append_once` is the only writer: every step
(a request, a decision, a purge, a release, a missed deadline) is appended once, under the project lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from kiki_bot.core import ledger
from kiki_bot.repo.storage import append_line, project_lock


def data(path: Path) -> bytes:
    """The ledger's bytes; a missing file is an empty ledger."""
    return path.read_bytes() if path.exists() else b""


def read(path: Path) -> list[ledger.Entry]:
    """Every entry in file order; BadInput names a line that is not an entry. The chain is `verify`'s job."""
    return ledger.parse(data(path), str(path))


def verify(path: Path, recorded: Mapping[str, tuple[int, str]] | None = None) -> list[ledger.Entry]:
    """The entries, with the chain and the heads the cards `recorded` checked (CheckFailed names the first
    problem: ledger.verified)."""
    return ledger.verified(data(path), str(path), recorded)


def append_once(
    path: Path, event: ledger.Event, request: ledger.RequestRef | dict[str, Any], actor: str, at: dt.datetime,
    same: Collection[str] = (), **fields: Any
) -> tuple[ledger.Entry, bool]:
    """`ledger.once` on the file: the request's `event` entry whose `same` fields equal these, found or
    appended durably: (entry, appended). Check and append happen under the project lock, so concurrent runs
    add it once; a broken chain is refused, not extended."""
    with project_lock(path.parent.parent):
        entry, new = ledger.once(verify(path), event, request, actor, at, str(path), same, **fields)
        if new:
            append_line(path, ledger.line(entry))
        return entry, new
