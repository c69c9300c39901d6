"""The append-only, hash-chained removal ledger `compliance/removals.jsonl` (DESIGN.md section 2).

Each line is the canonical JSON of one `Entry`. `hash` is the SHA-256 of the entry's canonical JSON
without `hash`, and `prev_hash` is the previous entry's `hash`, so editing, dropping or reordering any
past line breaks the chain at that line. The ledger keeps ids, logins and content hashes, never content,
e-mail addresses or names. Pure: entries are parsed and checked from bytes; `once` is the rule every step
that happens once follows, on a list of entries. The file itself is read and appended to in
kiki_bot.repo.ledgerfile (`append_once`, the one writer, under the project lock).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from kiki_bot.core.canonical import canonical_json, sha256_hex
from kiki_bot.core.errors import BadInput, CheckFailed, explain, key_name

GENESIS = "0" * 64
Event = Literal["requested", "approved", "rejected", "purged", "released", "deadline_missed"]
Status = Literal["requested", "approved", "rejected", "purged", "released"]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
# `upstream:<name>`: a request the bot filed for an upstream opt-out list or dataset revision (and approved, by policy).
Login = Annotated[str, Field(pattern=r"^(private|upstream:[a-z0-9][a-z0-9._-]{0,38}|[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?)$")]
RecordTriple = tuple[Annotated[str, Field(min_length=1)], Annotated[int, Field(ge=0)], Hex64]

# Event-specific fields: (required, optional). Every other event field must be absent.
EVENT_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "requested": (frozenset({"selectors", "body_sha256", "deadline", "adapters"}), frozenset()),
    "approved": (frozenset(), frozenset({"reason"})),
    "rejected": (frozenset(), frozenset({"reason"})),
    "purged": (frozenset({"records", "adapters"}), frozenset()),
    "released": (frozenset({"adapter", "version", "train_sha256", "adapter_sha256"}), frozenset()),
    "deadline_missed": (frozenset({"adapter", "fallback"}), frozenset()),
}
_ALL_EVENT_FIELDS = frozenset().union(*(req | opt for req, opt in EVENT_FIELDS.values()))


class RequestRef(BaseModel):
    """Which request an entry is about: `R-<issue>` for an issue, `P-<hex>` for a privately filed one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^(R-[1-9][0-9]*|P-[0-9a-f]{6,64})$")
    issue: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _id_matches_issue(self) -> RequestRef:
        if not (self.id == f"R-{self.issue}" if self.issue is not None else self.id.startswith("P-")):
            raise ValueError(
                "`id` must be R-<issue> for an issue and P-<hex> (issue null) for a private request"
            )
        return self


class Entry(BaseModel):
    """One ledger line. Common fields first; the rest depend on `event` (see EVENT_FIELDS):

    requested: selectors (normalised), body_sha256 (of the triaged body), deadline, adapters (matched);
    approved / rejected: reason (optional, public: no personal data); purged: records
    ([source, record_idx, content_hash]) and adapters (to retrain); released: adapter, version (a published
    version without the records), train_sha256 (its training set: train then valid file) and adapter_sha256
    (its weights file); deadline_missed: adapter, fallback (what was applied to its Hub repo).
    `at` is when the event happened; for `requested`, when the request was opened (issue creation time).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    prev_hash: Hex64
    hash: Hex64
    event: Event
    request: RequestRef
    at: UtcTime
    actor: Login

    selectors: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    body_sha256: Hex64 | None = None
    deadline: UtcTime | None = None
    adapters: list[Annotated[str, Field(min_length=1)]] | None = None
    reason: str | None = None
    records: list[RecordTriple] | None = None
    adapter: str | None = Field(default=None, min_length=1)
    version: str | None = Field(default=None, min_length=1)
    fallback: Literal["gate", "private", "none"] | None = None
    train_sha256: Hex64 | None = None
    adapter_sha256: Hex64 | None = None

    @model_validator(mode="after")
    def _fields_fit_event(self) -> Entry:
        required, optional = EVENT_FIELDS[self.event]
        present = {name for name in _ALL_EVENT_FIELDS if getattr(self, name) is not None}
        if missing := sorted(required - present):
            raise ValueError(f"`{self.event}` entry needs {', '.join(missing)}")
        if extra := sorted(present - required - optional):
            raise ValueError(f"{', '.join(extra)} not allowed in a `{self.event}` entry")
        return self

    def as_json(self) -> dict[str, Any]:
        """The JSON object written to the ledger (absent event fields omitted)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}

    def event_fields(self) -> dict[str, Any]:
        """The event-specific fields, as `append` takes them: the same step appended again elsewhere."""
        return {k: v for k, v in self.as_json().items() if k in _ALL_EVENT_FIELDS}


def entry_hash(obj: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({k: v for k, v in obj.items() if k != "hash"}))


