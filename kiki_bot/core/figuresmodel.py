"""The card's figures of an adapter's training data, as values: what `kiki_bot.repo.figures` counts in its
pass over the data, and what the card builder reads. Pure, so the builder needs no data files to use them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kiki_bot.core.eligibility import Verdict

ESTIMATE_BYTES_PER_TOKEN = 4


@dataclass
class SourceFigures:
    records: int = 0
    bytes: int = 0
    tokens: int = 0
    first_access: dt.date | None = None
    last_access: dt.date | None = None
    no_origin: int = 0
    licenses: Counter[str] = field(default_factory=Counter)
    domain_bytes: Counter[str] = field(default_factory=Counter)


@dataclass
class DataFigures:
    """Everything the card says about an adapter's training data, plus what the pass found wrong: records
    the build refuses (`refused`: licence outside the policy or not covering the content's notice;
    `reserved`: origin host reserved when collected, which card section 3.1 counts) and removed records that
    are back in the data (`reappeared`), each in the eligibility rule's words."""

    sources: dict[str, SourceFigures]
    token_method: str
    tokenizer: str | None
    refused: list[str] = field(default_factory=list)
    reserved: list[str] = field(default_factory=list)
    reappeared: list[str] = field(default_factory=list)

    def refusals(self, verdict: Verdict) -> list[str]:
        return self.reserved if verdict is Verdict.RESERVED else self.refused


def merged_domains(figures: Iterable[SourceFigures]) -> Counter[str]:
    total: Counter[str] = Counter()
    for f in figures:
        total.update(f.domain_bytes)
    return total
