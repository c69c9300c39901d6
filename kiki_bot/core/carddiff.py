"""Field-level differences between two card records: what a reviewer needs to see, not a text diff."""

from __future__ import annotations

import difflib
import json
from typing import Any


def field_diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, old value, new value) for every leaf that differs; lists of records are keyed by id."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += field_diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and _keyed(old) and _keyed(new):
        return field_diff({_key(x): x for x in old}, {_key(x): x for x in new}, path)
    return [] if old == new else [(path, old, new)]


def _keyed(items: list) -> bool:
    return bool(items) and all(isinstance(x, dict) and ("id" in x or "version" in x) for x in items)


def _key(item: dict) -> str:
    return str(item.get("id", item.get("version")))


def describe(diffs: list[tuple[str, Any, Any]], limit: int = 40) -> list[str]:
    lines = [f"{path}: {_short(old)} → {_short(new)}" for path, old, new in diffs[:limit]]
    if len(diffs) > limit:
        lines.append(f"… and {len(diffs) - limit} more fields")
    return lines


def _short(value: Any, width: int = 80) -> str:
    """The value as JSON (what card.json holds), never a Python repr."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def text_diff(name: str, committed: str, expected: str, limit: int = 30) -> list[str]:
    lines = list(difflib.unified_diff(committed.splitlines(), expected.splitlines(),
                                      f"{name} (committed)", f"{name} (from data)", lineterm="", n=0))
    return lines[:limit] + ([f"… {len(lines) - limit} more diff lines"] if len(lines) > limit else [])
