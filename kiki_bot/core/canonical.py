"""Canonical JSON and the hashes built on it (DESIGN.md section 2), the SHA-256 of files, and git's blob id."""

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


def git_blob_sha(data: bytes) -> str:
    """Git's blob id: what a git tree lists for a file (so an unchanged file need not be downloaded), GitHub's
    content `sha`, and the Hub's file `oid`/ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
