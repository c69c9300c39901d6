"""Canonical JSON and the hashes built on it (DESIGN.md section 2), and the SHA-256 of files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """The one byte form used for every hash: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON without `_provenance`: what the ledger keeps instead of content."""
    return sha256_hex(canonical_json({k: v for k, v in record.items() if k != "_provenance"}))


def files_sha256(*paths: Path) -> str:
    """SHA-256 of the files' bytes one after the other, streamed: a run's training set is its train file
    then its valid file (DESIGN.md section 7), hashed as one."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
