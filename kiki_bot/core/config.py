"""The user's model repository's configuration (DESIGN.md section 2) as pydantic models: the schema of
kiki.toml, sources/<id>.toml and adapters/<name>.toml, with the rules between their fields.

Pure, so the card model and builder can speak of sources and adapters without the file reading:
`kiki_bot.repo.project` loads the files and reports each problem with its file, line and key. Strict mode
throughout (TOML has native integers, booleans and dates, so `"30"` for a number is a mistake, not something
to coerce); licence fields are checked against the SPDX list.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, model_validator

from kiki_bot.core import licences

NAME = r"^[a-z0-9][a-z0-9._-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Category(StrEnum):
    """PST section 2 categories; each source belongs to exactly one."""

    PUBLIC = "2.1"
    LICENSED = "2.2.1"
    PRIVATE_THIRD_PARTY = "2.2.2"
    CRAWLED = "2.3"
    USER = "2.4"
    SYNTHETIC = "2.5"
    OTHER = "2.6"


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    OTHER = "other"


# ---------------------------------------------------------------- kiki.toml
class Provider(Strict):
    name: str = Field(min_length=1, description="Legal entity name.")
    contact: str = Field(min_length=1, description="A specific contact point (person, role or tracker), not a generic mailbox.")
    website: HttpUrl
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country of establishment.")
    established_in_eu: bool
    sme: bool = Field(description="SME or start-up: changes the domain-list cut of section 2.3 to 5 % or 1,000.")
    code_of_practice_signatory: bool
    copyright_policy_url: HttpUrl
    private_contact: str = Field(min_length=1, description="Non-public route for personal-data removal requests.")
    authorised_representative: str | None = Field(
        default=None, description="Name and contact of the Art. 54 representative; required outside the EU."
    )

    @model_validator(mode="after")
    def _representative_outside_eu(self) -> Provider:
        if not self.established_in_eu and not self.authorised_representative:
            raise ValueError("authorised_representative is required when established_in_eu = false (Art. 54)")
        return self


class Policy(Strict):
    allowed_licenses: list[licences.LicenceId] = Field(min_length=1, description="SPDX licence ids a record's licence expression may use.")
    removal_window_days: int = Field(default=30, ge=1, le=365)
    approve_permission: Literal["triage", "write", "maintain", "admin"] = "write"
    auto_approve_owner: bool = Field(default=False, description="A requester may approve selectors of their own GitHub login.")
    missed_deadline_fallback: Literal["gate", "private", "none"] = "gate"
    superseded: Literal["flag", "gate", "delete"] = Field(default="flag", description=(
        "What happens to published versions built before a removal: flag them (in the changelog, and by a notice atop "
        "the README of a commit their Hub tag is moved to), gate the Hub "
        "repository, or delete their tags and squash the Hub's history (the refs of the Hub pull requests that staged "
        "them stay: the Hub's API cannot delete them)."))
    review_buffer_days: float = Field(default=2, ge=0, description="Time from a finished retrain to its published release.")
    warn_days: int = Field(default=7, ge=0)
    upstream_approval: Literal["auto", "maintainer"] = Field(
        default="maintainer", description="Who approves a request filed from an upstream opt-out list or revision: "
        "`auto` (the bot, as `upstream:<name>`) or a maintainer's `/kiki approve` on its issue.")


class HubSettings(Strict):
    namespace: str = Field(min_length=1)
    sync_discussions: bool = Field(default=True, description="Mirror removal requests opened as Community "
                                   "discussions of the adapters' Hub repositories to removal issues.")


class KikiConfig(Strict):
    provider: Provider
    policy: Policy
    hub: HubSettings


# ---------------------------------------------------------------- sources/<id>.toml
class Crawler(Strict):
    name: str = Field(min_length=1, description="Crawler name or user-agent identifier.")
    purpose: str = Field(min_length=1)
    behaviour: str = Field(min_length=1, description="Rate limits, captchas, paywalls, logins: what the crawler does and avoids.")
    opt_outs: list[str] = Field(min_length=1, description="Opt-out protocols honoured, e.g. robots.txt, ai.txt, TDM-Reservation.")
    content_description: str = Field(min_length=1, description="Types of websites crawled, geography, languages.")
    access: Literal["web", "api"] = Field(default="web", description=(
        "How the content was fetched: from the website (`web`), or through the host's API (`api`, e.g. GitHub's "
        "REST API), which the website's robots.txt rules do not govern."))


_AUTHOR = re.compile(r"source|provider|model:[\w.-]+/[\w.-]+")


def _author(value: str) -> str:
    if not _AUTHOR.fullmatch(value):
        raise ValueError(f"expected `source`, `provider` or `model:<hub id>` (e.g. model:mistralai/Devstral-Small-2505), "
                         f"got {value!r}")
    return value


# One writer, or a list when a part was written more than one way; kept as a list either way.
Writers = Annotated[list[Annotated[str, AfterValidator(_author)]],
                    BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Payload(Strict):
    """Who wrote each part of a source's records (DESIGN.md section 8): PST 2.5 and 2.6 are answered from this,
    never from a default. `source` = taken verbatim from the source (fixed instruction wording around it does
    not count as content), `provider` = written by the provider's people, `model:<hub id>` = generated by that
    model for the provider. A part written in more than one way lists each (`["source", "provider"]`)."""

    prompt: Writers | None = Field(default=None, description="Who wrote the prompts of chat or prompt/completion records: `source`, `provider` or `model:<hub id>`, or a list of them.")
    response: Writers | None = Field(default=None, description="Who wrote the responses (assistant turns, completions), as for `prompt`.")
    text: Writers | None = Field(default=None, description="Who wrote the text of `text`-format records, as for `prompt` (instead of `prompt` and `response`).")
    note: str | None = Field(default=None, min_length=1, description="What the provider's people or a model wrote, in a sentence (PST 2.5/2.6).")
    summaries: dict[str, HttpUrl] = Field(default_factory=dict, description="Training-content summary of each generating model, by Hub id, where known.")

    @model_validator(mode="after")
    def _parts(self) -> Payload:
        pair, text = self.prompt is not None or self.response is not None, self.text is not None
        if pair == text or (pair and (self.prompt is None or self.response is None)):
            raise ValueError("declare `prompt` and `response` (chat or prompt/completion records) or `text` "
                             "(text records): each `source`, `provider` or `model:<hub id>`")
        if any(v is not None and (len(set(v)) != len(v) or not v) for v in (self.prompt, self.response, self.text)):
            raise ValueError("a list of writers names each writer once, and at least one")
        unknown = set(self.summaries) - set(self.models)
        if unknown:
            raise ValueError(f"`summaries` names {', '.join(sorted(unknown))}, which no part declares as its model")
        return self

    def authors(self) -> dict[str, list[str]]:
        """Each declared part's writers, a single writer as a one-item list."""
        parts = {"prompt": self.prompt, "response": self.response, "text": self.text}
        return {k: v for k, v in parts.items() if v is not None}

    @property
    def models(self) -> list[str]:
        return sorted({a.removeprefix("model:") for w in self.authors().values() for a in w if a.startswith("model:")})

    def by(self, author: str) -> list[str]:
        """The parts `author` (`provider`, or `model` for any model) wrote, in whole or in part."""
        return [k for k, w in self.authors().items() if any(a == author or a.startswith(f"{author}:") for a in w)]

    @property
    def pairs(self) -> bool:
        return self.text is None


