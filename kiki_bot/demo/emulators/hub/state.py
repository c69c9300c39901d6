"""The emulated Hub's state (repositories, LFS objects, discussions) and the Hub's error answers."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from werkzeug.wrappers import Request

from ..server import Commit, History, abort_with, git_blob_sha, json_response


GITATTRIBUTES = b"""\
*.bin filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""
"""The Hub commits a .gitattributes in every new repository ("initial commit"); an abridged one here."""

LFS_THRESHOLD = 10 * 1024 * 1024
"""The Hub takes files over 10 MB only through LFS."""
_POINTER = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")

KINDS = {"models": "model", "datasets": "dataset"}
URL_PREFIX = {"model": "", "dataset": "datasets/"}


def iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def avatar(user: str) -> str:
    return f"/avatars/{git_blob_sha(user.encode())[:32]}.svg"


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-LFS pointer file that stands in the repository for content stored by LFS."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def lfs_tracked(gitattributes: bytes, path: str) -> bool:
    """Whether a .gitattributes gives `path` the LFS filter (`<pattern> filter=lfs ...`; last match wins)."""
    tracked = False
    for line in gitattributes.decode(errors="replace").splitlines():
        pattern, *attributes = line.split() or ["#"]
        if pattern.startswith("#") or not attributes:
            continue
        target = path if "/" in pattern else path.rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(target, pattern.lstrip("/")):
            if "filter=lfs" in attributes:
                tracked = True
            elif "-filter" in attributes or "!filter" in attributes:
                tracked = False
    return tracked

# --- state ---------------------------------------------------------------------------------------------


@dataclass


class Discussion:
    """A discussion or, with `is_pull_request`, a pull request whose `refs/pr/N` points at `head`."""

    num: int
    title: str
    author: str
    is_pull_request: bool
    created_at: datetime
    status: str = "open"  # open | closed | merged | draft
    events: list[dict[str, Any]] = field(default_factory=list)
    head: str | None = None
    target_branch: str = "main"
    merge_commit: str | None = None

    @property
    def comments(self) -> list[str]:
        return [event["data"]["latest"]["raw"] for event in self.events if event["type"] == "comment"]


@dataclass


class HubRepo:
    repo_id: str
    repo_type: str  # "model" | "dataset"
    history: History
    created_at: datetime
    private: bool = False
    gated: bool | str = False  # False | "auto" | "manual"
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    tags: dict[str, str] = field(default_factory=dict)
    discussions: dict[int, Discussion] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # LFS objects uploaded: sha256 -> content

    def lfs_object(self, stored: bytes) -> tuple[str, bytes] | None:
        """(sha256, content) when `stored` is the pointer of an LFS object of this repository."""
        match = _POINTER.fullmatch(stored) if len(stored) < 200 else None
        oid = match[1].decode() if match else ""
        return (oid, self.lfs[oid]) if oid in self.lfs else None

    def content(self, stored: bytes) -> bytes:
        """A file's content: what an LFS pointer points to, or the bytes themselves."""
        found = self.lfs_object(stored)
        return found[1] if found else stored

    def store(self, files: dict[str, bytes], path: str, data: bytes) -> None:
        """Put `data` at `path` as the Hub would: through LFS (the pointer in git) when the Hub requires it."""
        if data and (len(data) > LFS_THRESHOLD or lfs_tracked(files.get(".gitattributes", b""), path)):
            oid = hashlib.sha256(data).hexdigest()
            self.lfs[oid], data = data, lfs_pointer(oid, len(data))
        files[path] = data

    def resolve(self, revision: str) -> str | None:
        """A branch, tag, `refs/pr/N` (or `refs/heads/...`, `refs/tags/...`) or commit sha -> commit sha."""
        if match := re.fullmatch(r"refs/pr/(\d+)", revision):
            discussion = self.discussions.get(int(match[1]))
            return discussion.head if discussion else None
        return self.history.resolve(revision, self.branches, self.tags)

    def files(self, revision: str = "main") -> dict[str, bytes]:
        """The content of every file at `revision` (LFS pointers resolved)."""
        sha = self.resolve(revision)
        if sha is None:
            raise KeyError(revision)
        return {path: self.content(data) for path, data in self.history[sha].files.items()}

    def log(self, revision: str = "main") -> list[Commit]:
        """Commits from `revision` back along first parents, newest first."""
        sha = self.resolve(revision)
        if sha is None:
            raise KeyError(revision)
        return self.history.first_parent_log(sha)

    def push(
        self, changes: dict[str, bytes | None], message: str, branch: str = "main", author: str = ""
    ) -> Commit:
        """Commit `changes` (None deletes a path) on an existing branch."""
        commit = self.history.commit_changes(self.branches[branch], changes, message, author, self.store)
        self.branches[branch] = commit.sha
        return commit

    def roots(self) -> list[str]:
        """Every commit a ref points at: what keeps history reachable."""
        heads = [d.head for d in self.discussions.values() if d.head]
        return [*self.branches.values(), *self.tags.values(), *heads]


def fail(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> NoReturn:
    abort_with(json_response({"error": message}, status, error_headers(message, code) | (headers or {})))


def error_headers(message: str, code: str | None) -> dict[str, str]:
    return {"X-Error-Message": message.replace("\n", " ")} | ({"X-Error-Code": code} if code else {})


def request_json(request: Request) -> Any:
    return request.get_json(force=True, silent=True)

