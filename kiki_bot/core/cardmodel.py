"""The card record (`card.json`): the whole PST template plus appendices, as pydantic models.

The one structured record README.md and CHANGELOG.md render from (`render`), built from data by
`cardbuilder`, compared by `carddiff`, read and written with the model repository's card files
(`repo/cards`). Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiki_bot.core.config import Category, Modality

SCHEMA = "kiki-bot/card/1"


class M(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- the record
class Fingerprint(M):
    """The compact facts the next version's changelog entry is computed against."""

    sources: dict[str, tuple[int, int]]
    licenses: list[str]
    size_bins: list[str]
    latest_collection: str
    period: str
    domains: list[str]
    large: list[str]
    removals: int
    training: dict[str, str]


class VersionLink(M):
    """A published earlier version, as it was published: copied from card to card, never recomputed
    (DESIGN.md section 7, invariant 5, and section 8 "Card history")."""

    version: str
    date: dt.date
    url: str  # its Hub revision
    published_at: dt.datetime | None = None
    placed_on_market: dt.date | None = None  # from its release; None only in cards made before it was recorded
    revision: str | None = None  # the Hub revision `url` names (the version's tag)
    train_sha256: str | None = None
    ledger_seq: int = Field(default=0, ge=0)
    ledger_hash: str = Field(default="0" * 64, pattern=r"^[0-9a-f]{64}$")
    fingerprint: Fingerprint | None = None  # its figures; None when imported (typed by hand, not from data)
    imported: bool = False  # taken from a hand-written card by `kiki-bot card import`
    sections: dict[str, str] = Field(default_factory=dict)  # imported: the template's answers as written


class Superseded(M):
    """A published version built before records were removed: it may hold them, so the card says so and the
    `superseded` policy says what became of its Hub revision."""

    version: str
    requests: list[str]
    issues: list[int]
    issues_url: str | None  # the model repository's issue tracker, when the contact names it
    action: Literal["flag", "gate", "delete"]


class Header(M):
    version: str
    last_update: dt.date
    previous_versions: list[VersionLink]
    template_edition: str
    latest_url: str
    # The removal ledger's head when this version's card was rendered: the ledger only grows, so a ledger that
    # no longer holds this entry was truncated or rewritten (`ledger verify`, `card check`). 0 = empty ledger.
    ledger_seq: int = Field(default=0, ge=0)
    ledger_hash: str = Field(default="0" * 64, pattern=r"^[0-9a-f]{64}$")


class ModalityRow(M):
    modality: Modality
    bin: str
    bins: tuple[str, str, str]
    amount: int
    unit: str
    size_note: str
    content_types: list[str]


class Section1(M):
    provider: str
    provider_website: str
    provider_contact: str
    representative: str
    model_name: str
    model_url: str
    description: str = ""  # the adapter's own description (adapters/<name>.toml)
    dependencies: list[dict[str, str | None]]
    placement_date: dt.date
    modalities: list[ModalityRow]
    latest_collection: str
    continuous_training: bool
    languages: list[str]
    other_characteristics: str
    comments: str


class LargeDataset(M):
    name: str
    url: str | None
    modality: Modality
    share_percent: float
    selection: str


class Section21(M):
    used: bool
    modalities: list[Modality]
    large: list[LargeDataset]
    other_description: str
    comments: str


class Section22(M):
    licensed_used: bool
    licensed_modalities: list[Modality]
    private_used: bool
    private_modalities: list[Modality]
    private_listed: list[str]
    private_description: str
    comments: str


class Domain(M):
    domain: str
    bytes: int


class CrawledRepo(M):
    name: str
    url: str
    records: int


class Section23(M):
    used: bool
    crawlers: list[str]
    purposes: str
    behaviour: str
    period: str
    content_description: str
    modalities: list[Modality]
    domain_count: int
    domains_listed: int
    domain_rule: str
    domains: list[Domain]
    comments: str
    repositories: list[CrawledRepo] = Field(default_factory=list)


class ModelLink(M):
    name: str
    url: str
    summary_url: str | None


class Section24to26(M):
    user_interactions: bool
    user_other_services: bool
    synthetic: bool
    synthetic_modalities: list[Modality] = Field(default_factory=list)
    synthetic_models: list[ModelLink] = Field(default_factory=list)
    synthetic_description: str = ""
    other: bool
    other_description: str
    user_basis: str = ""  # what backs 2.4's answers: the user-data declarations of the sources used


class Removals(M):
    received: int
    approved: int
    rejected: int
    records_removed: int
    median_days_to_release: float | None
    longest_days_to_release: float | None


