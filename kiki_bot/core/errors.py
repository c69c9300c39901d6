"""The two ways a command can fail, each with its exit code (DESIGN.md section 4), and pydantic's
validation errors retold in kiki-bot's words (key, what was expected, what was found).

No pydantic import here: the CLI imports this module on every run; errors arrive as `exc.errors()` dicts.
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from collections.abc import Iterable
from enum import Enum
from typing import Any, Literal


class KikiError(Exception):
    """Base of the bot's own errors; `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInput(KikiError):
    """Input that cannot be used: names where (file, line, field) and what was expected. Exit 2."""

    exit_code = 2

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}" if where else problem)
        self.lines = [str(self)]  # one `where: problem` per problem, for a list (a PR comment's items)

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> BadInput:
        """One error for every problem found, so a user fixes a file in one go, not one run per mistake."""
        if len(problems) == 1:
            return cls(*problems[0])
        exc = cls("", f"{len(problems)} problems:" + "".join(f"\n  {w}: {p}" for w, p in problems))
        exc.lines = [f"{w}: {p}" for w, p in problems]
        return exc

    @classmethod
    def validation(cls, model: Any, errors: list[dict], where: str, fmt: Format = "json") -> BadInput:
        """pydantic's `errors` of validating a file at `where` against `model`, each as `where: key `k`: ...`."""
        return cls.of([(f"{where}: key `{key_name(loc)}`" if loc else where, message)
                       for loc, message in explain(model, errors, fmt)])


class CheckFailed(KikiError):
    """A check found a problem (drift, broken ledger, missed deadline). Exit 1."""

    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` (compared case-insensitively), if any is close."""
    import difflib

    spelled = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), spelled, n=1, cutoff=0.6)
    return spelled[close[0]] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    found = closest(word, choices)
    return f"did you mean `{found}`?" if found else None


# ---------------------------------------------------------------- pydantic errors in kiki-bot's words
Format = Literal["toml", "json"]
_OBJECT = {"toml": "a table", "json": "a JSON object"}
_DATE = {"toml": "a date such as 2025-09-01 (a TOML date: no quotes)", "json": "an ISO date string such as \"2025-09-01\""}
_TYPES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "list_type": "an array", "tuple_type": "an array",
    "set_type": "an array", "url_type": "a URL", "datetime_type": "a date and time with a zone",
}


def key_name(loc: tuple) -> str:
    """`provider.sme`, `sources[1]`: a location as the user wrote it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def found(value: Any, fmt: Format) -> str:
    """What the user wrote, escaped and cut short (it may come from scraped data)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = json.dumps(value[:60] + ("…" if len(value) > 60 else ""))
        return f"the string {text}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, dt.datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return _OBJECT[fmt]
    return type(value).__name__


def model_at(model: Any, loc: tuple) -> Any:
    """The pydantic model that holds the keys at `loc` within `model` (list indices skipped), or None."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(str(part))
        current = next((t for t in _members(field.annotation) if hasattr(t, "model_fields")), None) if field else None
        if current is None:
            return None
    return current


def _members(ann: Any) -> list[Any]:
    """The types a (possibly optional, list or literal) annotation is made of."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType, list, tuple, set, dict):
        return [m for a in typing.get_args(ann) for m in _members(a)]
    return [ann]


def expected_kind(ann: Any, fmt: Format) -> str:
    """What a value of this annotation is written as, in words."""
    if typing.get_origin(ann) is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(ann))
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return " or ".join(expected_kind(a, fmt) for a in typing.get_args(ann) if a is not type(None))
    if typing.get_origin(ann) in (list, tuple, set):
        return "an array"
    if isinstance(ann, type) and issubclass(ann, Enum):
        return "one of " + ", ".join(json.dumps(m.value) for m in ann)
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dt.date: _DATE[fmt]}
    if ann in simple:
        return simple[ann]
    if hasattr(ann, "model_fields"):
        return _OBJECT[fmt]
    return "a URL" if "Url" in getattr(ann, "__name__", "") else "a string"


def explain(model: Any, errors: list[dict], fmt: Format) -> list[tuple[tuple, str]]:
    """(location, message) for each of pydantic's `errors` of validating `model`: what was expected and what
    was found. An unknown key beside a missing one is reported once, as a misspelling of the missing key."""
    missing = {e["loc"] for e in errors if e["type"] == "missing"}
    out: list[tuple[tuple, str]] = []
    for e in errors:
        loc = e["loc"]
        if e["type"] == "extra_forbidden":
            parent, key = loc[:-1], str(loc[-1])
            allowed = sorted(getattr(model_at(model, parent), "model_fields", ()))
            gone = [str(m[-1]) for m in missing if m[:-1] == parent]
            if (guess := closest(key, gone)) is not None:
                missing.discard((*parent, guess))
            guess = guess or closest(key, allowed)
            hint = f"did you mean `{guess}`?" if guess else f"expected one of: {', '.join(allowed)}"
            out.append((loc, f"unknown key `{key}` ({hint})"))
    for e in errors:
        if e["type"] == "extra_forbidden" or (e["type"] == "missing" and e["loc"] not in missing):
            continue
        out.append((e["loc"], _message(model, e, fmt)))
    return out


def _message(model: Any, e: dict, fmt: Format) -> str:
    kind, ctx, loc = e["type"], e.get("ctx") or {}, e["loc"]
    got = found(e.get("input"), fmt)
    if kind == "missing":
        holder = model_at(model, loc[:-1])
        field = getattr(holder, "model_fields", {}).get(str(loc[-1]))
        return "required key is missing" + (f" (expected {expected_kind(field.annotation, fmt)})" if field else "")
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", e["msg"]))
    if kind == "json_invalid":
        return f"not valid JSON ({ctx.get('error')})"
    if kind == "date_type" or kind.startswith("date_"):
        return f"expected {_DATE[fmt]}, got {got}"
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected {_OBJECT[fmt]}, got {got}"
    if kind in ("literal_error", "enum"):
        return f"expected one of {ctx['expected']}, got {got}"
    bounds = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, name = bounds[kind]
        return f"expected a number {words} {ctx[name]}, got {got}"
    if kind == "string_too_short":
        return "expected a non-empty string" if ctx.get("min_length") == 1 else (
            f"expected at least {ctx['min_length']} characters, got {got}")
    if kind == "string_too_long":
        return f"expected at most {ctx['max_length']} characters"
    if kind in ("too_short", "too_long"):
        words = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length", ctx.get("max_length"))
        return f"expected {words} {limit} item(s), got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"expected a string matching {ctx['pattern']}, got {got}"
    if kind.startswith("url_"):
        return f"expected an http(s) URL such as https://example.org, got {got}"
    return f"{e['msg']}, got {got}"
