"""Training records and their `_provenance`: streamed, validated line by line, never a whole source in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from kiki_bot.core import licences
from kiki_bot.core.canonical import content_hash
from kiki_bot.core.errors import BadInput, explain, key_name
from kiki_bot.core.provenance import Provenance, iso_day  # noqa: F401  (callers import them from here too)

PAYLOAD_KEYS = ("messages", "prompt", "text")


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed line: its payload, provenance, where it sits in the file, and its content hash."""

    payload: dict[str, Any]
    provenance: Provenance
    file: Path
    line: int
    offset: int
    length: int
    content_hash: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.provenance.source, self.provenance.record_idx)

    @property
    def notices(self) -> tuple[str, ...]:
        """The licence notices its content carries: the eligibility rule checks its declared licence covers them."""
        return licences.notices_in(record_text(self.payload))


def _error_text(exc: ValidationError) -> str:
    return "; ".join(f"key `{key_name(('_provenance', *loc))}`: {msg}" for loc, msg in explain(Provenance, exc.errors(), "json"))


def parse_line(raw: bytes, file: Path, line: int, offset: int = 0) -> Record:
    """Parse and validate one JSONL line; every error names `file:line` and the field."""
    where = f"{file}:{line}"
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = f"at column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "(not UTF-8)"
        raise BadInput(where, f"not valid JSON {detail}") from None
    if not isinstance(obj, dict):
        raise BadInput(where, "expected a JSON object per line")
    prov = obj.get("_provenance")
    if not isinstance(prov, dict):
        raise BadInput(where, "missing `_provenance` object (expected source, license, record_idx, access_date)")
    if not any(k in obj for k in PAYLOAD_KEYS):
        raise BadInput(where, "no training payload: expected `messages`, `prompt`+`completion` or `text`")
    if "prompt" in obj and "completion" not in obj:
        raise BadInput(where, "`prompt` without `completion`")
    try:
        provenance = Provenance.model_validate(prov)
    except ValidationError as exc:
        raise BadInput(where, _error_text(exc)) from None
    payload = {k: v for k, v in obj.items() if k != "_provenance"}
    return Record(payload, provenance, file, line, offset, len(raw), content_hash(obj))


def record_text(payload: dict) -> str:
    """The text a tokenizer sees for one record, whatever mlx-lm format it uses."""
    if "messages" in payload:
        return "\n".join(str(m.get("content", "")) for m in payload["messages"] if isinstance(m, dict))
    if "prompt" in payload:
        return f"{payload['prompt']}\n{payload.get('completion', '')}"
    return str(payload.get("text", ""))


def payload_format(payload: dict) -> str:
    """The mlx-lm data format of a record's payload (one format per split)."""
    return "chat" if "messages" in payload else "completions" if "prompt" in payload else "text"


MAX_BAD_LINES = 20  # a file that is bad throughout names this many lines, not millions


def iter_file(path: Path) -> Iterator[Record]:
    """Stream the records of one JSONL file with their byte offsets (used by purge to copy untouched ranges).
    At the first bad line, the rest of the file is read for more, so one run names every bad line."""
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                try:
                    rec = parse_line(raw, path, lineno, offset)
                except BadInput as first:
                    raise _bad_lines(first, fh, path, lineno) from None
                yield rec
            offset += len(raw)


def _bad_lines(first: BadInput, rest: IO[bytes], path: Path, first_line: int) -> BadInput:
    problems = [(first.where, first.problem)]
    for lineno, raw in enumerate(rest, start=first_line + 1):
        if len(problems) == MAX_BAD_LINES:
            problems.append((str(path), f"stopped looking after {MAX_BAD_LINES} bad lines (line {lineno} on)"))
            break
        if raw.strip():
            try:
                parse_line(raw, path, lineno)
            except BadInput as exc:
                problems.append((exc.where, exc.problem))
    return BadInput.of(problems)


def data_files(source_dir: Path) -> list[Path]:
    """The JSONL files of one source, in a stable order."""
    return sorted(source_dir.glob("*.jsonl")) if source_dir.is_dir() else []


def iter_source_file(path: Path, source_id: str) -> Iterator[Record]:
    """The records of one data file of a source; checks that each says it belongs to that source."""
    for rec in iter_file(path):
        if rec.provenance.source != source_id:
            raise BadInput(
                f"{path}:{rec.line}",
                f"_provenance.source is {rec.provenance.source!r} but the file lies under data/{source_id}/",
            )
        yield rec


def iter_source(data_dir: Path, source_id: str) -> Iterator[Record]:
    """Every record of a source; checks that each record says it belongs to that source, and that no two
    share a `record_idx` (the key a removal, a purge and the ledger name a record by)."""
    seen = IdxSet()
    for path in data_files(data_dir / source_id):
        for rec in iter_source_file(path, source_id):
            if not seen.add(rec.provenance.record_idx):
                first = next(r for p in data_files(data_dir / source_id) for r in iter_file(p)
                             if r.provenance.record_idx == rec.provenance.record_idx)
                raise duplicate_key(source_id, rec.provenance.record_idx, f"{first.file}:{first.line}",
                                    f"{rec.file}:{rec.line}")
            yield rec


def duplicate_key(source: str, idx: int, first: str, second: str) -> BadInput:
    """The error for two records of one source under one key: a purge by that key would take both."""
    return BadInput(f"{first} and {second}", f"two records of source {source!r} have record_idx {idx}: "
                    "(source, record_idx) must be unique within a source")


class IdxSet:
    """The record_idx values met so far in one source, in flat memory for the usual dense 0..n numbering
    (a bitmap of up to 16 MiB), a set for the rest."""

    BITMAP_LIMIT = 1 << 27

    def __init__(self) -> None:
        self.bits = bytearray()
        self.others: set[int] = set()

    def add(self, idx: int) -> bool:
        """Note `idx`; False when it was already there."""
        if idx >= self.BITMAP_LIMIT:
            if idx in self.others:
                return False
            self.others.add(idx)
            return True
        byte, mask = idx >> 3, 1 << (idx & 7)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1, 2 * len(self.bits)) - len(self.bits)))
        if self.bits[byte] & mask:
            return False
        self.bits[byte] |= mask
        return True
