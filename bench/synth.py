"""Synthetic model repositories of any size with a realistic provenance mix, for the benches.

Records: GitHub files across many owners and repositories (a crawled source), web pages across many
domains (a crawled source), rows of a Hub dataset (a public source), and some records without origin.
Deterministic for a given size and seed. Written with plain string formatting: 10 M records in minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiki_bot import manifests  # noqa: E402

SOURCES = {
    "gh-code": ("2.3", "GitHub code", "https://github.com", 0.5),
    "web-docs": ("2.3", "Vendor documentation pages", None, 0.3),
    "hub-rows": ("2.1", "Public instruction dataset", "https://huggingface.co/datasets/acme-ai/embedded-instruct", 0.2),
}
RECORDS_PER_FILE = 250_000
WORDS = ("gpio uart spi i2c timer adc dma irq flash clock watchdog ring buffer crc task queue mutex "
         "semaphore driver register bus sensor motor pwm led button debounce").split()


def _kiki() -> str:
    return """[provider]
name = "Bench Lab SAS"
contact = "https://github.com/bench-lab/models/issues"
website = "https://bench-lab.eu"
country = "FR"
established_in_eu = true
sme = true
code_of_practice_signatory = false
copyright_policy_url = "https://bench-lab.eu/copyright"
private_contact = "privacy@bench-lab.eu"

[policy]
allowed_licenses = ["MIT", "Apache-2.0", "BSD-3-Clause", "CC0-1.0", "CC-BY-4.0"]

[hub]
namespace = "bench-lab"
"""


def _source(sid: str, category: str, name: str, url: str | None) -> str:
    doc = f'''name = "{name}"
category = "{category}"
{f'url = "{url}"' if url else ''}
license = "MIT"
modality = "text"
content_types = ["source code", "documentation"]
languages = ["en"]
selection = "Synthetic benchmark data."
description = "Synthetic records for benchmarks."
collected_from = 2025-01-01
collected_to = 2025-12-31
'''
    if category == "2.3":
        doc += '''
[crawler]
name = "bench-crawler/1.0"
purpose = "Benchmarks."
behaviour = "1 request/s."
opt_outs = ["robots.txt"]
content_description = "Synthetic."
'''
    return doc


def _adapter(sources: list[str]) -> str:
    return f'''description = "Benchmark adapter."
hub_repo = "bench-lab/bench-lora"
languages = ["en"]
placed_on_market = 2026-05-06
sources = {json.dumps(sources)}
intended_use = "Benchmarks."
limitations = "Synthetic."
illegal_content_measures = "None needed."

[base_model]
id = "bench-lab/base"
license = "Apache-2.0"
parameters = 7e9

[lora]
rank = 8
alpha = 16
dropout = 0.0
target_modules = ["self_attn.q_proj"]

[training]
iters = 100
batch_size = 4
learning_rate = 1e-5
'''


def _line(sid: str, idx: int, rng: random.Random, n_owners: int, n_domains: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
    prov: dict = {"source": sid, "license": "MIT", "record_idx": idx,
                  "access_date": f"2025-{1 + idx % 12:02d}-{1 + idx % 28:02d}"}
    if sid == "gh-code":
        owner, repo = f"owner{rng.randrange(n_owners)}", f"repo{rng.randrange(20)}"
        path = f"src/mod{rng.randrange(50)}/file{idx}.c"
        prov.update(origin=f"https://github.com/{owner}/{repo}/blob/main/{path}", repo=f"{owner}/{repo}", path=path)
    elif sid == "web-docs":
        if rng.random() < 0.05:
            pass  # no origin: only whole-source removal covers it
        else:
            prov["origin"] = f"https://docs{rng.randrange(3)}.site{rng.randrange(n_domains)}.com/guide/p{idx}.html"
    else:
        prov["origin"] = f"https://huggingface.co/datasets/acme-ai/embedded-instruct/viewer/default/train?row={idx}"
    prov["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps({"text": text, "_provenance": prov}, separators=(",", ":")) + "\n"


def make(root: Path, records: int, seed: int = 0) -> Path:
    """Write a complete project of `records` records (manifests included) under `root`."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "kiki.toml").write_text(_kiki())
    (root / "sources").mkdir(exist_ok=True)
    (root / "adapters").mkdir(exist_ok=True)
    n_owners, n_domains = max(records // 500, 10), max(records // 2000, 10)
    for sid, (category, name, url, share) in SOURCES.items():
        (root / "sources" / f"{sid}.toml").write_text(_source(sid, category, name, url))
        count = round(records * share)
        out = root / "data" / sid
        out.mkdir(parents=True, exist_ok=True)
        for part, start in enumerate(range(0, count, RECORDS_PER_FILE)):
            with open(out / f"part-{part:04d}.jsonl", "w", encoding="utf-8") as fh:
                fh.writelines(_line(sid, i, rng, n_owners, n_domains)
                              for i in range(start, min(start + RECORDS_PER_FILE, count)))
        manifests.refresh(out)
    (root / "adapters" / "bench-lora.toml").write_text(_adapter(list(SOURCES)))
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    make(args.root, args.records)