class HubData(Strict):
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="Hub dataset repo holding this source's data files.")
    squash_history: bool = Field(default=False, description="Squash the dataset repo's history after a purge.")


UPSTREAM_NAME = r"^[a-z0-9][a-z0-9._-]{0,38}$"


class OptOutList(Strict):
    """An upstream opt-out list the source follows (BigCode's `optouts.jsonl` format): from a URL, or a file of
    a Hub dataset."""

    name: str = Field(pattern=UPSTREAM_NAME, description="Short name; requests it files are by `upstream:<name>`.")
    format: Literal["bigcode"] = Field(default="bigcode", description="BigCode's `optouts.jsonl`: one "
                                       '`{"issue", "author", "optout_repos", "optout_owners"}` object a line.')
    url: HttpUrl | None = Field(default=None, description="Where the list is served (https).")
    hub_dataset: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$", description="Hub dataset holding it.")
    file: str | None = Field(default=None, min_length=1, description="The list's path in `hub_dataset`.")
    revision: str = Field(default="main", min_length=1, description="The `hub_dataset` revision to read.")

    @model_validator(mode="after")
    def _one_place(self) -> OptOutList:
        if (self.url is None) == (self.hub_dataset is None):
            raise ValueError("give exactly one of `url` or `hub_dataset` (with `file`)")
        if (self.hub_dataset is None) != (self.file is None):
            raise ValueError("`hub_dataset` and `file` go together")
        return self


