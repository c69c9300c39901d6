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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_ENV = "KIKI_EMULATOR_RECORD"
LONG_BODY = 1 << 20
"""A JSON body longer than this (base64 of a big file) is kept with its long strings cut to their first KiB: no
schema constrains their length, and a 100 MB upload would otherwise be written to the record as well."""

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
    if isinstance(value, str) and len(value) > 1024:
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


def _kept(data: bytes, mimetype: str) -> str | None:
    """A JSON body as recorded: its text, long strings cut when it is long; None when it is no JSON."""
    if not data or ("json" not in mimetype and data[:1] not in (b"{", b"[")):
        return None
    if len(data) <= LONG_BODY:
        return data.decode(errors="replace")
    value = decode(data, mimetype)
    return None if value is None else json.dumps(_shorten(value))


def record(service: str, request: Any, path: str, response: Any) -> None:
    """Append one exchange (werkzeug request and response) to this process's record file, when recording is on.
    Bodies are kept as sent (decoded when read back): recording must cost the suite little."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    sent = request.get_data()
    served = b"" if response.is_streamed else response.get_data()
    line = json.dumps({
        "service": service, "method": request.method, "path": path, "query": dict(request.args),
        "request_type": request.mimetype, "request": _kept(sent, request.mimetype), "status": response.status_code,
        "headers": dict(response.headers), "response_type": response.mimetype,
        "response": _kept(served, response.mimetype) if "json" in response.mimetype else None,
        "response_bytes": len(served),
    }) + "\n"
    with _write_lock, open(Path(folder) / f"{service}-{os.getpid()}.jsonl", "a") as out:
        out.write(line)


def recorded(folder: Path, service: str) -> Iterator[Exchange]:
    """Every exchange of `service` recorded under `folder`, by any process, bodies decoded."""
    for path in sorted(folder.glob(f"{service}-*.jsonl")):
        with open(path) as lines:
            for line in lines:
                raw = json.loads(line)
                for key, mimetype in (("request", raw["request_type"]), ("response", raw["response_type"])):
                    raw[key] = decode(raw[key].encode(), mimetype) if raw[key] is not None else None
                yield Exchange(**raw)