class _Bad(Exception):
    """A line that is not an entry; `parse` turns it into BadInput, `verified` into CheckFailed."""


def _split(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without newline, ended by a newline) for each line."""
    *lines, last = data.split(b"\n")  # `last` is empty when the data ends with a newline
    for no, raw in enumerate(lines, 1):
        yield no, raw, True
    if last:
        yield len(lines) + 1, last, False


def _parse(raw: bytes, complete: bool) -> tuple[dict[str, Any], Entry]:
    if not complete:
        raise _Bad("truncated last line (no newline at the end: an interrupted append)")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise _Bad(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _Bad("expected a JSON object")
    try:
        return obj, Entry.model_validate(obj)
    except ValidationError as exc:
        raise _Bad(f"not a valid ledger entry ({_problems(exc)})") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{key_name(loc) or 'entry'}: {msg}" for loc, msg in explain(Entry, exc.errors(), "json"))


def parse(data: bytes, where: str) -> list[Entry]:
    """Every entry of a ledger's bytes in order (no bytes: an empty ledger); `where` names it (a path,
    `branch:path`). Refuses a line that is not an entry, a torn last line included; the chain itself is
    `verified`'s job."""
    entries = []
    for no, raw, complete in _split(data):
        try:
            entries.append(_parse(raw, complete)[1])
        except _Bad as bad:
            raise BadInput(f"{where}:{no}", str(bad)) from None
    return entries


def verified(data: bytes, where: str, recorded: Mapping[str, tuple[int, str]] | None = None) -> list[Entry]:
    """Every entry of a ledger's bytes with the chain checked (hashes, canonical lines, seq, prev_hash):
    CheckFailed names the first bad line (line number, expected seq) and why. `where` names the ledger (a
    path, `branch:path`). Then, for each card (name → the `(ledger_seq, ledger_hash)` it recorded),
    CheckFailed if the ledger no longer holds that head."""
    prev_hash, entries = GENESIS, []
    for no, raw, complete in _split(data):
        expected = len(entries) + 1
        try:
            obj, entry = _parse(raw, complete)
            if obj["hash"] != entry_hash(obj):
                raise _Bad("hash mismatch: the entry was changed after it was written")
            if raw != canonical_json(obj):
                raise _Bad("not canonical JSON: the line was edited")
            if entry.seq != expected:
                raise _Bad(f"seq is {entry.seq}, expected {expected} (a gap, a repeat or a reordering)")
            if entry.prev_hash != prev_hash:
                raise _Bad("broken chain: prev_hash is not the previous entry's hash")
        except _Bad as bad:
            message = f"{where}:{no} (entry seq {expected}): {bad}"
            raise CheckFailed(f"removal ledger is broken at {message}", [message]) from None
        prev_hash = entry.hash
        entries.append(entry)
    problems = [p for name, (seq, hash_) in (recorded or {}).items()
                if (p := head_problem(entries, name, seq, hash_))]
    if problems:
        raise CheckFailed(f"removal ledger {where} lost what a card recorded: {problems[0]}", problems)
    return entries


def head(entries: list[Entry]) -> tuple[int, str]:
    """(seq, hash) of the last entry; (0, 64 zeros) for an empty ledger. A card records it when rendered."""
    return (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)


def head_problem(entries: list[Entry], name: str, seq: int, hash_: str) -> str | None:
    """Why the ledger does not hold the head `name` recorded (the ledger only grows, so it always should)."""
    if seq == 0:
        return None if hash_ == GENESIS else f"{name} records ledger seq 0 with a hash that is not zeros"
    if seq > len(entries):
        return (f"{name} records ledger entry seq {seq} ({hash_[:12]}…), but the ledger has only "
                f"{len(entries)} entries: entries were removed")
    if entries[seq - 1].hash != hash_:
        return (f"{name} records ledger entry seq {seq} as {hash_[:12]}…, but that entry is now "
                f"{entries[seq - 1].hash[:12]}…: the ledger was rewritten")
    return None


def chained(entries: list[Entry], event: Event, request: RequestRef | dict[str, Any], actor: str, at: dt.datetime,
            where: str, **fields: Any) -> Entry:
    """The entry that extends the verified `entries`: seq, prev_hash and hash filled in. Pure; `where` names
    the ledger in the error when the fields are not an entry."""
    body = {
        "seq": len(entries) + 1,
        "prev_hash": entries[-1].hash if entries else GENESIS,
        "hash": GENESIS,
        "event": event,
        "request": request,
        "actor": actor,
        "at": at,
        **fields,
    }
    try:
        draft = Entry.model_validate(body)
    except ValidationError as exc:
        raise BadInput(f"{where} (new `{event}` entry)", _problems(exc)) from None
    return draft.model_copy(update={"hash": entry_hash(draft.as_json())})


def line(entry: Entry) -> str:
    """The entry as the ledger stores it: one line of canonical JSON (without the newline)."""
    return canonical_json(entry.as_json()).decode("utf-8")


