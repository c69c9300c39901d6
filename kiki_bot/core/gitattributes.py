"""Which paths Git LFS tracks, read from `.gitattributes` files the way git reads them (gitattributes(5)).

The GitHub API writes plain git blobs. A path whose attributes say `filter=lfs` would then hold the data itself
where every LFS client expects a pointer, so the bot refuses to write such a path; this module only decides
(no I/O): the caller passes the text of the `.gitattributes` files on the way to each path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Rule:
    """The `.gitattributes` line that decides a path's `filter` attribute."""

    file: str  # `.gitattributes` or `data/.gitattributes`
    line: int  # 1-based
    text: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: `{self.text}`"


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    """A gitignore-style glob: `*` and `?` stop at `/`, `**/` is any number of directories, `/**` all below."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "/.*", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            members = pattern[i + 1 : end]
            negated = members[:1] in ("!", "^")
            out += "[" + ("^" if negated else "") + re.escape(members[negated:]).replace("\\-", "-") + "]"
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _matches(pattern: str, relative: str) -> bool:
    """Whether a pattern of a `.gitattributes` matches a file at `relative` (a path below that file's folder).
    A pattern ending in `/` names a directory and, in attributes files, matches no file below it."""
    if pattern.endswith("/"):
        return False
    if "/" not in pattern:
        return bool(_regex(pattern).fullmatch(relative.rsplit("/", 1)[-1]))
    return bool(_regex(pattern.lstrip("/")).fullmatch(relative))


def _filter_of(words: list[str]) -> str | None:
    """What a line does to `filter`: its value, "" when it unsets it (`-filter`, `!filter`), None if silent."""
    for word in reversed(words):
        if word.startswith("filter="):
            return word.removeprefix("filter=")
        if word in ("-filter", "!filter", "filter"):
            return "" if word != "filter" else "set"
    return None


def lfs_rule(path: str, attributes: dict[str, str]) -> Rule | None:
    """The line that makes `path` a Git LFS file, or None. `attributes` maps each `.gitattributes` path
    (`.gitattributes`, `data/.gitattributes`, ...) to its text; a deeper file and a later line win."""
    decided: tuple[str, Rule] | None = None
    for file in sorted(attributes, key=lambda f: f.count("/")):
        folder = file.removesuffix(".gitattributes")
        if not path.startswith(folder):
            continue
        for number, line in enumerate(attributes[file].splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith(("#", "[attr]")):
                continue
            state = _filter_of(words[1:])
            if state is not None and _matches(words[0], path[len(folder):]):
                decided = (state, Rule(file, number, line.strip()))
    return decided[1] if decided and decided[0] == "lfs" else None
