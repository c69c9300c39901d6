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

import itertools
from datetime import datetime
from typing import ClassVar

from werkzeug.wrappers import Request, Response

from ..server import Emulator, History, json_response, now, token_of
from .commits import Commits
from .discussions import Discussions
from .repos import Repos
from .state import GITATTRIBUTES, KINDS, URL_PREFIX, HubRepo, error_headers, fail


class HubEmulator(Repos, Commits, Discussions, Emulator):
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
        ("DELETE", _repo_path + "/tag/{tag}", "delete_tag"),
        ("POST", _repo_path + "/branch/{branch}", "create_branch"),
        ("DELETE", _repo_path + "/branch/{branch}", "delete_branch"),
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
        return json_response({"error": message}, status, error_headers(message, None))

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
            else fail(401, "Invalid credentials in Authorization header")
        )

    def _repo(self, request: Request, kind: str, ns: str, name: str, download: bool = False) -> HubRepo:
        """The repository, as its visibility and gating let this request see it."""
        repo = self.repos.get((KINDS[kind], f"{ns}/{name}"))
        anonymous = token_of(request) is None
        if repo is None or (repo.private and anonymous):
            fail(401 if anonymous else 404, "Repository not found", "RepoNotFound")
        if download and repo.gated and anonymous:
            fail(
                401,
                f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it.",
                "GatedRepo",
            )
        return repo

    def _revision(self, repo: HubRepo, rev: str) -> str:
        return repo.resolve(rev) or fail(404, f"Invalid rev id: {rev}", "RevisionNotFound")

