"""Builds small model repositories on disk for tests: real files, real manifests, no mocks."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import tomli_w

from kiki_bot.repo import manifests

KIKI = {
    "provider": {
        "name": "Test Lab SAS", "contact": "https://github.com/test-lab/models/issues", "website": "https://test-lab.eu",
        "country": "FR", "established_in_eu": True, "sme": True, "code_of_practice_signatory": False,
        "copyright_policy_url": "https://test-lab.eu/copyright", "private_contact": "privacy@test-lab.eu",
    },
    "policy": {"allowed_licenses": ["MIT", "Apache-2.0", "BSD-3-Clause", "CC0-1.0"]},
    "hub": {"namespace": "test-lab"},
}


def source(category: str = "2.3", **over) -> dict:
    doc = {
        "name": "Example source", "category": category, "url": "https://github.com/acme/fw", "license": "MIT",
        "modality": "text", "content_types": ["source code"], "languages": ["en"], "selection": "All C files.",
        "description": "Copyrighted source code under MIT.", "collected_from": dt.date(2025, 9, 1),
        "collected_to": dt.date(2025, 10, 31),
    }
    if category == "2.3":
        doc["crawler"] = {"name": "test-crawler/1.0", "purpose": "Collect code.", "behaviour": "1 request/s.",
                          "opt_outs": ["robots.txt", "ai.txt"], "content_description": "Code hosting sites."}
    doc["payload"] = {"prompt": "source", "response": "source"}  # after [crawler]: the tests name its lines
    doc.update(over)
    return doc


def adapter(sources: list[str], **over) -> dict:
    doc = {
        "description": "Test adapter.", "hub_repo": "test-lab/tiny-lora", "languages": ["en"],
        "sources": sources, "intended_use": "Tests.", "limitations": "Tiny.",
        "continuous_training": False,
        "illegal_content_measures": "PII screening.",
        "license": "Apache-2.0",
        "base_model": {"id": "test-lab/tiny-base", "license": "Apache-2.0", "parameters": 1.0e6},
        "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["self_attn.q_proj", "self_attn.v_proj"],
                 "num_layers": 2},
        "training": {"iters": 10, "batch_size": 2, "learning_rate": 1e-4, "seed": 0},
    }
    doc.update(over)
    return doc


def record(source_id: str, idx: int, text: str, **prov) -> dict:
    provenance = {"source": source_id, "license": "MIT", "record_idx": idx, "access_date": "2025-10-02",
                  "origin": f"https://github.com/acme/fw/blob/main/src/f{idx}.c", "repo": "acme/fw",
                  "path": f"src/f{idx}.c", "sha256": hashlib.sha256(text.encode()).hexdigest()}
    provenance.update(prov)
    provenance = {k: v for k, v in provenance.items() if v is not None}
    return {"messages": [{"role": "user", "content": f"Explain f{idx}."}, {"role": "assistant", "content": text}],
            "_provenance": provenance}


def _toml(doc: dict) -> str:
    return tomli_w.dumps(doc)


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def write_split(source_dir: Path, records: list[dict], first: int, second: int, blank_after: int) -> None:
    """`records` in three data files, then the manifest: part-000.jsonl up to `first`; part-001.jsonl up to
    `second`, in compact JSON with a blank line after its `blank_after`th line and no final newline (what
    hand edits leave); part-002.jsonl the rest."""
    write_jsonl(source_dir / "part-000.jsonl", records[:first])
    lines = [json.dumps(r, separators=(",", ":")) for r in records[first:second]]
    (source_dir / "part-001.jsonl").write_bytes("\n".join([*lines[:blank_after], "", *lines[blank_after:]]).encode())
    write_jsonl(source_dir / "part-002.jsonl", records[second:])
    manifests.refresh(source_dir)


def make_project(root: Path, sources: dict[str, dict] | None = None, records: dict[str, list[dict]] | None = None,
                 kiki: dict | None = None, adapters: dict[str, dict] | None = None) -> Path:
    """A complete project: kiki.toml, sources, adapters, data files with manifests."""
    sources = sources or {"acme-fw": source()}
    records = records if records is not None else {
        sid: [record(sid, i, f"int f{i}(void) {{ return {i}; }}") for i in range(20)] for sid in sources}
    adapters = adapters or {"tiny-lora": adapter(list(sources))}
    root.mkdir(parents=True, exist_ok=True)
    (root / "kiki.toml").write_text(_toml(kiki or KIKI))
    for sid, doc in sources.items():
        (root / "sources").mkdir(exist_ok=True)
        (root / "sources" / f"{sid}.toml").write_text(_toml(doc))
    for name, doc in adapters.items():
        (root / "adapters").mkdir(exist_ok=True)
        (root / "adapters" / f"{name}.toml").write_text(_toml(doc))
    for sid, recs in records.items():
        write_jsonl(root / "data" / sid / "part-000.jsonl", recs)
        manifests.refresh(root / "data" / sid)
    return root


def mark_published(root: Path, adapter: str, at: str = "2026-05-06T12:00:00Z") -> None:
    """What `publish` records once the Hub tag and the GitHub release exist: card.json's `published_at`."""
    path = root / "cards" / adapter / "card.json"
    doc = json.loads(path.read_text())
    doc["published_at"] = at
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def snapshot(root: Path) -> dict[Path, bytes]:
    """Every byte of a project (the index cache in .kiki/ aside): compare two to prove nothing was written."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".kiki" not in p.parts}


def edit_toml(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))
