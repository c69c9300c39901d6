"""Release tags `<adapter>/v<semver>`: parsed strictly, checked against the project and the last release;
the review branch `kiki/release/<adapter>/<version>` each release opens; and the label that marks a removal
request: the names the router (kiki_bot.events) keys GitHub events on.

semver is imported where a version is compared, so routing on branch names and labels loads no
third-party library."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiki_bot.core.errors import BadInput

VERSION = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"
RELEASE_BRANCH = "kiki/release/"
REMOVAL_LABEL = "removal-request"  # the issue form applies it (render/templates/init/removal-request.yml)
TAG = re.compile(rf"^(?P<adapter>[a-z0-9][a-z0-9._-]*)/v(?P<version>{VERSION})$")


@dataclass(frozen=True)
class Tag:
    adapter: str
    version: str

    def __str__(self) -> str:
        return f"{self.adapter}/v{self.version}"


def parse(text: str, example: str = "example-lora") -> Tag:
    """`example-lora/v0.1.0` → Tag; anything else is bad input that says the expected form, with an example
    made of `example` (the user's own adapter name, where the caller knows it)."""
    import semver

    text = text.removeprefix("refs/tags/")
    m = TAG.match(text)
    if not m or not semver.Version.is_valid(m["version"]):
        raise BadInput("tag", f"{text!r} is not `<adapter>/v<major>.<minor>.<patch>` (e.g. {example}/v0.1.0)")
    return Tag(m["adapter"], m["version"])


def parse_version(text: str) -> str:
    """A card version: `<major>.<minor>.<patch>` (semver, an optional pre-release), as release tags carry."""
    import semver

    if not re.fullmatch(VERSION, text) or not semver.Version.is_valid(text):
        raise BadInput("version", f"{text!r} is not a semantic version `<major>.<minor>.<patch>` (e.g. 0.2.0)")
    return text


def newer(version: str, than: str | None) -> bool:
    import semver

    return than is None or semver.Version.parse(version) > semver.Version.parse(than)


def next_patch(version: str) -> str:
    import semver

    return str(semver.Version.parse(version).bump_patch())


def release_branch(tag: Tag) -> str:
    """The review PR's head branch of a release."""
    return f"{RELEASE_BRANCH}{tag.adapter}/{tag.version}"


def of_release_branch(branch: str) -> str:
    """kiki/release/<adapter>/<version> → `<adapter>/v<version>`, the tag its review PR was opened for (parsed
    strictly later, like any tag)."""
    adapter, _, version = branch.removeprefix(RELEASE_BRANCH).rpartition("/")
    return f"{adapter}/v{version}"