def find(entries: list[Entry], event: Event, request_id: str, **match: Any) -> Entry | None:
    """The first `event` entry of the request whose fields equal `match`: lets a step happen once."""
    for entry in entries:
        if (entry.event, entry.request.id) == (event, request_id) and all(
            getattr(entry, k) == v for k, v in match.items()
        ):
            return entry
    return None


def once(
    entries: list[Entry], event: Event, request: RequestRef | dict[str, Any], actor: str, at: dt.datetime,
    where: str, same: Collection[str] = (), **fields: Any
) -> tuple[Entry, bool]:
    """The request's `event` entry whose `same` fields equal the new ones: found in `entries`, or chained onto
    them (and added to the list): (entry, new). Pure: the one rule of a step that happens once."""
    rid = request.id if isinstance(request, RequestRef) else request["id"]
    found = find(entries, event, rid, **{name: fields[name] for name in same})
    if found is not None:
        return found, False
    entries.append(entry := chained(entries, event, request, actor, at, where, **fields))
    return entry, True


# ---------------------------------------------------------------- derived views
def blocklist(entries: list[Entry]) -> set[str]:
    """Content hashes of every purged record: excluded wherever they reappear."""
    return {h for e in entries if e.records for _, _, h in e.records}


def purged_keys(entries: list[Entry]) -> set[tuple[str, int]]:
    return {(source, idx) for e in entries if e.records for source, idx, _ in e.records}


@dataclass
class RequestState:
    """Where one request stands. `status` is its last step, `released` only once every adapter is."""

    id: str
    issue: int | None
    status: Status = "requested"
    requested_at: dt.datetime | None = None
    deadline: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None
    adapters: tuple[str, ...] = ()
    released: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # adapter -> (version, at)
    missed: dict[str, dt.datetime] = field(default_factory=dict)  # adapter -> when recorded

    @property
    def pending(self) -> tuple[str, ...]:
        """Adapters still to be released without the purged records."""
        if self.purged_at is None:
            return ()
        return tuple(a for a in self.adapters if a not in self.released)

    @property
    def by_adapter(self) -> dict[str, Status]:
        return {a: "released" if a in self.released else self.status for a in self.adapters}


def request_state(entries: list[Entry], published: Mapping[str, Collection[str]] | None = None
                  ) -> dict[str, RequestState]:
    """Each request's state by id, folded from its entries in ledger order. With `published` (each adapter's
    published versions), a `released` entry counts only for a published version: the entry reaches the default
    branch with the review PR, before `publish` runs, and until then the published weights still hold the records."""
    states: dict[str, RequestState] = {}
    for e in entries:
        s = states.setdefault(e.request.id, RequestState(e.request.id, e.request.issue))
        if e.event == "requested":
            s.requested_at, s.deadline, s.adapters = e.at, e.deadline, tuple(e.adapters or ())
        elif e.event in ("approved", "rejected"):
            s.status, s.decided_at = e.event, e.at
        elif e.event == "purged":  # the purge's adapters replace those matched at triage
            s.status, s.purged_at, s.adapters = "purged", e.at, tuple(e.adapters or ())
        elif e.event == "released" and e.adapter and (published is None
                                                      or e.version in published.get(e.adapter, ())):
            s.released.setdefault(e.adapter, (e.version or "", e.at))
        elif e.event == "deadline_missed" and e.adapter:
            s.missed.setdefault(e.adapter, e.at)
        if s.purged_at and s.adapters and not s.pending:
            s.status = "released"
    return states


def removal_stats(
    entries: list[Entry], adapter: str, released_in: Collection[str], sources: Collection[str] | None = None
) -> dict[str, int | float | None]:
    """Card section 3.1 figures for one adapter; `sources` (the adapter's) keeps records of other data out.
    `released_in` are the versions whose release counts: the published ones and the version the card is for
    (it is public only once published), never a version whose review PR merged but that was not published."""
    states = [s for s in request_state(entries, {adapter: released_in}).values() if adapter in s.adapters]
    days = [
        (s.released[adapter][1] - s.requested_at).total_seconds() / 86400
        for s in states
        if adapter in s.released and s.requested_at
    ]
    removed = {
        (source, idx)
        for e in entries
        if e.event == "purged" and adapter in (e.adapters or ())
        for source, idx, _ in e.records or ()
        if sources is None or source in sources
    }
    return {
        "requests_received": len(states),
        "approved": sum(s.status not in ("requested", "rejected") for s in states),
        "rejected": sum(s.status == "rejected" for s in states),
        "records_removed": len(removed),
        "deadlines_missed": sum(adapter in s.missed for s in states),
        "median_days_to_release": round(statistics.median(days), 1) if days else None,
        "longest_days_to_release": round(max(days), 1) if days else None,
    }
