"""Release tags `<adapter>/v<semver>`: parsed strictly, checked against the project and the last release."""

from __future__ import annotations

import re
from dataclasses import dataclass

import semver

from kiki_bot.errors import BadInput

TAG = re.compile(r"^(?P<adapter>[a-z0-9][a-z0-9._-]*)/v(?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")


@dataclass(frozen=True)
class Tag:
    adapter: str
    version: str

    def __str__(self) -> str:
        return f"{self.adapter}/v{self.version}"


def parse(text: str) -> Tag:
    """`devstral-cpp-lora/v0.4.4` → Tag; anything else is bad input that says the expected form."""
    text = text.removeprefix("refs/tags/")
    m = TAG.match(text)
    if not m or not semver.Version.is_valid(m["version"]):
        raise BadInput("tag", f"{text!r} is not `<adapter>/v<major>.<minor>.<patch>` (e.g. devstral-cpp-lora/v0.4.4)")
    return Tag(m["adapter"], m["version"])


def newer(version: str, than: str | None) -> bool:
    return than is None or semver.Version.parse(version) > semver.Version.parse(than)


def next_patch(version: str) -> str:
    return str(semver.Version.parse(version).bump_patch())
