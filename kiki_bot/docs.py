"""The configuration reference in README.md, generated from the pydantic models of kiki_bot.core.config.

    python -m kiki_bot.docs                     print the reference
    python -m kiki_bot.docs --write README.md   replace the section between the markers
    python -m kiki_bot.docs --check README.md   exit 1 when the section is stale

Each table lists a file's (or table's) keys: type and constraints, whether it is required or its default,
and the field's description.
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel, HttpUrl
from pydantic.fields import FieldInfo

from kiki_bot.core.config import Adapter, Category, KikiConfig, Source

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
COMMAND = "python -m kiki_bot.docs --write README.md"

FROM_FILE_NAME = {(Adapter, "name"), (Source, "id")}
"""Keys that default to the file name (and must equal it when given)."""

CATEGORY_NAMES = {
    Category.PUBLIC: "publicly available datasets",
    Category.LICENSED: "licensed private data",
    Category.PRIVATE_THIRD_PARTY: "other private third-party data",
    Category.CRAWLED: "crawled and scraped online data",
    Category.USER: "user data",
    Category.SYNTHETIC: "synthetic data",
    Category.OTHER: "other data",
}

DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("Provider", "website"): "The provider's website.",
    (
        "Provider",
        "established_in_eu",
    ): "Established in the Union; when false, `authorised_representative` is required.",
    ("Provider", "code_of_practice_signatory"): "Signatory of the GPAI Code of Practice.",
    ("Provider", "copyright_policy_url"): "The provider's copyright policy (Art. 53(1)(c)).",
    (
        "Policy",
        "removal_window_days",
    ): "Days from a removal request to its deadline: a release without the records.",
    ("Policy", "approve_permission"): "Least repository role whose `/kiki approve` or `/kiki reject` counts.",
    (
        "Policy",
        "missed_deadline_fallback",
    ): "On a missed deadline: gate the affected Hub repos, make them private, or only report.",
    (
        "Policy",
        "warn_days",
    ): "Warn on a request this many days before its deadline when no release is planned.",
    ("HubSettings", "namespace"): "Hub user or organisation that owns the adapter repositories.",
    ("Adapter", "name"): "Adapter name; release tags are `<name>/v<semver>`.",
    ("Adapter", "description"): "What the adapter does (model card and PST 1.2).",
    ("Adapter", "hub_repo"): "Hub model repository the adapter is published to.",
    ("Adapter", "languages"): "ISO 639-1 codes of the languages the adapter was trained for.",
    ("Adapter", "sources"): "Ids of the data sources (`sources/<id>.toml`) trained on.",
    ("Adapter", "pipeline_tag"): "Hub pipeline tag of the card.",
    ("Adapter", "tags"): "Extra Hub tags of the card.",
    ("Adapter", "intended_use"): "Intended use (model card).",
    ("Adapter", "limitations"): "Known limitations and uses to avoid (model card).",
    ("Adapter", "base_model"): "The base model the adapter modifies.",
    ("Adapter", "lora"): "LoRA parameters.",
    ("Adapter", "training"): "mlx-lm training parameters.",
    ("Adapter", "eval"): "Evaluation run after training; its score goes on the card.",
    ("Lora", "rank"): "LoRA rank r.",
    ("Lora", "dropout"): "LoRA dropout.",
    ("Training", "iters"): "Training iterations.",
    ("Training", "batch_size"): "Batch size.",
    ("Training", "learning_rate"): "Learning rate.",
    ("Training", "max_seq_length"): "Longer records are truncated to this many tokens.",
    ("Training", "seed"): "Seed of the data split and training.",
    ("Training", "valid_fraction"): "Share of the records held out for validation.",
    ("Training", "save_every"): "Checkpoint every N iterations (a re-run resumes from the last one).",
    ("Training", "steps_per_report"): "Training loss reported every N iterations.",
    ("Training", "steps_per_eval"): "Validation loss computed every N iterations.",
    ("Evaluation", "benchmark"): "Benchmark name shown on the card.",
    ("Evaluation", "metric"): "Metric name shown on the card.",
    ("Source", "id"): "Source id: the name of `data/<id>/` and of `_provenance.source`.",
    ("Source", "name"): "Name of the source in the PST.",
    ("Source", "category"): "PST section 2 category.",
    ("Source", "url"): "Where the source is (a Hub dataset URL makes it a dataset of the card metadata).",
    ("Source", "modality"): "Modality of the content.",
    ("Source", "content_types"): "Types of content, e.g. `source code (C)`.",
    ("Source", "collected_from"): "First day of collection.",
    ("Source", "collected_to"): "Last day of collection.",
    ("Source", "crawler"): "Crawler facts (category `2.3` only).",
    ("Source", "hub_data"): "Hub dataset holding this source's data files.",
    ("Crawler", "purpose"): "What the crawler collected the content for.",
}
"""Descriptions of the keys whose pydantic Field has none; a Field description always wins."""

RULES = {
    "provider": "When `established_in_eu = false`, `authorised_representative` is required (Art. 54).",
    "sources": "A category `2.3` source needs a `[crawler]` table, and only those may have one; "
    "`collected_to` may not be before `collected_from`; a category `2.4` source needs `user_data`, and the card "
    "needs every source's `[payload]`.",
    "adapters": "Every id in `sources` must name a file `sources/<id>.toml`.",
}


def _type(annotation: object) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:  # a list item's validators (licence ids) do not change its type
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}s"
    if origin is dict:
        return f"table of {_type(args[1])}s by {_type(args[0])}"
    if isinstance(annotation, type):
        if issubclass(annotation, Category):
            return "one of " + ", ".join(f"`{c.value}` ({CATEGORY_NAMES[c]})" for c in annotation)
        if issubclass(annotation, enum.Enum):
            return "one of " + ", ".join(f"`{c.value}`" for c in annotation)
        simple = {
            str: "string",
            int: "integer",
            float: "number",
            bool: "boolean",
            dt.date: "date (YYYY-MM-DD)",
            HttpUrl: "URL",
            Path: "path",
        }
        if annotation in simple:
            return simple[annotation]
    return str(annotation)


def _constraints(field: FieldInfo) -> list[str]:
    is_list = typing.get_origin(field.annotation) is list
    out = []
    for meta in field.metadata:
        for attr, text in (
            ("min_length", "at least {} item(s)" if is_list else "at least {} character(s)"),
            ("ge", "≥ {}"),
            ("gt", "> {}"),
            ("le", "≤ {}"),
            ("lt", "< {}"),
            ("pattern", "matches `{}`"),
        ):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append("non-empty" if attr == "min_length" and value == 1 else text.format(value))
    return out


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _default(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    if (model, name) in FROM_FILE_NAME:
        return "optional: the file name"
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return f"`{_toml(field.default_factory())}`"
    if field.default is None:
        return "optional"
    return f"`{_toml(field.default)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table(model: type[BaseModel]) -> str:
    """One Markdown table of a model's keys (nested tables appear as `table` with their own section)."""
    rows = ["| key | type | required / default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        nested = [sub for key, sub in _nested(model) if key == name]
        kind = (
            f"table `[{name}]`, below"
            if nested
            else ", ".join([_type(field.annotation), *_constraints(field)])
        )
        text = field.description or DESCRIPTIONS.get((model.__name__, name), "")
        rows.append(f"| `{name}` | {_cell(kind)} | {_default(model, name, field)} | {_cell(text)} |")
    return "\n".join(rows)


def _nested(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    out = []
    for name, field in model.model_fields.items():
        for cand in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                out.append((name, cand))
    return out


def _file_section(
    title: str, intro: str, model: type[BaseModel], rules: str | None, top_level: bool
) -> list[str]:
    parts = [f"### `{title}`", "", intro, ""]
    if rules:
        parts += [rules, ""]
    if top_level:
        parts += [table(model), ""]
    return parts + _tables(model)


def _tables(model: type[BaseModel], prefix: str = "") -> list[str]:
    """A section per nested table, tables within tables too (`[a.b]`, `[[a.c]]` for a list of tables)."""
    parts = []
    for key, sub in _nested(model):
        many = typing.get_origin(model.model_fields[key].annotation) is list
        name = f"[[{prefix}{key}]]" if many else f"[{prefix}{key}]"
        parts += [f"#### `{name}`", "", table(sub), "", *_tables(sub, f"{prefix}{key}.")]
    return parts


def config_reference() -> str:
    """The Markdown reference of kiki.toml, adapters/<name>.toml and sources/<id>.toml."""
    parts = [
        f"<!-- Generated from kiki_bot/core/config.py by `{COMMAND}`; do not edit by hand. -->",
        "",
        (
            "Every file is validated when it is loaded: an unknown key, a wrong type or a missing required key is an "
            "error (exit 2) that names the file, the key and what was expected."
        ),
        "",
    ]
    parts += _file_section(
        "kiki.toml",
        "The provider's identity, the removal and licence policy, and the Hub namespace: three tables.",
        KikiConfig,
        RULES["provider"],
        top_level=False,
    )
    parts += _file_section(
        "adapters/<name>.toml",
        "One adapter; release tags are `<name>/v<semver>`.",
        Adapter,
        RULES["adapters"],
        top_level=True,
    )
    parts += _file_section(
        "sources/<id>.toml",
        "One data source; its records live in `data/<id>/*.jsonl`.",
        Source,
        RULES["sources"],
        top_level=True,
    )
    return "\n".join(parts).rstrip("\n") + "\n"


def update(readme: str) -> str:
    """`readme` with the text between the markers replaced by the current reference."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README must contain {START} and then {END}, once each")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{config_reference()}{END}{tail}"


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(config_reference())
        return 0
    if len(argv) != 2 or argv[0] not in ("--write", "--check"):
        sys.stderr.write(__doc__ or "")
        return 2
    path = Path(argv[1])
    text = path.read_text(encoding="utf-8")
    fresh = update(text)
    if argv[0] == "--check":
        if fresh != text:
            sys.stderr.write(f"{path}: the configuration reference is stale; run `{COMMAND}`\n")
            return 1
        return 0
    if fresh != text:
        path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
