"""The README metadata the Hub validates: licence identifiers, languages, repository ids, model-index."""

from __future__ import annotations

import re
from typing import Any

import yaml


HUB_LICENSES = frozenset(
    [
        "apache-2.0",
        "mit",
        "openrail",
        "bigscience-openrail-m",
        "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "c-uda",
        "cc",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "wtfpl",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "agpl-3.0",
        "gfdl",
        "gpl",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl",
        "lgpl-2.1",
        "lgpl-3.0",
        "isc",
        "lppl-1.3c",
        "ms-pl",
        "mpl-2.0",
        "odc-by",
        "odbl",
        "openrail++",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "unlicense",
        "zlib",
        "pddl",
        "lgpl-lr",
        "deepfloyd-if-license",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "gemma",
        "unknown",
        "other",
    ]
)
"""Licence identifiers the Hub accepts in card metadata (hub-docs, docs/hub/repositories-licenses.md)."""
MISSING_METADATA = (
    "empty or missing yaml metadata in repo card"
    " (https://huggingface.co/docs/hub/model-cards#model-card-metadata)"
)

_FRONT_MATTER = re.compile(r"^\s*---[\r\n]+([\S\s]*?)[\r\n]+---(?:\r\n|\n|$)")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# --- README metadata ---------------------------------------------------------------------------------


def card_metadata(readme: str) -> Any:
    """The parsed YAML front matter of a card; None without one. Raises yaml.YAMLError."""
    match = _FRONT_MATTER.match(readme)
    return yaml.safe_load(match[1]) if match else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _model_index_errors(model_index: Any) -> list[str]:
    """The structure the Hub requires of `model-index` (what ModelCardData writes from eval_results)."""
    if not isinstance(model_index, list):
        return ['"model-index" must be a list']
    errors = []
    for i, model in enumerate(model_index):
        if not (isinstance(model, dict) and isinstance(model.get("name"), str)):
            errors.append(f'"model-index[{i}]" must be a mapping with a "name"')
            continue
        results = model.get("results")
        for j, result in enumerate(results if isinstance(results, list) else [None]):
            where = f"model-index[{i}].results[{j}]"
            result = result if isinstance(result, dict) else {}
            task, dataset, metrics = result.get("task"), result.get("dataset"), result.get("metrics")
            if not (isinstance(task, dict) and isinstance(task.get("type"), str)):
                errors.append(f'"{where}.task.type" is required')
            if not (
                isinstance(dataset, dict) and all(isinstance(dataset.get(k), str) for k in ("type", "name"))
            ):
                errors.append(f'"{where}.dataset" must have a "type" and a "name"')
            if not (
                isinstance(metrics, list)
                and metrics
                and all(
                    isinstance(m, dict) and isinstance(m.get("type"), str) and "value" in m for m in metrics
                )
            ):
                errors.append(f'"{where}.metrics" must be a non-empty list of {{type, value}}')
    return errors


def validate_card(readme: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) for a card's metadata, checking the keys the Hub validates that cards here use."""
    try:
        metadata = card_metadata(readme)
    except yaml.YAMLError as exc:
        return [f"Invalid YAML in the metadata block: {exc}"], []
    if metadata is None:
        return [], [MISSING_METADATA]
    if not isinstance(metadata, dict):
        return ["The YAML metadata block must be a mapping of keys to values"], []
    errors = [
        f'"license" must be one of the Hub licence identifiers, got {licence!r}'
        for licence in _as_list(metadata.get("license", []))
        if licence not in HUB_LICENSES
    ]
    errors += [
        f'"language" must contain ISO 639 codes such as "en", got {language!r}'
        for language in _as_list(metadata.get("language", []))
        if not (isinstance(language, str) and (_LANGUAGE.match(language) or language == "multilingual"))
    ]
    errors += [
        f'"{key}" must contain repository ids such as "org/name", got {value!r}'
        for key in ("datasets", "base_model")
        for value in _as_list(metadata.get(key, []))
        if not (isinstance(value, str) and _REPO_ID.match(value))
    ]
    if "model-index" in metadata:
        errors += _model_index_errors(metadata["model-index"])
    return errors, []

