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

from kiki_bot.repo import manifests

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

[payload]
text = "source"
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
license = "Apache-2.0"
languages = ["en"]
sources = {json.dumps(sources)}
intended_use = "Benchmarks."
limitations = "Synthetic."
continuous_training = false
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
    """One record. Draws from `rng` exactly as `random.Random.choice`/`randint`/`randrange` would (so a
    given size and seed always give the same bytes), without their call overhead; formatted by hand as
    `json.dumps(..., separators=(",", ":"))` would (every value here is plain ASCII)."""
    bits = rng.getrandbits

    def below(n: int) -> int:  # random.Random._randbelow_with_getrandbits
        k = n.bit_length()
        r = bits(k)
        while r >= n:
            r = bits(k)
        return r

    count = 8 + below(33)  # randint(8, 40)
    words = []
    for _ in range(count):  # choice(WORDS)
        r = bits(_WORD_BITS)
        while r >= _N_WORDS:
            r = bits(_WORD_BITS)
        words.append(WORDS[r])
    text = " ".join(words)
    prov = (
        f'"source":"{sid}","license":"MIT","record_idx":{idx},'
        f'"access_date":"2025-{1 + idx % 12:02d}-{1 + idx % 28:02d}"'
    )
    if sid == "gh-code":
        owner, repo = f"owner{below(n_owners)}", f"repo{below(20)}"
        path = f"src/mod{below(50)}/file{idx}.c"
        prov += f',"origin":"https://github.com/{owner}/{repo}/blob/main/{path}","repo":"{owner}/{repo}","path":"{path}"'
    elif sid == "web-docs":
        if rng.random() >= 0.05:  # else no origin: only whole-source removal covers it
            prov += f',"origin":"https://docs{below(3)}.site{below(n_domains)}.com/guide/p{idx}.html"'
    else:
        prov += f',"origin":"https://huggingface.co/datasets/acme-ai/embedded-instruct/viewer/default/train?row={idx}"'
    prov += f',"sha256":"{hashlib.sha256(text.encode()).hexdigest()}"'
    return f'{{"text":"{text}","_provenance":{{{prov}}}}}\n'


_N_WORDS = len(WORDS)
_WORD_BITS = _N_WORDS.bit_length()


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
