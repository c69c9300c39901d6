"""The user's model repository (DESIGN.md section 2) loaded into the validated models of `kiki_bot.core.config`.

Every file is checked on load, in pydantic's strict mode; every problem of every file is reported at once,
each naming the file, line, key and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

# Callers import the models from here too (`from kiki_bot.repo.project import Adapter`).
from kiki_bot.core.config import Adapter, Category, HubData, KikiConfig, Modality, Payload, Source  # noqa: F401
from kiki_bot.core.errors import BadInput, explain, key_name

M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------- loading
Problems = list[tuple[str, str]]
_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'""")
_TOML_AT = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(k[1:-1] if k[0] in "\"'" else k for k in re.findall(_KEY, dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line of each table header and key of a TOML file that parsed: tomllib keeps no positions, and an
    error that says `line 7` is found in a second. Multi-line strings and arrays are skipped over."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing, depth = "", 0
    for no, line in enumerate(text.splitlines(), 1):
        if closing:
            closing = "" if closing in line else closing
            continue
        if depth:
            bare = _STRING.sub("", line).split("#")[0]
            depth += bare.count("[") - bare.count("]")
            continue
        if m := _HEADER.match(line):
            table = _parts(m.group(1))
            lines.setdefault(table, no)
        elif m := _ASSIGN.match(line):
            lines.setdefault(table + _parts(m.group(1)), no)
            rest = line[m.end():]
            closing = next((q for q in ('"""', "'''") if rest.count(q) == 1), "")
            bare = _STRING.sub("", rest).split("#")[0]
            depth = max(0, bare.count("[") - bare.count("]"))
    return lines


def _line(lines: dict[tuple[str, ...], int], loc: tuple) -> int:
    """The line of the key at `loc`, or of the nearest table that holds it (0: none in the file)."""
    names = tuple(str(p) for p in loc if not isinstance(p, int))
    return next((lines[names[:n]] for n in range(len(names), 0, -1) if names[:n] in lines), 0)


def _where(path: Path, line: int, loc: tuple) -> str:
    place = f"{path}:{line}" if line else str(path)
    return f"{place}: key `{key_name(loc)}`" if loc else place


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> tuple[str, str]:
    """tomllib's message with its position as file:line:column (the end of the file for a cut-off file)."""
    if m := _TOML_AT.match(str(exc)):
        return f"{path}:{m.group(2)}:{m.group(3)}", f"not valid TOML: {m.group(1)}"
    lines = text.split("\n")
    message = str(exc).removesuffix(" (at end of document)")
    return f"{path}:{len(lines)}:{len(lines[-1]) + 1}", f"not valid TOML: {message} (the file ends too early)"


def _check(model: type[M], path: Path, extra: dict | None = None) -> tuple[M | None, Problems]:
    """Load and validate one TOML file: the model, or every problem found in it, in line order."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        return None, [(str(path), f"not UTF-8 text (byte {exc.start})")]
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_error(path, text, exc)]
    try:
        return model.model_validate({**(extra or {}), **data}), []
    except ValidationError as exc:
        lines = key_lines(text)
        found = sorted(((_line(lines, loc), loc, msg) for loc, msg in explain(model, exc.errors(), "toml")),
                       key=lambda f: f[0])
        return None, [(_where(path, line, loc), msg) for line, loc, msg in found]


class Project:
    """A loaded model repository: config, adapters and sources, all validated, cross-references checked."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not (self.root / "kiki.toml").is_file():
            raise BadInput(str(self.root / "kiki.toml"), "not a kiki-bot project: kiki.toml missing (run `kiki-bot init`)")
        config, problems = _check(KikiConfig, self.root / "kiki.toml")
        self.sources: dict[str, Source] = self._load_all("sources", Source, "id", problems)
        self.adapters: dict[str, Adapter] = self._load_all("adapters", Adapter, "name", problems)
        for adapter in self.adapters.values():
            path = self.root / "adapters" / f"{adapter.name}.toml"
            lines = key_lines(path.read_text(encoding="utf-8"))
            for i, sid in enumerate(adapter.sources):
                if sid not in self.sources and not (self.root / "sources" / f"{sid}.toml").is_file():
                    known = ", ".join(sorted(self.sources)) or "none"
                    problems.append((_where(path, _line(lines, ("sources",)), ("sources", i)),
                                     f"unknown source `{sid}`: no sources/{sid}.toml (known: {known})"))
        if problems or config is None:
            raise BadInput.of(problems)
        self.config = config

    def _load_all(self, folder: str, model: type[M], id_key: str, problems: Problems) -> dict:
        """Every file of `folder`, keyed by its file name (the id); the problems of the others go to `problems`."""
        items = {}
        for path in sorted((self.root / folder).glob("*.toml")):
            item, found = _check(model, path, {id_key: path.stem})
            problems += found
            if item is not None:
                if getattr(item, id_key) != path.stem:
                    line = _line(key_lines(path.read_text(encoding="utf-8")), (id_key,))
                    problems.append((_where(path, line, (id_key,)),
                                     f"must equal the file name `{path.stem}` (or be left out)"))
                items[path.stem] = item
        return items

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def ledger_path(self) -> Path:
        return self.root / "compliance" / "removals.jsonl"

    def upstream_evidence(self, source: str) -> Path:
        """The record of the checks of a source's upstream opt-out lists and dataset revision."""
        return self.root / "compliance" / "upstream" / f"{source}.jsonl"

    def card_dir(self, adapter: str) -> Path:
        return self.root / "cards" / adapter

    def adapter(self, name: str) -> Adapter:
        if name not in self.adapters:
            known = ", ".join(sorted(self.adapters)) or "none"
            raise BadInput("adapter", f"unknown adapter {name!r} (known: {known})")
        return self.adapters[name]

    def adapter_sources(self, adapter: Adapter) -> list[Source]:
        return [self.sources[s] for s in adapter.sources]

    @cached_property
    def base_model_path(self) -> dict[str, Path | None]:
        """Resolved local base-model paths per adapter (relative paths are relative to the project)."""
        out: dict[str, Path | None] = {}
        for name, a in self.adapters.items():
            p = a.base_model.local_path
            out[name] = None if p is None else (p if p.is_absolute() else self.root / p)
        return out
