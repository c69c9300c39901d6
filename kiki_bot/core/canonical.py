"""Canonical JSON and the hashes built on it (DESIGN.md section 2), and git's blob id. (The SHA-256 of files,
which reads them, is kiki_bot.repo.storage.files_sha256.)"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """The one byte form used for every hash: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON without `_provenance`: what the ledger keeps instead of content."""
    return sha256_hex(canonical_json({k: v for k, v in record.items() if k != "_provenance"}))


def git_blob_sha(data: bytes) -> str:
    """Git's blob id: what a git tree lists for a file (so an unchanged file need not be downloaded), GitHub's
    content `sha`, and the Hub's file `oid`/ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
