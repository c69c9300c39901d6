"""Training records and their `_provenance`: streamed, validated line by line, never a whole source in memory."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiki_bot.canonical import content_hash
from kiki_bot.errors import BadInput

PAYLOAD_KEYS = ("messages", "prompt", "text")


class Provenance(BaseModel):
    """Where one record came from (DESIGN.md section 2). Unknown keys are refused so typos surface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    license: str = Field(min_length=1, description="SPDX expression")
    record_idx: int = Field(ge=0)
    access_date: dt.date
    origin: str | None = None
    repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    path: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


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


def _error_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"_provenance.{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def parse_line(raw: bytes, file: Path, line: int, offset: int = 0) -> Record:
    """Parse and validate one JSONL line; every error names `file:line` and the field."""
    where = f"{file}:{line}"
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(where, f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
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


def iter_file(path: Path) -> Iterator[Record]:
    """Stream the records of one JSONL file with their byte offsets (used by purge to copy untouched ranges)."""
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                yield parse_line(raw, path, lineno, offset)
            offset += len(raw)


def data_files(source_dir: Path) -> list[Path]:
    """The JSONL files of one source, in a stable order."""
    return sorted(source_dir.glob("*.jsonl")) if source_dir.is_dir() else []


def iter_source(data_dir: Path, source_id: str) -> Iterator[Record]:
    """Every record of a source; checks that each record says it belongs to that source."""
    for path in data_files(data_dir / source_id):
        for rec in iter_file(path):
            if rec.provenance.source != source_id:
                raise BadInput(
                    f"{path}:{rec.line}",
                    f"_provenance.source is {rec.provenance.source!r} but the file lies under data/{source_id}/",
                )
            yield rec
