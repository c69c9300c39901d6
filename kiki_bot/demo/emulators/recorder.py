"""Every exchange an emulator serves, kept on disk so a test can check them all against the real API.

An emulator is only as good as its fidelity (DESIGN.md section 6): tests/test_conformance_openapi.py validates
each request body and answer the GitHub emulator served during the whole suite against GitHub's published
OpenAPI description. Emulators run in the test process and in subprocesses (the demo), so the record is one
JSON line per exchange appended to `$KIKI_EMULATOR_RECORD/<service>-<pid>.jsonl`, from any process that
inherits that variable. Unset, nothing is recorded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RECORD_ENV = "KIKI_EMULATOR_RECORD"
LONG_STRING = 1 << 20
"""Strings longer than this (base64 of big files) are kept as their first KiB: no schema constrains their length,
and a 100 MB upload would otherwise be written to the record as well."""

_write_lock = threading.Lock()


@dataclass(frozen=True)
class Exchange:
    """One request as sent (raw path, decoded JSON body) and the answer served (status, headers, JSON body)."""

    service: str
    method: str
    path: str
    query: dict[str, str]
    request_type: str
    request: Any
    status: int
    headers: dict[str, str]
    response_type: str
    response: Any
    response_bytes: int


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LONG_STRING:
        return value[:1024]
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item) for key, item in value.items()}
    return value


def decode(data: bytes, mimetype: str) -> Any:
    """A body as JSON (NDJSON: a list of objects); None when empty or not JSON."""
    if not data:
        return None
    try:
        if mimetype == "application/x-ndjson":
            return [json.loads(line) for line in data.splitlines() if line.strip()]
        return json.loads(data)
    except ValueError:
        return None


def record(exchange: Exchange) -> None:
    """Append `exchange` to this process's record file, when recording is on."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    line = json.dumps(_shorten(asdict(exchange))) + "\n"
    with _write_lock, open(Path(folder) / f"{exchange.service}-{os.getpid()}.jsonl", "a") as out:
        out.write(line)


def recorded(folder: Path, service: str) -> Iterator[Exchange]:
    """Every exchange of `service` recorded under `folder`, by any process."""
    for path in sorted(folder.glob(f"{service}-*.jsonl")):
        for line in path.read_text().splitlines():
            yield Exchange(**json.loads(line))