class UpstreamDataset(Strict):
    """The Hub dataset revision the source's records were drawn from: rows the newest revision no longer has are
    removals upstream made. A row is identified by the SHA-256 of `content_field`'s UTF-8 text (or of the row's
    canonical JSON), which the records keep as `_provenance.sha256`; or, with `id_field`, by its id, which the
    records keep as `_provenance.upstream_id` (a row upstream edits keeps its id, not its hash)."""

    name: str = Field(pattern=UPSTREAM_NAME, description="Short name; requests it files are by `upstream:<name>`.")
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="The Hub dataset id.")
    revision: str = Field(pattern=r"^[0-9a-f]{40}$", description="The pinned commit the records were drawn from.")
    files: list[str] = Field(min_length=1, description="The JSONL files of the dataset the source drew from.")
    content_field: str | None = Field(default=None, min_length=1, description="The row field whose text the "
                                      "records' `_provenance.sha256` hashes; default: the whole row's canonical JSON.")
    id_field: str | None = Field(default=None, min_length=1, description="The row field holding each row's id, "
                                 "which records keep as `_provenance.upstream_id`: a record that keeps one is "
                                 "matched by id, not by content hash.")


class Upstream(Strict):
    optout_lists: list[OptOutList] = Field(default_factory=list, description="Opt-out lists to follow.")
    dataset: UpstreamDataset | None = Field(default=None, description="The Hub dataset revision drawn from.")

    @model_validator(mode="after")
    def _names_unique(self) -> Upstream:
        names = [o.name for o in self.optout_lists] + ([self.dataset.name] if self.dataset else [])
        if len(set(names)) != len(names):
            raise ValueError(f"upstream names must differ (they name who filed a request), got {names}")
        return self


class Source(Strict):
    id: str = Field(pattern=NAME)
    name: str = Field(min_length=1)
    category: Category = Field(strict=False)  # TOML has no enums: the value's string is the member
    url: HttpUrl | None = None
    license: licences.Expression = Field(min_length=1, description="SPDX expression of the source as a whole.")
    modality: Modality = Field(default=Modality.TEXT, strict=False)
    content_types: list[str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1, description="ISO 639-1 codes of the content's natural languages.")
    selection: str = Field(min_length=1, description="How this part of the source was selected and filtered.")
    description: str = Field(min_length=1, description="Nature of the content: personal data, copyrighted works, machine-generated.")
    collected_from: dt.date
    collected_to: dt.date
    crawler: Crawler | None = None
    hub_data: HubData | None = None
    upstream: Upstream | None = Field(default=None, description="Upstream takedowns followed: opt-out lists, "
                                      "dataset revisions (the scheduled run files requests for them).")
    payload: Payload | None = Field(default=None, description="Who wrote each part of the records (DESIGN.md section 8); the card refuses to answer PST 2.5/2.6 without it.")
    user_data: Literal["model", "other-services"] | None = Field(default=None, description="Category `2.4` only: interactions with the AI model itself, or with the provider's other services.")

    @model_validator(mode="after")
    def _category_rules(self) -> Source:
        if self.category is Category.CRAWLED and self.crawler is None:
            raise ValueError("category 2.3 (crawled) needs a [crawler] table")
        if self.category is not Category.CRAWLED and self.crawler is not None:
            raise ValueError(f"[crawler] only belongs to category 2.3 sources, not {self.category.value}")
        if (self.category is Category.USER) != (self.user_data is not None):
            raise ValueError("`user_data` (`model` or `other-services`) is required for category 2.4 sources and "
                             "belongs to no other")
        if self.category is Category.SYNTHETIC and self.payload is not None and not self.payload.models:
            raise ValueError("a category 2.5 (synthetic) source's [payload] must name the model that wrote it "
                             "(`model:<hub id>`)")
        if self.collected_to < self.collected_from:
            raise ValueError("collected_to is before collected_from")
        return self

    @property
    def hub_dataset_id(self) -> str | None:
        """The Hub dataset id when `url` points at one: the only form allowed in card metadata."""
        m = re.match(r"^https://huggingface\.co/datasets/([\w.-]+/[\w.-]+)/?$", str(self.url or ""))
        return m.group(1) if m else None


