"""The emulated GitHub's state (plain dataclasses a test seeds and inspects), its limits, and
GitHub's error bodies."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from werkzeug.wrappers import Request

from ..server import Commit, History, abort_with, json_response


HTML_URL = "https://github.com"
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
"""Role -> what GitHub reports in `permission`; the role itself is reported in `role_name`."""

ACTIONS_LOGIN = "github-actions[bot]"
"""Who a job's GITHUB_TOKEN acts as."""
FILE_LIMIT = 100 * 1024 * 1024
"""GitHub refuses files over 100 MiB (pushes and the API alike); the Contents API serves none of them."""
CONTENTS_INLINE_LIMIT = 1024 * 1024
"""Above 1 MiB the Contents API's JSON carries no content (`"content": "", "encoding": "none"`)."""
TOO_LARGE = {"resource": "Blob", "field": "data", "code": "too_large"}
BLOB_MODES = frozenset({"100644", "100755", "120000"})
TREE_MODE = "040000"


@dataclass(frozen=True)


class TreeEntry:
    """One entry of a git tree object: a blob (file) or a tree (directory)."""

    name: str
    mode: str
    type: str
    sha: str


def tree_sha(entries: list[TreeEntry]) -> str:
    """Git's id of a tree object, so trees built here have the shas git itself would give them."""
    def order(entry: TreeEntry) -> bytes:  # git sorts a directory as if its name ended in "/"
        return (entry.name + ("/" if entry.type == "tree" else "")).encode()

    body = b"".join(f"{e.mode.lstrip('0')} {e.name}".encode() + b"\0" + bytes.fromhex(e.sha)
                    for e in sorted(entries, key=order))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()

def short_ref(ref: str | None) -> str | None:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/") if ref else None


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def node_id(kind: str, key: object) -> str:
    """A GraphQL node id in GitHub's legacy form (base64 of `<len>:<Type><id>`), stable per object."""
    return base64.b64encode(f"{len(kind):02d}:{kind}{key}".encode()).decode()


def reactions(url: str) -> dict[str, Any]:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}

DOCS = "https://docs.github.com/rest"
USERS_SINCE = "2020-01-01T00:00:00Z"
"""When every emulated account was created."""
CONTENTS_LIMIT = 1024 * 1024
"""Above 1 MiB GitHub shows no diff of a file."""


@dataclass


class Label:
    name: str
    color: str = "ededed"  # GitHub's colour for labels created implicitly by adding them to an issue
    description: str | None = None


@dataclass


class Comment:
    id: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass


class Pull:
    """What makes an issue a pull request."""

    head: str
    base: str
    head_sha: str  # last known tip of `head`, kept for when the branch is deleted
    draft: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None


@dataclass


class Issue:
    """An issue, or a pull request when `pull` is set: both share one number sequence per repository."""

    id: int
    number: int
    title: str
    body: str | None
    user: str
    labels: list[str]
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    comments: list[Comment] = field(default_factory=list)
    pull: Pull | None = None


@dataclass


class Release:
    id: int
    tag_name: str
    name: str | None
    body: str | None
    target_commitish: str
    draft: bool
    prerelease: bool
    author: str
    created_at: datetime


@dataclass


class Dispatch:
    """A `repository_dispatch` (name = event_type) or `workflow_dispatch` (name = workflow file) request, or
    a `push` that started the workflow `name`.

    A workflow dispatch or push also stands for the workflow run it starts: tests move it along by setting
    `status` ("queued", "in_progress", "completed") and `conclusion` ("success", "failure", ...).
    """

    event: str
    name: str
    payload: dict[str, Any]  # client_payload, or the workflow inputs
    ref: str | None = None
    id: int = 0
    created_at: datetime | None = None
    status: str = "queued"
    conclusion: str | None = None
    actor: str = ""  # who sent it: the event's `sender`


@dataclass


class Repo:
    id: int
    full_name: str
    default_branch: str
    private: bool
    history: History
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    tags: dict[str, str] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role
    releases: list[Release] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)  # git data: blob sha -> content
    trees: dict[str, list[TreeEntry]] = field(default_factory=dict)  # tree sha -> its entries
    commit_trees: dict[str, str] = field(default_factory=dict)  # commit sha -> root tree sha

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    def resolve(self, ref: str) -> str | None:
        """A branch, tag (optionally as `refs/heads/...`/`refs/tags/...`) or commit sha -> commit sha."""
        return self.history.resolve(ref, self.branches, self.tags)

    def files(self, ref: str | None = None) -> dict[str, bytes]:
        sha = self.resolve(ref or self.default_branch)
        if sha is None:
            raise KeyError(ref)
        return dict(self.history[sha].files)

    def push(self, branch: str, changes: dict[str, bytes | None], message: str, author: str) -> Commit:
        """Commit `changes` (None deletes a path) on `branch`, creating it from the default branch."""
        parent = self.branches.get(branch) or self.branches[self.default_branch]
        commit = self.history.commit_changes(parent, changes, message, author)
        self.branches[branch] = commit.sha
        return commit

    def workflows(self, ref: str | None = None) -> dict[str, int]:
        """Workflow file name -> id, for the YAML files under .github/workflows at `ref` (the default branch)."""
        prefix = ".github/workflows/"
        return {
            path.removeprefix(prefix): zlib.crc32(path.encode())
            for path in self.files(ref)
            if path.startswith(prefix) and path.endswith((".yml", ".yaml")) and "/" not in path[len(prefix) :]
        }


def fail(status: int, message: str, **extra: Any) -> NoReturn:
    """GitHub's error body: the message, where the docs are, and the status (a string, as GitHub sends it)."""
    abort_with(json_response({"message": message, "documentation_url": DOCS, "status": str(status), **extra}, status))


BODY_LIMIT = 65536
"""The most characters GitHub takes in an issue's, a pull request's or a comment's body: over it, its API answers
422 "body is too long (maximum is 65536 characters)" (seen in its answers: googleapis/release-please#1034,
trstringer/manual-approval#89)."""
RELEASE_BODY_LIMIT = 125_000
"""A release's notes, at most (422 "body is too long (maximum is 125000 characters)", changesets' releases hit it)."""
LABEL_LIMITS = {"name": 50, "description": 100}
"""A label's name and description, at most (OpenAPI, "Create a label": the description "Must be 100 characters or
fewer"; the name's 50 is in GitHub's answer, github/docs#32156)."""


def refuse_long(resource: str, field_name: str, text: object, limit: int, code: str = "custom") -> None:
    """GitHub's 422 for a text over its limit, in its words: `<field> is too long (maximum is <limit> ...)`."""
    if isinstance(text, str) and len(text) > limit:
        invalid(resource, code, field_name, f"{field_name} is too long (maximum is {limit} characters)")


def invalid(resource: str, code: str, field_name: str, message: str | None = None) -> NoReturn:
    error = {"resource": resource, "code": code, "field": field_name}
    fail(422, "Validation Failed", errors=[error | ({"message": message} if message else {})])


def request_json(request: Request) -> Any:
    return request.get_json(force=True, silent=True)
