"""How two cards differ, in the two ways a reader needs it.

- Field by field (`field_diff`, `describe`, `text_diff`): the drift `card check` reports and the changes
  a release PR lists, every leaf of card.json that differs.
- What the Public Summary of Training Content tells the public differently (`summarise`): per PST
  section, the facts the template asks for (sizes, sources, dates, domains, licences, removals), not every
  byte of the card; the review comment's table. The drift check covers the rest.

Pure.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from kiki_bot.core.cardmodel import Card


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


# ---------------------------------------------------------------- what the summary says differently
SECTIONS = (
    "Header",
    "1.1 Provider",
    "1.2 Model",
    "1.3 Size",
    "2.1 Public datasets",
    "2.3 Crawled data",
    "3.1 Removals",
    "A. Sources",
    "B. Training",
    "C. Evaluation",
)
NONE = "—"

Fact = int | float | str | list[str] | None


@dataclass(frozen=True)
class Change:
    """One row of the review table; values are plain text, escaped when rendered."""

    section: str
    field: str
    before: str
    now: str


def facts(card: Card) -> dict[tuple[str, str], Fact]:
    """The reviewable facts of a card, keyed by (section, field), in the summary's order."""
    s1, s23, removals, ev = card.section1, card.section23, card.section3.removals, card.evaluation
    out: dict[tuple[str, str], Fact] = {
        ("Header", "Version"): card.header.version,
        ("Header", "Last update"): card.header.last_update.isoformat(),
        ("1.1 Provider", "Provider"): s1.provider,
        ("1.1 Provider", "Contact"): s1.provider_contact,
        ("1.2 Model", "Placement date"): s1.placement_date.isoformat(),
    }
    out |= {("1.3 Size", f"Size bin ({m.modality.value})"): m.bin for m in s1.modalities}
    out |= {
        ("1.3 Size", "Latest collection"): s1.latest_collection,
        ("1.3 Size", "Languages"): s1.languages,
        ("2.1 Public datasets", "Large datasets"): [d.name for d in card.section21.large],
        ("2.3 Crawled data", "Crawl period"): s23.period,
        ("2.3 Crawled data", "Domains crawled"): s23.domain_count,
        ("2.3 Crawled data", "Top domains"): [d.domain for d in s23.domains],
        ("3.1 Removals", "Requests received"): removals.received,
        ("3.1 Removals", "Requests approved"): removals.approved,
        ("3.1 Removals", "Requests rejected"): removals.rejected,
        ("3.1 Removals", "Records removed"): removals.records_removed,
        ("A. Sources", "Sources"): [r.id for r in card.sources],
    }
    for row in card.sources:
        out[("A. Sources", f"{row.id} records")] = row.records
        out[("A. Sources", f"{row.id} tokens")] = row.tokens
    out[("A. Sources", "Licences")] = card.fingerprint.licenses
    out |= {("B. Training", key): value for key, value in card.training.items()}
    if ev is not None:
        out |= {
            ("C. Evaluation", "Benchmark"): f"{ev.benchmark} ({ev.metric})",
            ("C. Evaluation", "Base model score"): ev.base,
            ("C. Evaluation", "Adapter score"): ev.adapter,
        }
    return out


def summarise(old: Card | None, new: Card) -> list[Change]:
    """Every fact whose value differs, grouped by PST section; `old` None means a new adapter."""
    was, now = facts(old) if old else {}, facts(new)
    position = {key: i for i, key in enumerate([*now, *(k for k in was if k not in now)])}
    keys = sorted(position, key=lambda k: (SECTIONS.index(k[0]), position[k]))
    pairs = [(key, _blank(was.get(key)), _blank(now.get(key))) for key in keys]
    return [Change(*key, *_show(before, after)) for key, before, after in pairs if before != after]


def _blank(value: Fact) -> Fact:
    """An empty list says as much as a missing one: a new adapter without large datasets changes nothing there."""
    return None if value == [] else value


def _show(before: Fact, now: Fact) -> tuple[str, str]:
    """Lists show what left and what came (or the new order); counts show their delta."""
    if isinstance(before, list) or isinstance(now, list):
        gone = [x for x in before or [] if x not in (now or [])]
        came = [x for x in now or [] if x not in (before or [])]
        if not (gone or came):
            return ", ".join(before or []), ", ".join(now or [])
        removed = f"removed: {', '.join(gone)}" if gone else NONE
        added = f"added: {', '.join(came)}" if came else NONE
        return removed, added
    if isinstance(before, int) and isinstance(now, int):
        return f"{before:,}", f"{now:,} ({now - before:+,})"
    return _text(before), _text(now)


def _text(value: Fact) -> str:
    if value is None:
        return NONE
    return f"{value:,}" if isinstance(value, int) else str(value)