# ---------------------------------------------------------------- adapters/<name>.toml
class BaseModelSpec(Strict):
    id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="Hub id of the exact base model trained on.")
    license: licences.LicenceId = Field(min_length=1, description="SPDX id of the base model's licence (copied from its card).")
    local_path: Path | None = Field(default=None, strict=False, description="Local copy: enables exact token counts and training.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the local copy's `*.safetensors` files in name order (for one file, the Hub's LFS id of it); checked before training.")
    parameters: float = Field(gt=0, description="Parameter count, for the compute estimate.")
    training_compute_flop: float | None = Field(default=None, gt=0, description="Base model's training compute, if published.")
    summary_url: HttpUrl | None = Field(default=None, description="The base model's own training-content summary.")


class Lora(Strict):
    rank: int = Field(ge=1)
    alpha: float = Field(gt=0, description="PEFT-style alpha; mlx-lm scale = alpha / rank.")
    dropout: float = Field(ge=0, lt=1)
    target_modules: list[str] = Field(min_length=1, description="Block-relative module paths, e.g. self_attn.q_proj.")
    num_layers: int = Field(default=16, description="Last N transformer blocks adapted; -1 = all.")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


class Training(Strict):
    iters: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    max_seq_length: int = Field(default=2048, ge=16)
    seed: int = 0
    valid_fraction: float = Field(default=0.05, gt=0, lt=0.5)
    save_every: int = Field(default=100, ge=1)
    steps_per_report: int = Field(default=10, ge=1)
    steps_per_eval: int = Field(default=200, ge=1)
    hosts: list[str] = Field(default_factory=list, description="mlx.launch hosts for data-parallel training.")


class Evaluation(Strict):
    benchmark: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    command: str = Field(min_length=1, description="Shell-free argv string; {adapter} and {base} are substituted; prints results JSON.")
    base_score: float | None = Field(default=None, description="The base model's score, typed in (the card says so, with `caveats`).")
    caveats: str | None = Field(default=None, min_length=1, description="The benchmark's caveats (what it measures, what it does not); required beside any typed-in score.")


class Adapter(Strict):
    name: str = Field(pattern=NAME)
    description: str = Field(min_length=1)
    hub_repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    license: licences.LicenceId = Field(min_length=1, description=(
        "SPDX id of the adapter's own licence (`LicenseRef-<name>` for a custom one): the Hub card's `license:`. "
        "Declared, never the base model's by default."))
    languages: list[str] = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    pipeline_tag: str = "text-generation"
    tags: list[str] = Field(default_factory=list)
    continuous_training: bool = Field(description="PST 1.3: whether the model is continuously trained on new data after the latest collection date (declared: the card never assumes it).")
    intended_use: str = Field(min_length=1)
    limitations: str = Field(min_length=1)
    illegal_content_measures: str = Field(min_length=1, description="PST 3.2: measures to avoid illegal content.")
    other_processing: str | None = Field(default=None, description="PST 3.3 (optional).")
    base_model: BaseModelSpec
    lora: Lora
    training: Training
    eval: Evaluation | None = None
