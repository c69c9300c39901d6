"""Assembling an adapter's training set: sources minus every removal, policy and manifests enforced.

The split is decided per record by a seeded hash of its content, so it is deterministic and a record
stays on its side of the split when other records come or go. The content hashes that went in are
kept with the run (and published beside the adapter) so any version can prove what it was trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from kiki_bot.core import ledger
from kiki_bot.core.eligibility import Rule, Verdict
from kiki_bot.core.errors import BadInput
from kiki_bot.core.optouts import Evidence
from kiki_bot.repo import evidence, manifests
from kiki_bot.repo.project import Adapter, Project
from kiki_bot.repo.records import iter_source, payload_format
from kiki_bot.repo.storage import atomic_writer, files_sha256, write_text

HASHES = "training-content-hashes.txt"


@dataclass
class SourceCounts:
    used: int = 0
    excluded_removed: int = 0
    excluded_reappeared: int = 0


@dataclass
class TrainingSet:
    data_dir: Path
    train: int
    valid: int
    sources: dict[str, SourceCounts]
    reappeared: list[str] = field(default_factory=list)
    hashes_file: Path | None = None
    train_sha256: str = ""  # of train.jsonl then valid.jsonl: the training set's name in the ledger and card


def _is_valid(content_hash: str, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def rule(project: Project, entries: list[ledger.Entry],
         optouts: dict[str, list[Evidence] | None] | None = None) -> Rule:
    """The eligibility rule for the project's data: the ledger's removals, the licence policy and the stored
    opt-out evidence (or, per source, the evidence `optouts` gives: a check not yet written). One rule for the
    training set, the card's figures and `card check` alike, so the card counts what is trained on."""
    return Rule.of(entries, project.config.policy.allowed_licenses, evidence.Stored(project, optouts))


def assemble(project: Project, adapter: Adapter, out_dir: Path, eligible: Rule) -> TrainingSet:
    """Write `train.jsonl`/`valid.jsonl` (mlx-lm layout) of the records `eligible` uses, and the list of their
    content hashes."""
    problems = [p for s in adapter.sources for p in manifests.mismatches(project.data_dir / s)]
    if problems:
        raise BadInput("manifests", f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    t = adapter.training
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, SourceCounts] = {}
    reappeared: list[str] = []
    hashes: list[str] = []
    first_format: str | None = None
    refused: list[tuple[str, str]] = []
    n_train = n_valid = 0
    with atomic_writer(out_dir / "train.jsonl") as train, atomic_writer(out_dir / "valid.jsonl") as valid:
        for sid in adapter.sources:
            c = counts[sid] = SourceCounts()
            for rec in iter_source(project.data_dir, sid):
                verdict = eligible.of_record(rec)
                if verdict is Verdict.PURGED:
                    c.excluded_removed += 1
                    continue
                if verdict is Verdict.REAPPEARED:
                    c.excluded_reappeared += 1
                    reappeared.append(eligible.note(rec, verdict))
                    continue
                if verdict.refused:  # every refused record is named, then nothing is written
                    err = eligible.refuse(rec, verdict)
                    refused.append((err.where, err.problem))
                    continue
                fmt = payload_format(rec.payload)
                declared = project.sources[sid].payload
                if declared is not None and declared.pairs == (fmt == "text"):  # PST 1.3 says what they are
                    raise BadInput(f"{rec.file}:{rec.line}", f"record is in {fmt} format but sources/{sid}.toml's "
                                   f"[payload] declares {'prompt and response' if declared.pairs else 'text'}")
                first_format = first_format or fmt
                if fmt != first_format:
                    raise BadInput(f"{rec.file}:{rec.line}", f"record is in {fmt} format but the training set is "
                                   f"{first_format}: mlx-lm reads one format per split")
                line = json.dumps(rec.payload, ensure_ascii=False, sort_keys=True).encode() + b"\n"
                if _is_valid(rec.content_hash, t.seed, t.valid_fraction):
                    valid.write(line)
                    n_valid += 1
                else:
                    train.write(line)
                    n_train += 1
                hashes.append(rec.content_hash)
                c.used += 1
        if refused:  # inside the writers: they keep nothing
            raise BadInput.of(refused)
    if n_train == 0 or n_valid == 0:
        raise BadInput(f"adapters/{adapter.name}.toml: key `training.valid_fraction`",
                       f"the split left {n_train} training and {n_valid} validation records; both must be non-empty")
    hashes_file = out_dir / HASHES
    write_text(hashes_file, "".join(h + "\n" for h in sorted(hashes)))
    train_sha256 = files_sha256(out_dir / "train.jsonl", out_dir / "valid.jsonl")
    return TrainingSet(out_dir, n_train, n_valid, counts, reappeared, hashes_file, train_sha256)
