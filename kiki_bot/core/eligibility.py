"""The one rule that decides whether a record goes into an adapter's training set.

Training-set assembly, the card's figures (streamed or through the provenance index) and the index's
queries all ask this rule, so the card counts exactly what is trained on, and a record left out or refused
reads the same wherever it is found. Pure: the ledger's removals, the licence policy and the opt-out
evidence come in as values.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from kiki_bot.core import ledger, licences
from kiki_bot.core.errors import BadInput
from kiki_bot.core.selectors import origin_url


class Verdict(enum.Enum):
    """What the rule says of one record; asked in this order, the first that holds is the verdict."""

    PURGED = "purged"  # its (source, record_idx) was purged: left out (it should not be in the data)
    REAPPEARED = "reappeared"  # a removed record's content under another key: left out, flagged
    LICENCE = "licence"  # its licence is outside the policy's allow-list: the build refuses
    RESERVED = "reserved"  # its origin host had reserved its rights when it was obtained: the build refuses
    USED = "used"

    @property
    def removed(self) -> bool:
        """Left out of the set; the rest still builds."""
        return self in (Verdict.PURGED, Verdict.REAPPEARED)

    @property
    def refused(self) -> bool:
        """Stops the build: the data must be fixed first."""
        return self in (Verdict.LICENCE, Verdict.RESERVED)


class Reservations(Protocol):
    """The opt-out evidence (DESIGN.md section 8): which hosts reserved their rights, and when."""

    @property
    def hosts(self) -> AbstractSet[str]:
        """Every host with a reservation on record: only their records are asked about (the index
        looks them up by host)."""
        ...

    def reserved(self, host: str, day: dt.date) -> str | None:
        """Why `host` had reserved its rights for content obtained on `day` (signal, evidence), or None."""
        ...


class RecordLike(Protocol):
    """A parsed record (`records.Record`: repo/ imports core, not the reverse)."""

    provenance: Any
    content_hash: str
    file: Path
    line: int


def origin_host(origin: str | None) -> str | None:
    """The host a reservation is recorded for: the origin's normalised host (as matching compares it)."""
    url = origin_url(origin)
    return None if url is None else url.host


@dataclass(frozen=True)
class Rule:
    """The removals on record, the licence allow-list and the reservations, asked per record."""

    purged: AbstractSet[tuple[str, int]] = frozenset()
    removed_hashes: AbstractSet[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    reservations: Reservations | None = None
    _licences: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls, entries: list[ledger.Entry], allowed: AbstractSet[str], reservations: Reservations | None = None
    ) -> Rule:
        """The rule for the ledger's `entries` and the policy's licence allow-list."""
        return cls(ledger.purged_keys(entries), ledger.blocklist(entries), frozenset(allowed), reservations)

    @cached_property
    def reserved_hosts(self) -> frozenset[str]:
        return frozenset(self.reservations.hosts) if self.reservations is not None else frozenset()

    def licence_ok(self, expr: str) -> bool:
        ok = self._licences.get(expr)
        if ok is None:
            ok = self._licences[expr] = licences.allowed(expr, self.allowed)
        return ok

    def removal(self, source: str, idx: int, content_hash: str) -> Verdict | None:
        """PURGED or REAPPEARED when a removal on record covers the record, else None."""
        if (source, idx) in self.purged:
            return Verdict.PURGED
        return Verdict.REAPPEARED if content_hash in self.removed_hashes else None

    def reserved(self, host: str | None, day: dt.date) -> str | None:
        """Why the record's origin host had reserved its rights on its access `day`, or None."""
        if host is None or host not in self.reserved_hosts:
            return None
        return self.reservations.reserved(host, day)  # type: ignore[union-attr]

    def verdict(
        self, source: str, idx: int, content_hash: str, licence: str, origin: str | None, day: dt.date
    ) -> Verdict:
        removal = self.removal(source, idx, content_hash)
        if removal is not None:
            return removal
        if not self.licence_ok(licence):
            return Verdict.LICENCE
        if self.reserved_hosts and self.reserved(origin_host(origin), day):
            return Verdict.RESERVED
        return Verdict.USED

    def of_record(self, rec: RecordLike) -> Verdict:
        p = rec.provenance
        return self.verdict(p.source, p.record_idx, rec.content_hash, p.license, p.origin, p.access_date)

    # ------------------------------------------------------------ the one set of messages
    def removed_note(self, where: str, verdict: Verdict, source: str, idx: int, content_hash: str) -> str:
        """`file:line (record s#i why)`: a removed record found in the data."""
        why = (
            "was purged (removal ledger)"
            if verdict is Verdict.PURGED
            else f"has the content {content_hash[:12]}… of a removed record"
        )
        return f"{where} (record {source}#{idx} {why})"

    def refusal(self, where: str, verdict: Verdict, licence: str, host: str | None, day: dt.date) -> BadInput:
        """The error for a record the build refuses, at `where` (`file:line`)."""
        if verdict is Verdict.LICENCE:
            allow = ", ".join(sorted(self.allowed))
            return BadInput(where, f"_provenance.license {licence!r} is not satisfiable by the allow-list ({allow})")
        return BadInput(where, f"_provenance.origin: its host {host} had reserved its rights when the record was "
                        f"obtained ({day.isoformat()}): {self.reserved(host, day)}")

    def note(self, rec: RecordLike, verdict: Verdict) -> str:
        """What a record left out or refused is listed as."""
        if verdict.removed:
            p = rec.provenance
            return self.removed_note(f"{rec.file}:{rec.line}", verdict, p.source, p.record_idx, rec.content_hash)
        return str(self.refuse(rec, verdict))

    def refuse(self, rec: RecordLike, verdict: Verdict) -> BadInput:
        """The error for a record the build refuses."""
        p = rec.provenance
        return self.refusal(f"{rec.file}:{rec.line}", verdict, p.license, origin_host(p.origin), p.access_date)
