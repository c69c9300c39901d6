"""The one rule that decides whether a record goes into an adapter's training set.

Training-set assembly, the card's figures (streamed or through the provenance index) and the index's
queries all ask this rule, so the card counts exactly what is trained on, and a record left out or refused
reads the same wherever it is found. Pure: the ledger's removals, the licence policy and the opt-out
evidence come in as values; a record's licence notices (`licences.notices_in`) come with the record.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kiki_bot.core import ledger, licences
from kiki_bot.core.errors import BadInput
from kiki_bot.core.optouts import host_of


class Verdict(enum.Enum):
    """What the rule says of one record; asked in this order, the first that holds is the verdict."""

    PURGED = "purged"  # its (source, record_idx) was purged: left out (it should not be in the data)
    REAPPEARED = "reappeared"  # a removed record's content under another key: left out, flagged
    LICENCE = "licence"  # its licence is outside the policy's allow-list: the build refuses
    NOTICE = "notice"  # its content carries a licence notice its declared licence does not cover: refused too
    RESERVED = "reserved"  # its origin host had reserved its rights when it was obtained: the build refuses
    USED = "used"

    @property
    def removed(self) -> bool:
        """Left out of the set; the rest still builds."""
        return self in (Verdict.PURGED, Verdict.REAPPEARED)

    @property
    def refused(self) -> bool:
        """Stops the build: the data must be fixed first."""
        return self in (Verdict.LICENCE, Verdict.NOTICE, Verdict.RESERVED)


class Reservations(Protocol):
    """The opt-out evidence (DESIGN.md section 8): which hosts had reserved their rights against the
    collection of a source's records, and when (`trainset.rule` builds it from the stored evidence). A host
    is an origin's normalised authority (`optouts.host_of`: another port is another host), as checked."""

    def hosts(self, source: str) -> AbstractSet[str]:
        """Every host with a reservation on record for `source`: only their records are asked about (the
        index looks them up by host)."""
        ...

    def reserved(self, source: str, host: str, day: dt.date) -> str | None:
        """None, or the problem to report for a record of `source` from `host` obtained on `day`: which
        signal reserved the rights, and the evidence that shows it."""
        ...


class RecordLike(Protocol):
    """A parsed record (`records.Record`: repo/ imports core, not the reverse)."""

    provenance: Any
    content_hash: str
    notices: tuple[str, ...]  # the licence notices its content carries (`licences.notices_in`)
    file: Path
    line: int


@dataclass(frozen=True)
class Rule:
    """The removals on record, the licence allow-list (the declared licence must also cover the content's own
    licence notices) and the reservations, asked per record."""

    purged: AbstractSet[tuple[str, int]] = frozenset()
    removed_hashes: AbstractSet[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    reservations: Reservations | None = None
    _licences: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    _notices: dict[tuple[tuple[str, ...], str], list[str]] = field(default_factory=dict, compare=False, repr=False)
    _hosts: dict[str, AbstractSet[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls, entries: list[ledger.Entry], allowed: AbstractSet[str], reservations: Reservations | None = None
    ) -> Rule:
        """The rule for the ledger's `entries` and the policy's licence allow-list."""
        return cls(ledger.purged_keys(entries), ledger.blocklist(entries), frozenset(allowed), reservations)

    def reserved_hosts(self, source: str) -> AbstractSet[str]:
        if self.reservations is None:
            return frozenset()
        hosts = self._hosts.get(source)
        if hosts is None:
            hosts = self._hosts[source] = frozenset(self.reservations.hosts(source))
        return hosts

    def licence_ok(self, expr: str) -> bool:
        ok = self._licences.get(expr)
        if ok is None:
            ok = self._licences[expr] = licences.allowed(expr, self.allowed)
        return ok

    def uncovered(self, notices: tuple[str, ...], licence: str) -> list[str]:
        """The licence notices of a record's content that its declared `licence` does not cover."""
        if not notices:
            return []
        found = self._notices.get((notices, licence))
        if found is None:
            found = self._notices[(notices, licence)] = licences.uncovered(notices, licence)
        return found

    def removal(self, source: str, idx: int, content_hash: str) -> Verdict | None:
        """PURGED or REAPPEARED when a removal on record covers the record, else None."""
        if (source, idx) in self.purged:
            return Verdict.PURGED
        return Verdict.REAPPEARED if content_hash in self.removed_hashes else None

    def reserved(self, source: str, host: str | None, day: dt.date) -> str | None:
        """Why a record of `source` from `host` obtained on `day` is refused for a reservation, or None."""
        if host is None or host not in self.reserved_hosts(source):
            return None
        return self.reservations.reserved(source, host, day)  # type: ignore[union-attr]

    def verdict(
        self, source: str, idx: int, content_hash: str, licence: str, origin: str | None, day: dt.date,
        notices: tuple[str, ...] = (),
    ) -> Verdict:
        removal = self.removal(source, idx, content_hash)
        if removal is not None:
            return removal
        if not self.licence_ok(licence):
            return Verdict.LICENCE
        if self.uncovered(notices, licence):
            return Verdict.NOTICE
        if self.reservations is not None and self.reserved(source, host_of(origin), day):
            return Verdict.RESERVED
        return Verdict.USED

    def of_record(self, rec: RecordLike) -> Verdict:
        p = rec.provenance
        return self.verdict(p.source, p.record_idx, rec.content_hash, p.license, p.origin, p.access_date,
                            rec.notices)

    # ------------------------------------------------------------ the one set of messages
    def removed_note(self, where: str, verdict: Verdict, source: str, idx: int, content_hash: str) -> str:
        """`file:line (record s#i why)`: a removed record found in the data."""
        why = (
            "was purged (removal ledger)"
            if verdict is Verdict.PURGED
            else f"has the content {content_hash[:12]}… of a removed record"
        )
        return f"{where} (record {source}#{idx} {why})"

    def refusal(
        self, where: str, verdict: Verdict, source: str, licence: str, host: str | None, day: dt.date,
        notices: tuple[str, ...] = (),
    ) -> BadInput:
        """The error for a record the build refuses, at `where` (`file:line`); a reservation's problem is
        the evidence's own words (`Reservations.reserved`)."""
        if verdict is Verdict.LICENCE:
            allow = ", ".join(sorted(self.allowed))
            return BadInput(where, f"_provenance.license {licence!r} is not satisfiable by the allow-list ({allow})")
        if verdict is Verdict.NOTICE:
            found = " and ".join(self.uncovered(notices, licence))
            return BadInput(where, f"the content carries {found}, which its declared licence {licence} does not "
                            "cover: refused like a licence outside the policy (correct `_provenance.license` or "
                            "remove the record)")
        return BadInput(where, self.reserved(source, host, day) or "")

    def note(self, rec: RecordLike, verdict: Verdict) -> str:
        """What a record left out or refused is listed as."""
        if verdict.removed:
            p = rec.provenance
            return self.removed_note(f"{rec.file}:{rec.line}", verdict, p.source, p.record_idx, rec.content_hash)
        return str(self.refuse(rec, verdict))

    def refuse(self, rec: RecordLike, verdict: Verdict) -> BadInput:
        """The error for a record the build refuses."""
        p = rec.provenance
        where = f"{rec.file}:{rec.line}"
        return self.refusal(where, verdict, p.source, p.license, host_of(p.origin), p.access_date, rec.notices)