class Section3(M):
    signatory: bool
    opt_out_measures: str
    opt_outs: list[str]
    removals: Removals
    copyright_policy_url: str
    removal_channel: str
    # The rightsholder's route (issue form, what it accepts, the private contact, records without an origin).
    removal_form_url: str | None = None
    private_contact: str = ""
    no_origin: dict[str, int] = Field(default_factory=dict)  # records without an origin URL, by source name
    illegal_content_measures: str
    other_processing: str | None


class SourceRow(M):
    id: str
    name: str
    category: Category
    license: str
    records: int
    bytes: int
    tokens: int
    no_origin: int
    selection: str = ""


class Compute(M):
    formula: str
    parameters: float
    tokens_processed: int
    tokens_basis: str
    flop: float
    systemic_risk_threshold: float
    base_compute: float | None
    provider_threshold: float
    provider_case: str


class Evaluation(M):
    benchmark: str
    metric: str
    base: float | None
    adapter: float | None
    delta: float | None
    source: str = ""  # where each score came from: this release's run, or typed in with the benchmark's caveats


class RunFacts(M):
    """What only a training run can tell; carried from the release, never derived from data."""

    trained_tokens: int | None = None
    iterations: int | None = None
    wall_time_s: float | None = None
    hardware: str | None = None
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    eval_score: float | None = None
    eval_base: float | None = None
    eval_source: str | None = None  # where `eval_score` came from when no training run is recorded (typed in)
    origin: Literal["release", "typed in"] | None = None
    """Who gave these facts: the release, from its own training run, or a person with `card render --run`.
    None (no origin recorded) is never read as the release's: facts without it are shown as typed in."""
    train_sha256: str | None = None  # the training set (train then valid file), as the ledger names it
    adapter_sha256: str | None = None  # mlx-lm's weights file staged on the Hub: what `publish` checks
    peft_sha256: str | None = None  # adapter_model.safetensors, the exact PEFT form at the Hub repo's root
    peft_refused: str | None = None  # why there is no PEFT form (it would not be exact)

    @property
    def mlx_dir(self) -> str:
        """Where mlx-lm's files sit in the Hub repo ("" or "mlx/"). With an exact PEFT form, PEFT's files take the
        root: the Hub's library label, its "Use this model" snippet and its download count all read the root's
        `adapter_config.json`, and both formats name their config so."""
        return "mlx/" if self.peft_sha256 else ""


class ChangelogEntry(M):
    version: str
    date: dt.date
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    security: list[str] = Field(default_factory=list)


class Previous(M):
    version: str
    date: dt.date
    fingerprint: Fingerprint | None  # None: an imported, hand-written version (no figures from data)


class Card(M):
    schema_: Literal["kiki-bot/card/1"] = Field(SCHEMA, alias="schema")
    adapter: str
    header: Header
    section1: Section1
    section21: Section21
    section22: Section22
    section23: Section23
    section24_26: Section24to26
    section3: Section3
    sources: list[SourceRow]
    token_method: str
    compute: Compute
    training: dict[str, str]
    run: RunFacts
    evaluation: Evaluation | None
    intended_use: str
    limitations: str
    citation: str
    hub: dict[str, object]
    fingerprint: Fingerprint
    previous: Previous | None
    changelog: list[ChangelogEntry]
    superseded: list[Superseded] = Field(default_factory=list)
    published_at: dt.datetime | None = None
    """When `publish` ran for this version (Hub tag and GitHub release made); None for a draft or a release
    under review. Only published versions count as released: `init` and `card render` write drafts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("hub")
    @classmethod
    def _trimmed(cls, hub: dict[str, object]) -> dict[str, object]:
        """Hub metadata values are ids, tags and names: edge whitespace means nothing, and huggingface_hub's
        YAML writer strips the end of the document, so `0\u00a0` as the last value would read back as the
        number 0. Kept trimmed, every value reads back as written."""
        def trim(value: object) -> object:
            if isinstance(value, str):
                return value.strip()
            return [trim(v) for v in value] if isinstance(value, list) else value

        return {key: trim(value) for key, value in hub.items()}


class Purge(M):
    """A `purged` ledger entry as the card needs it: when (its seq) and for which request."""

    seq: int
    request: str
    issue: int | None


class History(M):
    """What a new card keeps of the versions before it: their links, their changelog entries and the last one's
    figures. Copied, never recomputed: a published version's entry is immutable."""

    versions: list[VersionLink] = Field(default_factory=list)
    changelog: list[ChangelogEntry] = Field(default_factory=list)
    previous: Previous | None = None


# ---------------------------------------------------------------- what a card says of its versions
def published_versions(card: Card | None) -> list[str]:
    """The versions `publish` ran for, oldest first: the header's links, and the card's own once published."""
    if card is None:
        return []
    return [v.version for v in card.header.previous_versions] + ([card.header.version] if card.published_at else [])


def last_published(card: Card | None) -> str | None:
    versions = published_versions(card)
    return versions[-1] if versions else None

