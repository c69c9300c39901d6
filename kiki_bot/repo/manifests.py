"""`data/<source>/MANIFEST.json`: the SHA-256, size and record count of every data file of a source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiki_bot.core.errors import BadInput
from kiki_bot.repo.records import data_files, iter_source
from kiki_bot.repo.storage import write_text

MANIFEST = "MANIFEST.json"


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    records: int = Field(ge=0)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    files: dict[str, FileEntry]


def describe_file(path: Path) -> FileEntry:
    """Hash a data file and count its non-empty lines in one streaming pass."""
    digest, size, records = hashlib.sha256(), 0, 0
    with open(path, "rb") as fh:
        for line in fh:
            digest.update(line)
            size += len(line)
            records += bool(line.strip())
    return FileEntry(sha256=digest.hexdigest(), bytes=size, records=records)


def load(source_dir: Path) -> Manifest | None:
    path = source_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_bytes()))
    except UnicodeDecodeError:
        raise BadInput(str(path), "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        raise BadInput.validation(Manifest, exc.errors(), str(path)) from None


def render(entries: dict[str, FileEntry]) -> str:
    doc = {"files": {name: entries[name].model_dump() for name in sorted(entries)}}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _fresh(source_dir: Path) -> str:
    return render({p.name: describe_file(p) for p in data_files(source_dir)})


def refresh(source_dir: Path) -> bool:
    """Rewrite the manifest from the files on disk; returns True when it changed."""
    return write_text(source_dir / MANIFEST, _fresh(source_dir))


def refreshed_all(data_dir: Path, source_ids: list[str]) -> tuple[dict[str, int], dict[Path, bytes]]:
    """`data manifest`: validate every record of every source first (a bad record in the last source must
    not leave the first ones updated, so the caller writes all the manifests or none), then every source's
    manifest as the files on disk call for it. Returns the records per source and the manifests' bytes."""
    from kiki_bot import console

    counts = dict.fromkeys(source_ids, 0)
    size = sum(p.stat().st_size for sid in source_ids for p in data_files(data_dir / sid))
    with console.progress("checking records", size) as advance:
        for sid in source_ids:
            for record in iter_source(data_dir, sid):
                counts[sid] += 1
                advance(record.length)
    return counts, {data_dir / sid / MANIFEST: _fresh(data_dir / sid).encode("utf-8") for sid in source_ids}


def mismatches(source_dir: Path) -> list[str]:
    """Every way the files on disk differ from the manifest, one sentence each (empty = verified)."""
    manifest = load(source_dir)
    if manifest is None:
        return [f"{source_dir / MANIFEST}: missing (run `kiki-bot data manifest`)"]
    problems = []
    on_disk = {p.name: p for p in data_files(source_dir)}
    for name in sorted(set(manifest.files) - set(on_disk)):
        problems.append(f"{source_dir / name}: listed in {MANIFEST} but missing")
    for name, path in sorted(on_disk.items()):
        want = manifest.files.get(name)
        if want is None:
            problems.append(f"{path}: not listed in {MANIFEST}")
            continue
        got = describe_file(path)
        if got.sha256 != want.sha256 or got.bytes != want.bytes:
            problems.append(f"{path}: bytes differ from {MANIFEST} (sha256 {got.sha256[:12]}… ≠ {want.sha256[:12]}…)")
    return problems
