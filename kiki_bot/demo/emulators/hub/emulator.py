"""A stateful emulator of the Hugging Face Hub API subset kiki-bot uses, served to the real huggingface_hub.

It covers model and dataset repositories: create, info, settings, README metadata validation, preupload
and NDJSON commits (to branches and `refs/pr/N`), downloads through `resolve`, refs, tags, tree, commit log,
super-squash and discussions/pull requests (shared/reference/hub-and-github-apis.md, part A). As the Hub does,
preupload answers "lfs" for a file over 10 MB or one its revision's .gitattributes tracks with LFS: the client
then goes through the git-LFS batch API (upload, verify) and commits an `lfsFile` line; such a file sent
base64-inline is refused. The repository then holds the LFS pointer, as git does, and the content is served
by `resolve` with the Hub's `X-Linked-*` headers. The xet protocol is not emulated: clients run with
HF_HUB_DISABLE_XET=1, which makes huggingface_hub use the LFS batch API instead.
Errors carry `X-Error-Code`, so the library raises its specific exceptions; nothing answers 5xx/429, which
the library retries with backoff.

This module must not import huggingface_hub: HF_ENDPOINT is frozen when that is first imported, and tests
start this emulator before that (see tests/emulator_fixtures.py).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, NoReturn

import yaml
from werkzeug.wrappers import Request, Response

from ..server import Commit, Emulator, History, abort_with, git_blob_sha, json_response, now, token_of

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
MISSING_METADATA = (
    "empty or missing yaml metadata in repo card"
    " (https://huggingface.co/docs/hub/model-cards#model-card-metadata)"
)

_FRONT_MATTER = re.compile(r"^\s*---[\r\n]+([\S\s]*?)[\r\n]+---(?:\r\n|\n|$)")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _avatar(user: str) -> str:
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
        for prefix, refs in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if revision.startswith(prefix):
                return refs.get(revision.removeprefix(prefix))
        known = revision in self.history.commits
        return self.branches.get(revision) or self.tags.get(revision) or (revision if known else None)

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
        parent = self.branches[branch]
        files = dict(self.history[parent].files)
        for path, data in changes.items():
            if data is None:
                files.pop(path, None)
            else:
                self.store(files, path, data)
        commit = self.history.commit(files, (parent,), message, author)
        self.branches[branch] = commit.sha
        return commit

    def roots(self) -> list[str]:
        """Every commit a ref points at: what keeps history reachable."""
        heads = [d.head for d in self.discussions.values() if d.head]
        return [*self.branches.values(), *self.tags.values(), *heads]


def _fail(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> NoReturn:
    abort_with(json_response({"error": message}, status, _error_headers(message, code) | (headers or {})))


def _error_headers(message: str, code: str | None) -> dict[str, str]:
    return {"X-Error-Message": message.replace("\n", " ")} | ({"X-Error-Code": code} if code else {})


def _json(request: Request) -> Any:
    return request.get_json(force=True, silent=True)


class HubEmulator(Emulator):
    """Hub emulator. Requests authenticate as `user` unless `tokens` maps their token to someone else."""

    _repo_path = "/api/{kind:models|datasets}/{ns}/{name}"
    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", "/api/whoami-v2", "whoami"),
        ("POST", "/api/repos/create", "create_repo_handler"),
        ("POST", "/api/validate-yaml", "validate_yaml"),
        ("GET", _repo_path, "repo_info"),
        ("GET", _repo_path + "/revision/{rev}", "repo_info"),
        ("PUT", _repo_path + "/settings", "update_settings"),
        ("POST", _repo_path + "/preupload/{rev}", "preupload"),
        ("POST", _repo_path + "/commit/{rev}", "commit"),
        ("GET", _repo_path + "/refs", "refs"),
        ("POST", _repo_path + "/tag/{rev}", "create_tag"),
        ("GET", _repo_path + "/tree/{rev}", "tree"),
        ("GET", _repo_path + "/tree/{rev}/{path}", "tree"),
        ("GET", _repo_path + "/commits/{rev}", "commits"),
        ("POST", _repo_path + "/super-squash/{rev}", "super_squash"),
        ("GET", _repo_path + "/discussions", "list_discussions"),
        ("POST", _repo_path + "/discussions", "create_discussion"),
        ("GET", _repo_path + r"/discussions/{num:\d+}", "discussion_details"),
        ("POST", _repo_path + r"/discussions/{num:\d+}/comment", "comment"),
        ("POST", _repo_path + r"/discussions/{num:\d+}/status", "change_status"),
        ("POST", _repo_path + r"/discussions/{num:\d+}/merge", "merge"),
        ("POST", "/{kind:datasets}/{ns}/{name}.git/info/lfs/objects/batch", "lfs_batch"),
        ("POST", "/{ns}/{name}.git/info/lfs/objects/batch", "lfs_batch"),
        ("POST", "/{kind:datasets}/{ns}/{name}.git/info/lfs/objects/verify", "lfs_verify"),
        ("POST", "/{ns}/{name}.git/info/lfs/objects/verify", "lfs_verify"),
        ("PUT", "/{kind:datasets}/{ns}/{name}.git/info/lfs/objects/{oid:[0-9a-f]+}", "lfs_upload"),
        ("PUT", "/{ns}/{name}.git/info/lfs/objects/{oid:[0-9a-f]+}", "lfs_upload"),
        ("GET", "/{kind:datasets}/{ns}/{name}/resolve/{rev}/{path:.+}", "resolve"),
        ("GET", "/{ns}/{name}/resolve/{rev}/{path:.+}", "resolve"),
    ]

    def __init__(self, user: str = "kiki-bot") -> None:
        super().__init__("https://huggingface.co")
        self.user = user
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.tokens: dict[str, str] = {}  # token -> user name; any other token acts as `user`
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self._event_ids = itertools.count(1)

    def error_response(self, status: int, message: str) -> Response:
        return json_response({"error": message}, status, _error_headers(message, None))

    # --- seeding and inspection -------------------------------------------------------------------

    def create_repo(
        self,
        repo_id: str,
        repo_type: str = "model",
        files: dict[str, bytes] | None = None,
        private: bool = False,
        gated: bool | str = False,
    ) -> HubRepo:
        """A repository whose `main` holds the Hub's initial commit (.gitattributes) plus `files` (stored
        through LFS where the Hub would)."""
        with self._lock:
            repo = HubRepo(repo_id, repo_type, History(), now(), private, gated)
            snapshot = {".gitattributes": GITATTRIBUTES}
            for path, data in (files or {}).items():
                repo.store(snapshot, path, data)
            repo.branches["main"] = repo.history.commit(snapshot, (), "initial commit", repo_id.split("/")[0]).sha
            self.repos[repo_type, repo_id] = repo
            return repo

    def repo(self, repo_id: str, repo_type: str = "model") -> HubRepo:
        return self.repos[repo_type, repo_id]

    def open_discussion(
        self, repo_id: str, title: str, text: str, author: str, repo_type: str = "model",
        created_at: datetime | None = None,
    ) -> int:
        """A Community discussion opened by `author` (someone other than the token's user), as the Hub shows it."""
        with self._lock:
            discussion = self._open_discussion(self.repo(repo_id, repo_type), title, text, author, None)
            if created_at is not None:
                discussion.created_at = created_at
            return discussion.num

    def post_comment(self, repo_id: str, num: int, author: str, text: str, repo_type: str = "model") -> None:
        """`author` comments on a discussion (the webhook's `discussion.comment` event)."""
        with self._lock:
            self.repo(repo_id, repo_type).discussions[num].events.append(self._comment_event(author, text))

    # --- helpers ------------------------------------------------------------------------------------

    def _url(self, repo: HubRepo) -> str:
        return f"{self.base_url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _writer(self, request: Request) -> str:
        """The user a write acts as; the Hub refuses writes without a token."""
        token = token_of(request)
        return (
            self.tokens.get(token, self.user)
            if token
            else _fail(401, "Invalid credentials in Authorization header")
        )

    def _repo(self, request: Request, kind: str, ns: str, name: str, download: bool = False) -> HubRepo:
        """The repository, as its visibility and gating let this request see it."""
        repo = self.repos.get((KINDS[kind], f"{ns}/{name}"))
        anonymous = token_of(request) is None
        if repo is None or (repo.private and anonymous):
            _fail(401 if anonymous else 404, "Repository not found", "RepoNotFound")
        if download and repo.gated and anonymous:
            _fail(
                401,
                f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it.",
                "GatedRepo",
            )
        return repo

    def _revision(self, repo: HubRepo, rev: str) -> str:
        return repo.resolve(rev) or _fail(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _discussion(self, repo: HubRepo, num: str) -> Discussion:
        return repo.discussions.get(int(num)) or _fail(404, "Discussion not found")

    def _event(self, kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
        event_id = f"{next(self._event_ids):024x}"
        return {
            "id": event_id,
            "type": kind,
            "createdAt": _iso(now()),
            "author": {"name": author},
            "data": data,
        }

    def _comment_event(self, author: str, text: str) -> dict[str, Any]:
        return self._event("comment", author, {"edited": False, "hidden": False, "latest": {"raw": text}})

    def _open_discussion(
        self, repo: HubRepo, title: str, description: str, author: str, target_branch: str | None
    ) -> Discussion:
        """A discussion or, given a `target_branch`, a draft pull request whose refs/pr/N starts there."""
        discussion = Discussion(len(repo.discussions) + 1, title, author, target_branch is not None, now())
        discussion.events.append(self._comment_event(author, description))
        if target_branch is not None:
            discussion.status, discussion.head = "draft", repo.branches[target_branch]
            discussion.target_branch = target_branch
        repo.discussions[discussion.num] = discussion
        return discussion

    def _blob_json(self, repo: HubRepo, stored: bytes) -> dict[str, Any]:
        """A file's size and git blob id, and for content stored by LFS its `lfs` sha256, size and pointer size."""
        found = repo.lfs_object(stored)
        blob = {"size": len(found[1]) if found else len(stored), "blobId": git_blob_sha(stored)}
        if found:
            blob["lfs"] = {"sha256": found[0], "size": len(found[1]), "pointerSize": len(stored)}
        return blob

    def _file_json(self, repo: HubRepo, path: str, stored: bytes) -> dict[str, Any]:
        """A tree entry for a file, as `list_repo_tree` reads it (`lfs` with `oid` for LFS content)."""
        blob = self._blob_json(repo, stored)
        entry = {"type": "file", "oid": blob["blobId"], "size": blob["size"], "path": path}
        if "lfs" in blob:
            entry["lfs"] = {"oid": blob["lfs"]["sha256"], "size": blob["size"], "pointerSize": len(stored)}
        return entry

    # --- handlers: account, repositories, metadata --------------------------------------------------

    def whoami(self, request: Request) -> Response:
        name = self._writer(request)
        return json_response(
            {
                "type": "user",
                "id": git_blob_sha(name.encode())[:24],
                "name": name,
                "fullname": name,
                "email": None,
                "emailVerified": False,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": _avatar(name),
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "emulator", "role": "write",
                                                                 "createdAt": _iso(now())}},
            }
        )

    def create_repo_handler(self, request: Request) -> Response:
        body, author = _json(request) or {}, self._writer(request)
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX or not body.get("name"):
            _fail(400, f"Invalid repository type or name: {repo_type!r}, {body.get('name')!r}")
        repo_id = f"{body.get('organization') or author}/{body['name']}"
        if (repo_type, repo_id) in self.repos:
            repo = self.repos[repo_type, repo_id]
            return json_response(
                {"error": f"You already created this {repo_type} repo", "url": self._url(repo)}, 409
            )
        repo = self.create_repo(repo_id, repo_type, private=body.get("visibility") == "private")
        return json_response({"url": self._url(repo), "name": repo_id, "id": git_blob_sha(repo_id.encode())[:24]})

    def repo_info(self, request: Request, kind: str, ns: str, name: str, rev: str = "main") -> Response:
        repo = self._repo(request, kind, ns, name)
        commit = repo.history[self._revision(repo, rev)]
        try:
            card = card_metadata(commit.files.get("README.md", b"").decode(errors="replace"))
        except yaml.YAMLError:
            card = None
        card = card if isinstance(card, dict) else None
        info = {
            "_id": git_blob_sha(repo.repo_id.encode())[:24],
            "id": repo.repo_id,
            "author": ns,
            "sha": commit.sha,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list(card.get("tags") or []) if card else [],
            "cardData": card,
            "siblings": [
                {"rfilename": path} | self._blob_json(repo, data) for path, data in sorted(commit.files.items())
            ],
            "usedStorage": sum(len(repo.content(data)) for data in commit.files.values()),
        }
        if repo.repo_type == "model":  # what the card says of the model, as the Hub reads it from there
            info |= {"modelId": repo.repo_id, "spaces": [], "library_name": (card or {}).get("library_name"),
                     "pipeline_tag": (card or {}).get("pipeline_tag")}
            info |= {"model-index": card["model-index"]} if card and "model-index" in card else {}
        return json_response(info)

    def update_settings(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo, body = self._repo(request, kind, ns, name), _json(request) or {}
        self._writer(request)
        if "gated" in body and body["gated"] not in (False, "auto", "manual"):
            _fail(400, f"Invalid gated value {body['gated']!r}")
        if "visibility" in body and body["visibility"] not in ("private", "public"):
            _fail(400, f"Invalid visibility {body['visibility']!r}")
        repo.gated = body.get("gated", repo.gated)
        repo.private = body.get("visibility", "private" if repo.private else "public") == "private"
        return json_response({})

    def validate_yaml(self, request: Request) -> Response:
        errors, warnings = validate_card(str((_json(request) or {}).get("content", "")))
        problems = {
            "errors": [{"message": e} for e in errors],
            "warnings": [{"message": w} for w in warnings],
        }
        return json_response(problems, 400 if errors else 200)

    # --- handlers: uploads ----------------------------------------------------------------------------

    def preupload(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """"lfs" for a file over 10 MB or tracked by LFS in the revision's .gitattributes, else "regular";
        `oid` (the LFS sha256, or the git blob sha) lets the client skip files already there."""
        repo = self._repo(request, kind, ns, name)
        files = repo.history[self._revision(repo, rev)].files
        answers = []
        for entry in (_json(request) or {}).get("files", []):
            path, size = str(entry.get("path", "")), int(entry.get("size") or 0)
            lfs = size > LFS_THRESHOLD or lfs_tracked(files.get(".gitattributes", b""), path)
            answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in files:
                found = repo.lfs_object(files[path])
                answer["oid"] = found[0] if found else git_blob_sha(files[path])
            answers.append(answer)
        return json_response({"files": answers, "commitOid": self._revision(repo, rev)})

    def lfs_batch(self, request: Request, ns: str, name: str, kind: str = "models") -> Response:
        """The git-LFS batch API (basic transfer): where to PUT each object not yet stored, and to verify it."""
        repo, body = self._repo(request, kind, ns, name), _json(request) or {}
        self._writer(request)
        if body.get("operation") != "upload":
            _fail(422, "Only the upload operation is supported")
        base = f"{self._url(repo)}.git/info/lfs/objects"
        objects = []
        for item in body.get("objects") or []:
            oid, size = str(item.get("oid", "")), item.get("size")
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                answer["error"] = {"code": 422, "message": "Invalid object: a sha256 oid and a size are required"}
            elif oid not in repo.lfs:
                answer["actions"] = {"upload": {"href": f"{base}/{oid}"}, "verify": {"href": f"{base}/verify"}}
            objects.append(answer)
        return Response(json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
                        mimetype="application/vnd.git-lfs+json")

    def lfs_upload(self, request: Request, ns: str, name: str, oid: str, kind: str = "models") -> Response:
        """The PUT of an object's bytes (on the Hub, to its storage: no token); kept only if they hash to `oid`."""
        repo, data = self.repos.get((KINDS[kind], f"{ns}/{name}")), request.get_data()
        if repo is None:
            _fail(404, "Repository not found", "RepoNotFound")
        if hashlib.sha256(data).hexdigest() != oid:
            _fail(400, f"The uploaded content does not hash to {oid}")
        repo.lfs[oid] = data
        return Response(status=200)

    def lfs_verify(self, request: Request, ns: str, name: str, kind: str = "models") -> Response:
        repo, body = self._repo(request, kind, ns, name), _json(request) or {}
        data = repo.lfs.get(str(body.get("oid")))
        if data is None or len(data) != body.get("size"):
            _fail(404, f"LFS object {body.get('oid')} of size {body.get('size')} was not uploaded")
        return json_response({"success": True})

    def _apply(self, repo: HubRepo, files: dict[str, bytes], operation: dict[str, Any]) -> None:
        key, value = operation.get("key"), operation.get("value") or {}
        path = str(value.get("path", ""))
        if key == "file":
            data = base64.b64decode(value.get("content", ""))
            if len(data) > LFS_THRESHOLD:
                _fail(400, f"Your push was rejected because it contains files larger than 10 MiB ({path}): "
                      "upload them through LFS (preupload answers uploadMode 'lfs')")
            files[path] = data
        elif key == "lfsFile":
            oid, size = str(value.get("oid", "")), value.get("size")
            if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs or len(repo.lfs[oid]) != size:
                _fail(400, f"{path}: LFS object {oid} of size {size} was not uploaded (LFS batch API first)")
            files[path] = lfs_pointer(oid, size)
        elif key == "deletedFile":
            if path not in files:
                _fail(404, f"{path} does not exist", "EntryNotFound")
            del files[path]
        elif key == "deletedFolder":
            for existing in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                del files[existing]
        else:
            _fail(400, f"Unsupported commit operation {key!r}")

    def commit(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """Apply an NDJSON commit to a branch or `refs/pr/N`; `?create_pr=1` opens a PR against `rev`."""
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        operations = [json.loads(line) for line in request.get_data().splitlines() if line.strip()]
        if not operations or operations[0].get("key") != "header":
            _fail(400, "The first line of a commit must be its header")
        header = operations[0].get("value") or {}
        create_pr = request.args.get("create_pr") in ("1", "true", "True")
        pr_match = re.fullmatch(r"refs/pr/(\d+)", rev)
        pull = None
        if pr_match and not create_pr:
            pull = self._discussion(repo, pr_match[1])
            if not pull.is_pull_request:
                _fail(400, f"Discussion #{pull.num} is not a pull request")
        elif rev not in repo.branches:
            self._revision(repo, rev)  # 404 RevisionNotFound for an unknown revision
            _fail(400, f"Can only commit to a branch or a pull request, not {rev}")
        parent = self._revision(repo, rev)
        if header.get("parentCommit") and header["parentCommit"] != parent and not create_pr:
            _fail(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.history[parent].files)
        for operation in operations[1:]:
            self._apply(repo, files, operation)
        summary, description = header.get("summary") or "", header.get("description") or ""
        commit = repo.history.commit(files, (parent,), f"{summary}\n\n{description}".strip(), author)
        if create_pr:
            pull = self._open_discussion(repo, summary, description, author, target_branch=rev)
        if pull:
            pull.head = commit.sha
            pull.status = "open" if pull.status == "draft" else pull.status
            pull.events.append(self._event("commit", author, {"subject": summary, "oid": commit.sha}))
        else:
            repo.branches[rev] = commit.sha
        return json_response(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._url(repo)}/commit/{commit.sha}",
                "hookOutput": "",
                "pullRequestUrl": f"{self._url(repo)}/discussions/{pull.num}" if create_pr and pull else None,
            }
        )

    # --- handlers: downloads, refs, history -----------------------------------------------------------

    def resolve(
        self, request: Request, ns: str, name: str, rev: str, path: str, kind: str = "models"
    ) -> Response:
        repo = self._repo(request, kind, ns, name, download=True)
        sha = self._revision(repo, rev)
        data = repo.history[sha].files.get(path)
        if data is None:
            _fail(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(data)}"', "Accept-Ranges": "bytes"}
        if found := repo.lfs_object(data):  # the Hub redirects to its storage; the linked headers say what
            oid, data = found
            headers |= {"ETag": f'"{oid}"', "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data))}
        return Response(data, headers=headers, mimetype="application/octet-stream")

    def refs(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo = self._repo(request, kind, ns, name)

        def ref(name: str, full: str, sha: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": sha}

        refs: dict[str, Any] = {
            "branches": [ref(b, f"refs/heads/{b}", sha) for b, sha in sorted(repo.branches.items())],
            "tags": [ref(t, f"refs/tags/{t}", sha) for t, sha in sorted(repo.tags.items())],
            "converts": [],
        }
        if request.args.get("include_prs"):
            refs["pullRequests"] = [
                ref(f"refs/pr/{d.num}", f"refs/pr/{d.num}", d.head)
                for d in repo.discussions.values()
                if d.head
            ]
        return json_response(refs)

    def create_tag(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        repo, body = self._repo(request, kind, ns, name), _json(request) or {}
        self._writer(request)
        tag = body.get("tag") or _fail(400, "A tag name is required")
        if tag in repo.tags:
            _fail(409, f"Tag reference refs/tags/{tag} already exists")
        repo.tags[tag] = self._revision(repo, rev)
        return json_response({})

    def tree(self, request: Request, kind: str, ns: str, name: str, rev: str, path: str = "") -> Response:
        repo = self._repo(request, kind, ns, name)
        files = repo.history[self._revision(repo, rev)].files
        recursive = request.args.get("recursive", "").lower() == "true"
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for file_path, data in sorted(files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = prefix + "/".join(parts[:depth])
                entries[folder] = {
                    "type": "directory",
                    "path": folder,
                    "size": 0,
                    "oid": git_blob_sha(folder.encode()),
                }
            if recursive or len(parts) == 1:
                entries[file_path] = self._file_json(repo, file_path, data)
        if prefix and not entries:
            _fail(404, f"Entry not found: {path}", "EntryNotFound")
        return json_response(list(entries.values()))

    def commits(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        repo = self._repo(request, kind, ns, name)
        return json_response(
            [
                {
                    "id": c.sha,
                    "title": c.title,
                    "message": c.description,
                    "authors": [{"user": c.author, "avatar": _avatar(c.author)}],
                    "date": _iso(c.date),
                }
                for c in repo.history.first_parent_log(self._revision(repo, rev))
            ]
        )

    def super_squash(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """Replace a branch's history with one commit; commits no ref reaches any more are gone."""
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        if rev not in repo.branches:
            self._revision(repo, rev)  # 404 RevisionNotFound for an unknown revision
            _fail(400, f"Invalid reference for a branch: {rev}")
        message = (_json(request) or {}).get("message") or f"Super-squash branch '{rev}'"
        repo.branches[rev] = repo.history.commit(
            repo.history[repo.branches[rev]].files, (), message, author
        ).sha
        repo.history.keep_reachable(repo.roots())
        return json_response({"commitId": repo.branches[rev]})

    # --- handlers: discussions and pull requests ------------------------------------------------------

    def _discussion_json(
        self, repo: HubRepo, discussion: Discussion, details: bool = False
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "num": discussion.num,
            "title": discussion.title,
            "status": discussion.status,
            "isPullRequest": discussion.is_pull_request,
            "createdAt": _iso(discussion.created_at),
            "author": {"name": discussion.author},
            "repo": {"name": repo.repo_id, "type": repo.repo_type},
            "pinned": False,
            "numComments": len(discussion.comments),
            "topReactions": [],
        }
        if details:
            data["events"] = discussion.events
            if discussion.is_pull_request and discussion.head:
                base = repo.branches.get(discussion.target_branch, discussion.head)
                data["changes"] = {
                    "base": f"refs/heads/{discussion.target_branch}",
                    "mergeCommitId": discussion.merge_commit,
                }
                data["filesWithConflicts"] = repo.history.merge(base, discussion.head)[1]
        return data

    def list_discussions(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo, args = self._repo(request, kind, ns, name), request.args
        kinds = {"discussion": {False}, "pull_request": {True}}.get(args.get("type", "all"), {False, True})
        statuses = {"open": {"open", "draft"}, "closed": {"closed", "merged"}}.get(args.get("status", "all"))
        found = [
            d
            for d in reversed(repo.discussions.values())
            if d.is_pull_request in kinds
            and (statuses is None or d.status in statuses)
            and args.get("author", d.author) == d.author
        ]
        page, per_page = int(args.get("p", 0)), 50
        return json_response(
            {
                "discussions": [
                    self._discussion_json(repo, d) for d in found[page * per_page : (page + 1) * per_page]
                ],
                "count": len(found),
                "start": page * per_page,
            }
        )

    def create_discussion(self, request: Request, kind: str, ns: str, name: str) -> Response:
        """A pull request starts as a draft whose `refs/pr/N` points at main until something is committed."""
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), _json(request) or {}
        title = str(body.get("title") or "").strip() or _fail(400, "A title is required")
        target = "main" if body.get("pullRequest") else None
        discussion = self._open_discussion(repo, title, str(body.get("description") or ""), author, target)
        return json_response({"num": discussion.num, "pullRequest": discussion.is_pull_request})

    def discussion_details(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo = self._repo(request, kind, ns, name)
        return json_response(self._discussion_json(repo, self._discussion(repo, num), details=True))

    def comment(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        discussion = self._discussion(repo, num)
        text = str((_json(request) or {}).get("comment") or "").strip() or _fail(400, "A comment is required")
        discussion.events.append(event := self._comment_event(author, text))
        return json_response({"newMessage": event})

    def change_status(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), _json(request) or {}
        discussion = self._discussion(repo, num)
        if body.get("status") not in ("open", "closed") or discussion.status == "merged":
            _fail(
                400, f"Cannot change the status of a {discussion.status} discussion to {body.get('status')!r}"
            )
        if body.get("comment"):
            discussion.events.append(self._comment_event(author, body["comment"]))
        discussion.status = body["status"]
        discussion.events.append(event := self._event("status-change", author, {"status": body["status"]}))
        return json_response({"newStatus": event})

    def merge(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        """Squash-merge `refs/pr/N` into its target branch (three-way, per file) as one new commit."""
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), _json(request) or {}
        pull = self._discussion(repo, num)
        if not pull.is_pull_request or pull.head is None or pull.status not in ("open", "draft"):
            _fail(400, f"Discussion #{num} is not an open pull request")
        base = repo.branches[pull.target_branch]
        files, conflicts = repo.history.merge(base, pull.head)
        if conflicts:
            _fail(409, f"Merge conflict in: {', '.join(conflicts)}")
        commit = repo.history.commit(files, (base,), f"{pull.title} (#{pull.num})", author)
        repo.branches[pull.target_branch] = pull.merge_commit = commit.sha
        if body.get("comment"):
            pull.events.append(self._comment_event(author, body["comment"]))
        pull.status = "merged"
        pull.events.append(self._event("status-change", author, {"status": "merged"}))
        return json_response({})
