r"""A stateful emulator of the GitHub REST API subset kiki-bot uses, served to the real PyGithub over HTTP.

Bodies carry the fields PyGithub and the bot read, as GitHub shapes them (part B of
shared/reference/hub-and-github-apis.md); errors use GitHub's `{"message": ...}` bodies and status codes,
so PyGithub raises what it raises against github.com. State is plain dataclasses; tests seed and inspect
it through `GitHubEmulator`'s methods:

    gh = GitHubEmulator()
    gh.create_repo("o/r", files={"README.md": b"hi\n"})
    with serve(gh) as server:
        Github(base_url=server.url, ...).get_repo("o/r").get_contents("README.md")

It refuses what GitHub refuses an Actions job: a token from `mint_token` carries the `permissions:` of its job,
and outside them the answer is GitHub's 403 with its `X-Accepted-GitHub-Permissions` header (any other token
has full scope). A workflow is dispatched only if its `on:` has `workflow_dispatch`, with the inputs it
declares; a push starts the workflows whose `on: push` filters match, unless the Actions token made it.

The Git Data API (blobs, trees on a base tree, commits, refs) keeps git's own object ids; refs move only by a
fast-forward unless forced (422 otherwise, 422 for an existing ref). GitHub's limits hold: no file over
100 MiB, no content in the Contents API's JSON over 1 MiB, at most 100 items a page; every answer carries
x-ratelimit-* headers, and `refuse_next` makes the next matching requests meet a rate limit or a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import itertools
import json
import re
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote, urlencode

import yaml
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from ..server import (
    Commit,
    Emulator,
    History,
    abort_with,
    git_blob_sha,
    json_response,
    now,
    raw_path,
    token_of,
)

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

JOB_SCOPES = frozenset({
    "actions", "attestations", "checks", "contents", "deployments", "discussions", "id-token", "issues",
    "models", "packages", "pages", "pull-requests", "repository-projects", "security-events", "statuses",
})
"""The keys a workflow job's `permissions:` may set."""

ACCEPTED: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("get_repo", "list_branches", "get_branch", "get_permission"), ("metadata",)),
    **dict.fromkeys(
        ("compare", "get_ref", "create_ref", "update_ref", "delete_ref", "get_contents", "put_contents",
         "create_blob", "get_blob", "create_tree", "get_tree", "create_git_commit", "get_git_commit",
         "delete_contents", "merge_pull", "list_releases", "create_release", "get_release_by_tag",
         "get_release", "repository_dispatch"),
        ("contents",),
    ),
    **dict.fromkeys(
        ("list_issues", "create_issue", "get_comment", "edit_comment", "delete_comment", "get_issue",
         "edit_issue", "list_comments", "create_comment", "list_issue_labels", "add_issue_labels",
         "set_issue_labels", "remove_issue_label", "list_labels", "create_label", "get_label"),
        ("issues", "pull-requests"),
    ),
    **dict.fromkeys(("list_pulls", "create_pull", "get_pull", "edit_pull", "list_pull_files"), ("pull-requests",)),
    **dict.fromkeys(("get_workflow", "workflow_dispatch", "list_runs"), ("actions",)),
}
"""Handler -> the job permissions GitHub accepts for it, any one of them (GET needs read, other methods write).
Issue routes take `pull-requests` only for a pull request's number; metadata is read-only and always granted."""

_ISSUE_ROUTES = frozenset(h for h, scopes in ACCEPTED.items() if scopes == ("issues", "pull-requests"))
PERMISSIONS_DOCS = "https://docs.github.com/rest/authentication/permissions-required-for-github-apps"


def triggers(text: bytes) -> dict[str, Any]:
    """A workflow file's `on:` as {event: its filters or None}; {} when the file is not a workflow."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    on = doc.get("on", doc.get(True)) if isinstance(doc, dict) else None  # YAML 1.1 reads `on` as true
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {event: None for event in on if isinstance(event, str)}
    return on if isinstance(on, dict) else {}


def _glob(pattern: str) -> re.Pattern[str]:
    """GitHub's ref filter patterns: `*` stops at `/`, `**` does not."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return re.compile("".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts))


def push_starts(spec: Any, ref: str) -> bool:
    """Whether a push of `ref` (refs/heads/x or refs/tags/x) passes `on: push:`'s branch and tag filters."""
    spec = spec if isinstance(spec, dict) else {}
    kind, _, name = ref.removeprefix("refs/").partition("/")
    key = {"heads": "branches", "tags": "tags"}.get(kind)
    if key is None:
        return False
    for wanted, patterns in ((True, spec.get(key)), (False, spec.get(f"{key}-ignore"))):
        if patterns is not None:
            hit = False
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                negated = pattern.startswith("!")
                if _glob(pattern.removeprefix("!")).fullmatch(name):
                    hit = not negated
            return hit == wanted
    return not any(k in spec for k in ("branches", "branches-ignore", "tags", "tags-ignore"))


FILE_LIMIT = 100 * 1024 * 1024
"""GitHub refuses files over 100 MiB (pushes and the API alike); the Contents API serves none of them."""
CONTENTS_INLINE_LIMIT = 1024 * 1024
"""Above 1 MiB the Contents API's JSON carries no content (`"content": "", "encoding": "none"`)."""
TOO_LARGE = {"resource": "Blob", "field": "data", "code": "too_large"}
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
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


@dataclass
class Refusal:
    """An answer a test asked for in place of the next matching request's (rate limits, server errors)."""

    status: int
    method: str  # "" for any
    path: str
    query: dict[str, str]
    retry_after: int | None
    reset_at: int | None


def _short_ref(ref: str | None) -> str | None:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/") if ref else None


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _node_id(kind: str, key: object) -> str:
    """A GraphQL node id in GitHub's legacy form (base64 of `<len>:<Type><id>`), stable per object."""
    return base64.b64encode(f"{len(kind):02d}:{kind}{key}".encode()).decode()


def _reactions(url: str) -> dict[str, Any]:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}


REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors", "deployments_url": "/deployments", "downloads_url": "/downloads",
    "events_url": "/events", "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}
"""A repository's URL templates, after its API URL, as GitHub lists them."""
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
        for prefix, refs in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if ref.startswith(prefix):
                return refs.get(ref.removeprefix(prefix))
        return self.branches.get(ref) or self.tags.get(ref) or (ref if ref in self.history.commits else None)

    def files(self, ref: str | None = None) -> dict[str, bytes]:
        sha = self.resolve(ref or self.default_branch)
        if sha is None:
            raise KeyError(ref)
        return dict(self.history[sha].files)

    def push(self, branch: str, changes: dict[str, bytes | None], message: str, author: str) -> Commit:
        """Commit `changes` (None deletes a path) on `branch`, creating it from the default branch."""
        parent = self.branches.get(branch) or self.branches[self.default_branch]
        files = dict(self.history[parent].files)
        for path, data in changes.items():
            if data is None:
                files.pop(path, None)
            else:
                files[path] = data
        commit = self.history.commit(files, (parent,), message, author)
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


def _fail(status: int, message: str, **extra: Any) -> NoReturn:
    """GitHub's error body: the message, where the docs are, and the status (a string, as GitHub sends it)."""
    abort_with(json_response({"message": message, "documentation_url": DOCS, "status": str(status), **extra}, status))


def _invalid(resource: str, code: str, field_name: str, message: str | None = None) -> NoReturn:
    error = {"resource": resource, "code": code, "field": field_name}
    _fail(422, "Validation Failed", errors=[error | ({"message": message} if message else {})])


def _json(request: Request) -> Any:
    return request.get_json(force=True, silent=True)


class GitHubEmulator(Emulator):
    """GitHub REST emulator. `bot_login` is who any unknown token acts as; map tokens to users in `tokens`."""

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", "/user", "get_user"),
        ("GET", "/repos/{owner}/{name}", "get_repo"),
        ("GET", "/repos/{owner}/{name}/branches", "list_branches"),
        ("GET", "/repos/{owner}/{name}/branches/{branch:.+}", "get_branch"),
        ("GET", "/repos/{owner}/{name}/compare/{basehead:.+}", "compare"),
        ("GET", "/repos/{owner}/{name}/git/ref/{ref:.+}", "get_ref"),
        ("POST", "/repos/{owner}/{name}/git/refs", "create_ref"),
        # GitHub writes refs only at /git/refs/: a lazy PyGithub GitRef, which keeps the /git/ref/ URL it was
        # built from, must be read before it is edited or deleted.
        ("PATCH", "/repos/{owner}/{name}/git/refs/{ref:.+}", "update_ref"),
        ("DELETE", "/repos/{owner}/{name}/git/refs/{ref:.+}", "delete_ref"),
        ("POST", "/repos/{owner}/{name}/git/blobs", "create_blob"),
        ("GET", "/repos/{owner}/{name}/git/blobs/{sha}", "get_blob"),
        ("POST", "/repos/{owner}/{name}/git/trees", "create_tree"),
        ("GET", "/repos/{owner}/{name}/git/trees/{sha:.+}", "get_tree"),
        ("POST", "/repos/{owner}/{name}/git/commits", "create_git_commit"),
        ("GET", "/repos/{owner}/{name}/git/commits/{sha}", "get_git_commit"),
        ("GET", "/repos/{owner}/{name}/contents/{path:.*}", "get_contents"),
        ("PUT", "/repos/{owner}/{name}/contents/{path:.+}", "put_contents"),
        ("DELETE", "/repos/{owner}/{name}/contents/{path:.+}", "delete_contents"),
        ("GET", "/repos/{owner}/{name}/issues", "list_issues"),
        ("POST", "/repos/{owner}/{name}/issues", "create_issue"),
        ("GET", r"/repos/{owner}/{name}/issues/comments/{id:\d+}", "get_comment"),
        ("PATCH", r"/repos/{owner}/{name}/issues/comments/{id:\d+}", "edit_comment"),
        ("DELETE", r"/repos/{owner}/{name}/issues/comments/{id:\d+}", "delete_comment"),
        ("GET", r"/repos/{owner}/{name}/issues/{number:\d+}", "get_issue"),
        ("PATCH", r"/repos/{owner}/{name}/issues/{number:\d+}", "edit_issue"),
        ("GET", r"/repos/{owner}/{name}/issues/{number:\d+}/comments", "list_comments"),
        ("POST", r"/repos/{owner}/{name}/issues/{number:\d+}/comments", "create_comment"),
        ("GET", r"/repos/{owner}/{name}/issues/{number:\d+}/labels", "list_issue_labels"),
        ("POST", r"/repos/{owner}/{name}/issues/{number:\d+}/labels", "add_issue_labels"),
        ("PUT", r"/repos/{owner}/{name}/issues/{number:\d+}/labels", "set_issue_labels"),
        ("DELETE", r"/repos/{owner}/{name}/issues/{number:\d+}/labels/{label:.+}", "remove_issue_label"),
        ("GET", "/repos/{owner}/{name}/labels", "list_labels"),
        ("POST", "/repos/{owner}/{name}/labels", "create_label"),
        ("GET", "/repos/{owner}/{name}/labels/{label:.+}", "get_label"),
        ("GET", "/repos/{owner}/{name}/collaborators/{user}/permission", "get_permission"),
        ("GET", "/repos/{owner}/{name}/pulls", "list_pulls"),
        ("POST", "/repos/{owner}/{name}/pulls", "create_pull"),
        ("GET", r"/repos/{owner}/{name}/pulls/{number:\d+}", "get_pull"),
        ("PATCH", r"/repos/{owner}/{name}/pulls/{number:\d+}", "edit_pull"),
        ("GET", r"/repos/{owner}/{name}/pulls/{number:\d+}/files", "list_pull_files"),
        ("PUT", r"/repos/{owner}/{name}/pulls/{number:\d+}/merge", "merge_pull"),
        ("GET", "/repos/{owner}/{name}/releases", "list_releases"),
        ("POST", "/repos/{owner}/{name}/releases", "create_release"),
        ("GET", "/repos/{owner}/{name}/releases/tags/{tag:.+}", "get_release_by_tag"),
        ("GET", r"/repos/{owner}/{name}/releases/{id:\d+}", "get_release"),
        ("POST", "/repos/{owner}/{name}/dispatches", "repository_dispatch"),
        ("GET", "/repos/{owner}/{name}/actions/workflows/{workflow}", "get_workflow"),
        ("POST", "/repos/{owner}/{name}/actions/workflows/{workflow}/dispatches", "workflow_dispatch"),
        ("GET", "/repos/{owner}/{name}/actions/workflows/{workflow}/runs", "list_runs"),
    ]

    def __init__(self, bot_login: str = "kiki-bot[bot]") -> None:
        super().__init__("https://api.github.com")
        self.bot_login = bot_login
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.tokens: dict[str, str] = {}  # token -> login; any other token acts as `bot_login`
        self.scopes: dict[str, dict[str, str]] = {}  # job token -> its permissions; other tokens: full scope
        self.repos: dict[str, Repo] = {}
        self._ids = itertools.count(1)
        self.refusals: list[Refusal] = []  # answers a test asked for (`refuse_next`), first match first
        self.rate_used = 0  # requests counted against the hourly rate limit

    def error_response(self, status: int, message: str) -> Response:
        return json_response({"message": message, "documentation_url": DOCS, "status": str(status)}, status)

    # --- seeding and inspection -------------------------------------------------------------------

    def create_repo(
        self,
        full_name: str,
        files: dict[str, bytes] | None = None,
        default_branch: str = "main",
        private: bool = False,
    ) -> Repo:
        """A repository whose default branch holds one commit with `files`; its owner is an admin."""
        with self._lock:
            history = History()
            owner = full_name.split("/")[0]
            commit = history.commit(dict(files or {}), (), "Initial commit", owner)
            repo = Repo(
                next(self._ids), full_name, default_branch, private, history, {default_branch: commit.sha}
            )
            repo.permissions[owner] = "admin"
            self.repos[full_name] = repo
            return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name]

    def mint_token(self, permissions: dict[str, str], login: str = ACTIONS_LOGIN) -> str:
        """A job's GITHUB_TOKEN: it acts as `login` and may do only what `permissions` (a job's `permissions:`
        block, scope -> read | write | none) grants; what it pushes or tags starts no workflow."""
        for scope, level in permissions.items():
            if scope not in JOB_SCOPES or level not in ("read", "write", "none"):
                raise ValueError(f"not a job permission: {scope}: {level}")
        token = f"ghs_{secrets.token_hex(18)}"
        self.tokens[token], self.scopes[token] = login, dict(permissions)
        return token

    def set_permission(self, full_name: str, login: str, role: str) -> None:
        """`role` is one of admin, maintain, write, triage, read, none."""
        if role not in LEGACY_PERMISSION:
            raise ValueError(f"unknown role {role!r}")
        self.repos[full_name].permissions[login] = role

    def push(
        self,
        full_name: str,
        branch: str,
        changes: dict[str, bytes | None],
        message: str = "Update files",
        author: str = "octocat",
    ) -> str:
        """Commit to `branch` as a person would with `git push` (starting the workflows it triggers); returns
        the new commit sha."""
        with self._lock:
            repo = self.repos[full_name]
            sha = repo.push(branch, changes, message, author).sha
            self._pushed(repo, f"refs/heads/{branch}", author)
            return sha

    def open_issue(
        self,
        full_name: str,
        title: str,
        body: str | None = None,
        user: str = "octocat",
        labels: list[str] | None = None,
    ) -> int:
        with self._lock:
            return self._new_issue(self.repos[full_name], title, body, user, labels or []).number

    def open_pull(
        self,
        full_name: str,
        head: str,
        base: str | None = None,
        title: str = "Update",
        body: str | None = None,
        user: str = "octocat",
    ) -> int:
        with self._lock:
            repo = self.repos[full_name]
            pull = Pull(head, base or repo.default_branch, repo.branches[head])
            return self._new_issue(repo, title, body, user, [], pull).number

    def add_comment(self, full_name: str, number: int, body: str, user: str = "octocat") -> int:
        with self._lock:
            return self._new_comment(self.repos[full_name].issues[number], body, user).id

    def issue(self, full_name: str, number: int) -> Issue:
        return self.repos[full_name].issues[number]

    def comments(self, full_name: str, number: int) -> list[Comment]:
        return self.repos[full_name].issues[number].comments

    def files(self, full_name: str, ref: str | None = None) -> dict[str, bytes]:
        return self.repos[full_name].files(ref)

    def pulls(self, full_name: str) -> list[Issue]:
        return [issue for issue in self.repos[full_name].issues.values() if issue.pull]

    def releases(self, full_name: str) -> list[Release]:
        return self.repos[full_name].releases

    def dispatches(self, full_name: str) -> list[Dispatch]:
        return self.repos[full_name].dispatches

    # --- state changes shared by the seeding API and the handlers -----------------------------------

    def _new_issue(
        self, repo: Repo, title: str, body: str | None, user: str, labels: list[str], pull: Pull | None = None
    ) -> Issue:
        moment = now()
        number = len(repo.issues) + 1
        for label in labels:
            repo.labels.setdefault(label, Label(label))
        issue = Issue(next(self._ids), number, title, body, user, list(dict.fromkeys(labels)), moment, moment)
        issue.pull = pull
        repo.issues[number] = issue
        return issue

    def _new_comment(self, issue: Issue, body: str, user: str) -> Comment:
        moment = now()
        comment = Comment(next(self._ids), body, user, moment, moment)
        issue.comments.append(comment)
        issue.updated_at = moment
        return comment

    def _set_state(self, issue: Issue, state: str, reason: str | None) -> None:
        if state not in ("open", "closed"):
            _invalid("Issue", "invalid", "state")
        if state != issue.state:
            issue.closed_at = now() if state == "closed" else None
            issue.state_reason = reason or ("completed" if state == "closed" else "reopened")
        issue.state = state

    # --- lookups ------------------------------------------------------------------------------------

    def _actor(self, request: Request) -> str:
        return self.tokens.get(token_of(request) or "", self.bot_login)

    def authorize(self, request: Request, handler: str, fields: dict[str, str]) -> None:
        """A job token outside its permissions gets GitHub's 403, naming what would do in the header GitHub
        sends. Any token may read a public repository; no job token may write metadata."""
        granted = self.scopes.get(token_of(request) or "")
        repo = self.repos.get(f"{fields.get('owner')}/{fields.get('name')}")
        if granted is None or repo is None or handler not in ACCEPTED:
            return
        level = "read" if request.method in ("GET", "HEAD") else "write"
        if level == "read" and not repo.private:
            return
        accepted = ACCEPTED[handler]
        if handler in _ISSUE_ROUTES and not self._is_pull(repo, fields):
            accepted = ("issues",)
        have = {scope: granted.get(scope, "none") for scope in accepted} | {"metadata": "read"}
        if any(have.get(scope) in ("write", level) for scope in accepted):
            return
        header = "; ".join(f"{scope.replace('-', '_')}={level}" for scope in accepted)
        body = {"message": "Resource not accessible by integration", "documentation_url": PERMISSIONS_DOCS,
                "status": "403"}
        abort_with(json_response(body, 403, {"X-Accepted-GitHub-Permissions": header}))

    def _is_pull(self, repo: Repo, fields: dict[str, str]) -> bool:
        """Whether an issue route is about a pull request (by number, or by one of its comments' ids)."""
        if "number" in fields:
            issue = repo.issues.get(int(fields["number"]))
            return bool(issue and issue.pull)
        if "id" in fields:
            return any(issue.pull and any(c.id == int(fields["id"]) for c in issue.comments)
                       for issue in repo.issues.values())
        return True  # repository-wide labels and lists serve pull requests too

    def _starts_workflows(self, request: Request) -> bool:
        """A person's token does; the Actions token (a job's, or any token not mapped to a person) does not."""
        login = self.tokens.get(token_of(request) or "")
        return login is not None and (token_of(request) or "") not in self.scopes and not login.endswith("[bot]")

    def _pushed(self, repo: Repo, ref: str, actor: str) -> None:
        """A push of `ref`: start each workflow at the pushed commit whose `on: push` filters take it."""
        sha = repo.resolve(ref)
        if sha is None:
            return
        for file in repo.workflows(sha):
            on = triggers(repo.history[sha].files[f".github/workflows/{file}"])
            if "push" in on and push_starts(on["push"], ref):
                repo.dispatches.append(Dispatch("push", file, {}, ref, next(self._ids), now(), actor=actor))

    def _pushed_by(self, request: Request, repo: Repo, ref: str) -> None:
        if self._starts_workflows(request):
            self._pushed(repo, ref, self._actor(request))

    def _repo(self, owner: str, name: str) -> Repo:
        return self.repos.get(f"{owner}/{name}") or _fail(404, "Not Found")

    def _issue(self, owner: str, name: str, number: str) -> tuple[Repo, Issue]:
        repo = self._repo(owner, name)
        return repo, repo.issues.get(int(number)) or _fail(404, "Not Found")

    def _pull(self, owner: str, name: str, number: str) -> tuple[Repo, Issue]:
        repo, issue = self._issue(owner, name, number)
        return (repo, issue) if issue.pull else _fail(404, "Not Found")

    def _comment(self, owner: str, name: str, comment_id: str) -> tuple[Repo, Issue, Comment]:
        repo = self._repo(owner, name)
        for issue in repo.issues.values():
            for comment in issue.comments:
                if comment.id == int(comment_id):
                    return repo, issue, comment
        _fail(404, "Not Found")

    def _page(self, request: Request, items: list[Any], key: str | None = None) -> Response:
        """One page of a list (of the `key` array of an object with its `total_count`, when given), with
        GitHub's `Link: <...>; rel="next"` when more follow; like GitHub, at most 100 a page."""
        per_page, page = min(int(request.args.get("per_page", 30)), 100), int(request.args.get("page", 1))
        shown = items[(page - 1) * per_page : page * per_page]
        response = json_response({"total_count": len(items), key: shown} if key else shown)
        if page * per_page < len(items):
            query = urlencode({**request.args, "page": page + 1})
            response.headers["Link"] = f'<{self.base_url}{raw_path(request)}?{query}>; rel="next"'
        return response

    # --- JSON shapes: as GitHub sends them (checked by tests/test_conformance_openapi.py) --------------

    def _user(self, login: str) -> dict[str, Any]:
        """A simple-user as GitHub embeds one (owner, author, sender): node id, avatar and URL templates."""
        uid, kind = zlib.crc32(login.encode()), "Bot" if login.endswith("[bot]") else "User"
        url = f"{self.base_url}/users/{quote(login)}"
        html = f"{HTML_URL}/apps/{login.removesuffix('[bot]')}" if kind == "Bot" else f"{HTML_URL}/{login}"
        return {
            "login": login, "id": uid, "node_id": _node_id(kind, uid), "gravatar_id": "",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "url": url, "html_url": html,
            "followers_url": f"{url}/followers", "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}", "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": kind, "user_view_type": "public",
            "site_admin": False,
        }

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.base_url}/repos/{repo.full_name}"

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        """The full repository (its creation is its first commit, its last push the default branch's head)."""
        url, html = self._repo_url(repo), f"{HTML_URL}/{repo.full_name}"
        log = repo.history.first_parent_log(repo.branches[repo.default_branch])
        created, pushed = _iso(log[-1].date), _iso(log[0].date)
        open_issues = sum(issue.state == "open" for issue in repo.issues.values())
        return {
            "id": repo.id, "node_id": _node_id("Repository", repo.id), "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name, "private": repo.private, "owner": self._user(repo.owner),
            "html_url": html, "description": None, "fork": False, "url": url,
            **{key: url + suffix for key, suffix in REPO_URLS.items()},
            "created_at": created, "updated_at": pushed, "pushed_at": pushed,
            "git_url": f"git://github.com/{repo.full_name}.git", "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{html}.git", "svn_url": html, "homepage": None, "size": 0, "language": None,
            "stargazers_count": 0, "watchers_count": 0, "watchers": 0, "forks_count": 0, "forks": 0,
            "has_issues": True, "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
            "has_discussions": False, "mirror_url": None, "archived": False, "disabled": False, "license": None,
            "open_issues_count": open_issues, "open_issues": open_issues, "allow_forking": True,
            "is_template": False, "web_commit_signoff_required": False, "topics": [],
            "visibility": "private" if repo.private else "public", "default_branch": repo.default_branch,
            "network_count": 0, "subscribers_count": 0,
        }

    def _association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if repo.permissions.get(login, "none") != "none" else "NONE"

    def _label_json(self, repo: Repo, label: Label) -> dict[str, Any]:
        label_id = zlib.crc32(f"{repo.full_name}:{label.name}".encode())
        return {
            "id": label_id,
            "node_id": _node_id("Label", label_id),
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "default": False,
            "url": f"{self._repo_url(repo)}/labels/{quote(label.name)}",
        }

    def _issue_json(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        data = {
            "id": issue.id,
            "node_id": _node_id("PullRequest" if issue.pull else "Issue", issue.id),
            "number": issue.number,
            "url": url,
            "repository_url": self._repo_url(repo),
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "timeline_url": f"{url}/timeline",
            "html_url": f"{HTML_URL}/{repo.full_name}/{kind}/{issue.number}",
            "title": issue.title,
            "body": issue.body,
            "user": self._user(issue.user),
            "labels": [self._label_json(repo, repo.labels[label]) for label in issue.labels],
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "active_lock_reason": None,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": len(issue.comments),
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at),
            "closed_at": _iso(issue.closed_at),
            "author_association": self._association(repo, issue.user),
            "performed_via_github_app": None,
            "reactions": _reactions(url),
        }
        if issue.pull:
            html = data["html_url"]
            data["draft"] = issue.pull.draft
            data["pull_request"] = {
                "url": f"{self._repo_url(repo)}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": _iso(issue.pull.merged_at),
            }
        return data

    def _comment_json(self, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
        issue_json = self._issue_json(repo, issue)
        url = f"{self._repo_url(repo)}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": _node_id("IssueComment", comment.id),
            "url": url,
            "html_url": f"{issue_json['html_url']}#issuecomment-{comment.id}",
            "issue_url": issue_json["url"],
            "body": comment.body,
            "user": self._user(comment.user),
            "created_at": _iso(comment.created_at),
            "updated_at": _iso(comment.updated_at),
            "author_association": self._association(repo, comment.user),
            "performed_via_github_app": None,
            "reactions": _reactions(url),
        }

    def _pull_json(self, repo: Repo, issue: Issue, full: bool = True) -> dict[str, Any]:
        """A pull request; a list (`full=False`) carries GitHub's pull-request-simple, without the merge
        state, the counts and `merged_by`, exactly as the real list does."""
        assert issue.pull is not None
        pull, issue_json = issue.pull, self._issue_json(repo, issue)
        url = f"{self._repo_url(repo)}/pulls/{issue.number}"
        head_sha = repo.branches.get(pull.head, pull.head_sha)

        def side(ref: str, sha: str | None) -> dict[str, Any]:
            return {"ref": ref, "sha": sha, "label": f"{repo.owner}:{ref}", "user": self._user(repo.owner),
                    "repo": self._repo_json(repo)}

        shared = ("id", "node_id", "number", "html_url", "title", "body", "user", "labels", "state", "locked",
                  "active_lock_reason", "assignee", "assignees", "milestone", "created_at", "updated_at",
                  "closed_at", "author_association", "draft")
        links = {"self": url, "html": issue_json["html_url"], "issue": issue_json["url"],
                 "comments": issue_json["comments_url"], "review_comments": f"{url}/comments",
                 "review_comment": f"{self._repo_url(repo)}/pulls/comments{{/number}}",
                 "commits": f"{url}/commits", "statuses": f"{self._repo_url(repo)}/statuses/{head_sha}"}
        data = {key: issue_json[key] for key in shared} | {
            "url": url,
            "issue_url": issue_json["url"],
            "comments_url": issue_json["comments_url"],
            "diff_url": f"{issue_json['html_url']}.diff",
            "patch_url": f"{issue_json['html_url']}.patch",
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "statuses_url": links["statuses"],
            "_links": {name: {"href": href} for name, href in links.items()},
            "head": side(pull.head, head_sha),
            "base": side(pull.base, repo.branches.get(pull.base)),
            "requested_reviewers": [],
            "requested_teams": [],
            "merged_at": _iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "auto_merge": None,
        }
        if not full:
            return data
        return data | {
            "merged": pull.merged_at is not None,
            "mergeable": issue.state == "open" or None,
            "rebaseable": issue.state == "open" or None,
            "mergeable_state": "clean" if issue.state == "open" else "unknown",
            "merged_by": self._user(issue.user) if pull.merged_at else None,
            "maintainer_can_modify": False,
            "comments": len(issue.comments),
            "review_comments": 0,
            "commits": 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def _person(self, commit: Commit) -> dict[str, Any]:
        return {"name": commit.author, "email": f"{commit.author}@users.noreply.github.com", "date": _iso(commit.date)}

    def _parents(self, repo: Repo, commit: Commit) -> list[dict[str, Any]]:
        return [{"sha": sha, "url": f"{self._repo_url(repo)}/commits/{sha}",
                 "html_url": f"{HTML_URL}/{repo.full_name}/commit/{sha}"} for sha in commit.parents]

    def _commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A git commit object (what the Contents API answers with)."""
        return {
            "sha": commit.sha,
            "url": f"{self._repo_url(repo)}/git/commits/{commit.sha}",
            "html_url": f"{HTML_URL}/{repo.full_name}/commit/{commit.sha}",
            "message": commit.message,
            "author": self._person(commit),
            "committer": self._person(commit),
            "parents": self._parents(repo, commit),
        }

    def _rest_commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        """A commit as the REST API shows one (branches, compare): the git commit inside, GitHub users outside."""
        url = f"{self._repo_url(repo)}/commits/{commit.sha}"
        git = self._git_commit_json(repo, commit)
        return {
            "sha": commit.sha,
            "node_id": _node_id("Commit", commit.sha),
            "url": url,
            "html_url": git["html_url"],
            "comments_url": f"{url}/comments",
            "commit": {"url": git["url"], "author": git["author"], "committer": git["committer"],
                       "message": commit.message, "comment_count": 0, "tree": git["tree"],
                       "verification": git["verification"]},
            "author": self._user(commit.author),
            "committer": self._user(commit.author),
            "parents": self._parents(repo, commit),
        }

    def _ref_json(self, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "ref": ref,
            "node_id": _node_id("Ref", f"{repo.id}:{ref}"),
            "url": f"{self._repo_url(repo)}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._repo_url(repo)}/git/commits/{sha}"},
        }

    def _content_json(
        self, repo: Repo, path: str, ref: str, data: bytes | None, with_content: bool = True
    ) -> dict[str, Any]:
        """A file (`data`; its base64 content only if `with_content`) or, for None, a directory entry."""
        url = f"{self._repo_url(repo)}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        kind, sha = ("dir", git_blob_sha(path.encode())) if data is None else ("file", git_blob_sha(data))
        html = f"{HTML_URL}/{repo.full_name}/{'tree' if data is None else 'blob'}/{quote(ref)}/{quote(path)}"
        git_url = f"{self._repo_url(repo)}/git/{'trees' if data is None else 'blobs'}/{sha}"
        entry = {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if data is None else len(data),
            "url": url,
            "html_url": html,
            "git_url": git_url,
            "download_url": None if data is None else
            f"https://raw.githubusercontent.com/{repo.full_name}/{quote(ref)}/{quote(path)}",
            "_links": {"self": url, "git": git_url, "html": html},
        }
        return (
            entry | {"encoding": "base64", "content": base64.b64encode(data).decode()}
            if data is not None and with_content
            else entry
        )

    def _release_json(self, repo: Repo, release: Release) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/releases/{release.id}"
        return {
            "id": release.id,
            "node_id": _node_id("Release", release.id),
            "url": url,
            "assets_url": f"{url}/assets",
            "upload_url": f"https://uploads.github.com/repos/{repo.full_name}/releases/{release.id}/assets{{?name,label}}",
            "html_url": f"{HTML_URL}/{repo.full_name}/releases/tag/{quote(release.tag_name)}",
            "tarball_url": f"{self._repo_url(repo)}/tarball/{quote(release.tag_name)}",
            "zipball_url": f"{self._repo_url(repo)}/zipball/{quote(release.tag_name)}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "immutable": False,
            "author": self._user(release.author),
            "assets": [],
            "created_at": _iso(release.created_at),
            "published_at": None if release.draft else _iso(release.created_at),
        }

    # --- handlers: user, repository, branches, refs -------------------------------------------------

    def get_user(self, request: Request) -> Response:
        """The token's user, as GitHub's public-user."""
        profile = dict.fromkeys(("name", "company", "blog", "location", "email", "hireable", "bio"))
        counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
        return json_response(self._user(self._actor(request)) | profile | counts
                             | {"created_at": USERS_SINCE, "updated_at": USERS_SINCE})

    def get_repo(self, request: Request, owner: str, name: str) -> Response:
        return json_response(self._repo_json(self._repo(owner, name)))

    def _branch_json(self, repo: Repo, branch: str) -> dict[str, Any]:
        commit = repo.history[repo.branches[branch]]
        return {
            "name": branch,
            "commit": self._rest_commit_json(repo, commit),
            "_links": {"self": f"{self._repo_url(repo)}/branches/{quote(branch)}",
                       "html": f"{HTML_URL}/{repo.full_name}/tree/{quote(branch)}"},
            "protected": False,
            "protection": {"enabled": False, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{self._repo_url(repo)}/branches/{quote(branch)}/protection",
        }

    def list_branches(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [
            {"name": branch, "commit": {"sha": sha, "url": f"{self._repo_url(repo)}/commits/{sha}"}, "protected": False}
            for branch, sha in sorted(repo.branches.items())
        ])

    def get_branch(self, request: Request, owner: str, name: str, branch: str) -> Response:
        repo = self._repo(owner, name)
        if branch not in repo.branches:
            _fail(404, "Branch not found")
        return json_response(self._branch_json(repo, branch))

    def compare(self, request: Request, owner: str, name: str, basehead: str) -> Response:
        """`GET /compare/{base}...{head}`: where head stands against base (ahead, behind, diverged, identical)."""
        repo = self._repo(owner, name)
        base_ref, sep, head_ref = basehead.partition("...")
        base_sha, head_sha = repo.resolve(base_ref), repo.resolve(head_ref)
        if not sep or base_sha is None or head_sha is None:
            _fail(404, "Not Found")
        below_base = {c.sha for c in repo.history.ancestry(base_sha)}
        below_head = list(repo.history.ancestry(head_sha))
        ahead = [c for c in below_head if c.sha not in below_base]
        behind = below_base - {c.sha for c in below_head}
        merge_base = next((c for c in below_head if c.sha in below_base), None)
        status = ("identical" if base_sha == head_sha else "ahead" if not behind else
                  "behind" if not ahead else "diverged")
        html = f"{HTML_URL}/{repo.full_name}/compare/{basehead}"
        return json_response({
            "url": f"{self._repo_url(repo)}/compare/{basehead}", "html_url": html, "permalink_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "status": status, "ahead_by": len(ahead),
            "behind_by": len(behind), "total_commits": len(ahead),
            "base_commit": self._rest_commit_json(repo, repo.history[base_sha]),
            "merge_base_commit": self._rest_commit_json(repo, merge_base) if merge_base else None,
            "commits": [self._rest_commit_json(repo, c) for c in reversed(ahead)], "files": [],
        })

    def _refs(self, repo: Repo, ref: str) -> tuple[dict[str, str], str]:
        """`heads/x` or `refs/tags/x` -> (the dict holding it, its short name)."""
        kind, _, short = ref.removeprefix("refs/").partition("/")
        refs = {"heads": repo.branches, "tags": repo.tags}.get(kind)
        return (refs, short) if refs is not None and short else _fail(404, "Not Found")

    def get_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self._repo(owner, name)
        refs, short = self._refs(repo, ref)
        sha = refs.get(short) or _fail(404, "Not Found")
        return json_response(self._ref_json(repo, f"refs/{ref.removeprefix('refs/')}", sha))

    def create_ref(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        ref, sha = body.get("ref", ""), body.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            _fail(422, f"{ref} is not a valid ref name.")
        refs, short = self._refs(repo, ref)
        if short in refs:
            _fail(422, "Reference already exists")
        if sha not in repo.history.commits:
            _fail(422, "Object does not exist")
        refs[short] = sha
        self._pushed_by(request, repo, ref)
        return json_response(self._ref_json(repo, ref, sha), 201)

    def update_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        refs, short = self._refs(repo, f"refs/{ref}")
        old, sha = refs.get(short) or _fail(422, "Reference does not exist"), body.get("sha", "")
        if sha not in repo.history.commits:
            _fail(422, "Object does not exist")
        if not body.get("force") and not repo.history.is_ancestor(old, sha):
            _fail(422, "Update is not a fast forward")
        refs[short] = sha
        self._pushed_by(request, repo, f"refs/{ref}")
        return json_response(self._ref_json(repo, f"refs/{ref}", sha))

    def delete_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        refs, short = self._refs(self._repo(owner, name), f"refs/{ref}")
        if refs.pop(short, None) is None:
            _fail(422, "Reference does not exist")
        return Response(status=204)

    # --- handlers: contents -------------------------------------------------------------------------

    def get_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        repo = self._repo(owner, name)
        ref = request.args.get("ref") or repo.default_branch
        sha = repo.resolve(ref) or _fail(404, f"No commit found for the ref {ref}")
        files, path = repo.history[sha].files, path.strip("/")
        if path in files:
            return json_response(self._served_content(repo, path, ref, files[path]))
        prefix = f"{path}/" if path else ""
        children = {
            p[len(prefix) :].split("/", 1)[0]: "/" in p[len(prefix) :] for p in files if p.startswith(prefix)
        }
        if not children:
            _fail(404, "Not Found")
        listing = []
        for child, is_dir in sorted(children.items()):
            child_path = prefix + child
            listing.append(
                self._content_json(repo, child_path, ref, None if is_dir else files[child_path], False)
            )
        return json_response(listing)

    def _write(
        self, request: Request, owner: str, name: str, path: str, data: bytes | None
    ) -> tuple[Repo, Commit, bool]:
        """Shared by create/update/delete: GitHub's sha checks, then one commit on the branch."""
        repo, body = self._repo(owner, name), _json(request) or {}
        branch = body.get("branch") or repo.default_branch
        if branch not in repo.branches:
            _fail(404, f"Branch {branch} not found")
        current = repo.history[repo.branches[branch]].files.get(path)
        if current is None and data is None:
            _fail(404, "Not Found")
        if current is not None and not body.get("sha"):
            _fail(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if current is not None and body["sha"] != git_blob_sha(current):
            _fail(409, f"{path} does not match {body['sha']}")
        commit = repo.push(branch, {path: data}, body.get("message", ""), self._actor(request))
        self._pushed_by(request, repo, f"refs/heads/{branch}")
        return repo, commit, current is None

    def put_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        body = _json(request) or {}
        if "content" not in body:
            _invalid("Content", "missing_field", "content")
        data = base64.b64decode(body["content"])
        self._refuse_too_large(data)
        repo, commit, created = self._write(request, owner, name, path, data)
        content = self._content_json(repo, path, body.get("branch") or repo.default_branch, data, False)
        return json_response(
            {"content": content, "commit": self._commit_json(repo, commit)}, 201 if created else 200
        )

    def delete_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        repo, commit, _ = self._write(request, owner, name, path, None)
        return json_response({"content": None, "commit": self._commit_json(repo, commit)})

    # --- handlers: issues, comments, labels, permissions --------------------------------------------

    def list_issues(self, request: Request, owner: str, name: str) -> Response:
        repo, args = self._repo(owner, name), request.args
        state = args.get("state", "open")
        wanted = {label for label in args.get("labels", "").split(",") if label}
        issues = [
            issue
            for issue in reversed(repo.issues.values())
            if state in ("all", issue.state)
            and wanted <= set(issue.labels)
            and args.get("creator", issue.user) == issue.user
        ]
        return self._page(request, [self._issue_json(repo, issue) for issue in issues])

    def create_issue(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        if not body.get("title"):
            _invalid("Issue", "missing_field", "title")
        issue = self._new_issue(
            repo, body["title"], body.get("body"), self._actor(request), body.get("labels", [])
        )
        return json_response(self._issue_json(repo, issue), 201)

    def get_issue(self, request: Request, owner: str, name: str, number: str) -> Response:
        return json_response(self._issue_json(*self._issue(owner, name, number)))

    def edit_issue(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = _json(request) or {}
        issue.title = body.get("title", issue.title)
        issue.body = body.get("body", issue.body)
        if "labels" in body:
            issue.labels = []
            self._add_labels(repo, issue, body["labels"])
        if "state" in body:
            self._set_state(issue, body["state"], body.get("state_reason"))
        issue.updated_at = now()
        return json_response(self._issue_json(repo, issue))

    def list_comments(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        return self._page(request, [self._comment_json(repo, issue, comment) for comment in issue.comments])

    def create_comment(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = (_json(request) or {}).get("body") or _invalid("IssueComment", "missing_field", "body")
        comment = self._new_comment(issue, body, self._actor(request))
        return json_response(self._comment_json(repo, issue, comment), 201)

    def get_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        return json_response(self._comment_json(*self._comment(owner, name, id)))

    def edit_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        repo, issue, comment = self._comment(owner, name, id)
        comment.body = (_json(request) or {}).get("body") or _invalid("IssueComment", "missing_field", "body")
        comment.updated_at = now()
        return json_response(self._comment_json(repo, issue, comment))

    def delete_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        _, issue, comment = self._comment(owner, name, id)
        issue.comments.remove(comment)
        return Response(status=204)

    def _add_labels(self, repo: Repo, issue: Issue, names: list[Any]) -> None:
        """Add by name; like GitHub, a label unknown to the repository is created on the fly."""
        for label in names:
            label_name = label["name"] if isinstance(label, dict) else str(label)
            repo.labels.setdefault(label_name, Label(label_name))
            if label_name not in issue.labels:
                issue.labels.append(label_name)

    def _issue_labels(self, repo: Repo, issue: Issue) -> Response:
        return json_response([self._label_json(repo, repo.labels[label]) for label in issue.labels])

    def list_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        return self._issue_labels(*self._issue(owner, name, number))

    def add_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = _json(request)
        self._add_labels(repo, issue, body.get("labels", []) if isinstance(body, dict) else body or [])
        return self._issue_labels(repo, issue)

    def set_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        _, issue = self._issue(owner, name, number)
        issue.labels = []
        return self.add_issue_labels(request, owner, name, number)

    def remove_issue_label(
        self, request: Request, owner: str, name: str, number: str, label: str
    ) -> Response:
        repo, issue = self._issue(owner, name, number)
        if label not in issue.labels:
            _fail(404, "Label does not exist")
        issue.labels.remove(label)
        return self._issue_labels(repo, issue)

    def list_labels(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [self._label_json(repo, label) for label in repo.labels.values()])

    def create_label(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        label_name = body.get("name") or _invalid("Label", "missing_field", "name")
        if label_name in repo.labels:
            _invalid("Label", "already_exists", "name")
        label = repo.labels[label_name] = Label(
            label_name, body.get("color", "ededed"), body.get("description")
        )
        return json_response(self._label_json(repo, label), 201)

    def get_label(self, request: Request, owner: str, name: str, label: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._label_json(repo, repo.labels.get(label) or _fail(404, "Not Found")))

    def get_permission(self, request: Request, owner: str, name: str, user: str) -> Response:
        role = self._repo(owner, name).permissions.get(user, "none")
        levels = ("read", "triage", "write", "maintain", "admin")
        rank = levels.index(role) if role in levels else -1
        granted = {"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3, "admin": rank >= 4}
        collaborator = self._user(user) | {"role_name": role, "permissions": granted}
        return json_response({"permission": LEGACY_PERMISSION[role], "role_name": role, "user": collaborator})

    # --- handlers: pull requests --------------------------------------------------------------------

    def list_pulls(self, request: Request, owner: str, name: str) -> Response:
        repo, args = self._repo(owner, name), request.args
        state, head, base = args.get("state", "open"), args.get("head"), args.get("base")
        pulls = [
            issue
            for issue in reversed(repo.issues.values())
            if issue.pull
            and state in ("all", issue.state)
            and head in (None, issue.pull.head, f"{repo.owner}:{issue.pull.head}")
            and base in (None, issue.pull.base)
        ]
        return self._page(request, [self._pull_json(repo, issue, full=False) for issue in pulls])

    def create_pull(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        head, base = str(body.get("head", "")).split(":")[-1], body.get("base", "")
        if head not in repo.branches:
            _invalid("PullRequest", "invalid", "head")
        if base not in repo.branches:
            _invalid("PullRequest", "invalid", "base")
        if repo.history.is_ancestor(repo.branches[head], repo.branches[base]):
            _invalid("PullRequest", "custom", "head", f"No commits between {base} and {head}")
        if any(
            i.pull and i.state == "open" and (i.pull.head, i.pull.base) == (head, base)
            for i in repo.issues.values()
        ):
            _invalid(
                "PullRequest", "custom", "head", f"A pull request already exists for {repo.owner}:{head}."
            )
        pull = Pull(head, base, repo.branches[head], draft=bool(body.get("draft")))
        issue = self._new_issue(
            repo, body.get("title") or head, body.get("body"), self._actor(request), [], pull
        )
        return json_response(self._pull_json(repo, issue), 201)

    def get_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        return json_response(self._pull_json(*self._pull(owner, name, number)))

    def edit_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._pull(owner, name, number)
        assert issue.pull is not None
        body = _json(request) or {}
        issue.title = body.get("title", issue.title)
        issue.body = body.get("body", issue.body)
        issue.pull.base = body.get("base", issue.pull.base)
        if "state" in body:
            self._set_state(issue, body["state"], None)
        issue.updated_at = now()
        return json_response(self._pull_json(repo, issue))

    def list_pull_files(self, request: Request, owner: str, name: str, number: str) -> Response:
        """Files changed on the head branch since it forked from the base branch."""
        repo, issue = self._pull(owner, name, number)
        assert issue.pull is not None
        head_sha = repo.branches.get(issue.pull.head, issue.pull.head_sha)
        base_sha = repo.branches[issue.pull.base]
        head = repo.history[head_sha].files
        fork = {c.sha for c in repo.history.ancestry(base_sha)}
        old = next((c.files for c in repo.history.ancestry(head_sha) if c.sha in fork), {})
        changed = [
            self._diff_entry(repo, path, old.get(path), head.get(path), head_sha)
            for path in sorted(old.keys() | head.keys())
            if old.get(path) != head.get(path)
        ]
        return self._page(request, changed)

    def _diff_entry(self, repo: Repo, path: str, old: bytes | None, new: bytes | None, sha: str) -> dict[str, Any]:
        """GitHub's diff-entry: status, line counts (none above 1 MiB, where GitHub shows no diff) and URLs."""
        added = removed = 0
        if max(len(old or b""), len(new or b"")) <= CONTENTS_LIMIT:
            for line in difflib.unified_diff((old or b"").decode(errors="replace").splitlines(),
                                             (new or b"").decode(errors="replace").splitlines(), lineterm="", n=0):
                added += line.startswith("+") and not line.startswith("+++")
                removed += line.startswith("-") and not line.startswith("---")
        status = "added" if old is None else "removed" if new is None else "modified"
        quoted = quote(path)
        return {
            "sha": git_blob_sha(new if new is not None else old or b""), "filename": path, "status": status,
            "additions": added, "deletions": removed, "changes": added + removed,
            "blob_url": f"{HTML_URL}/{repo.full_name}/blob/{sha}/{quoted}",
            "raw_url": f"{HTML_URL}/{repo.full_name}/raw/{sha}/{quoted}",
            "contents_url": f"{self._repo_url(repo)}/contents/{quoted}?ref={sha}",
        }

    def merge_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        """Merge the head branch into the base branch: a three-way merge of snapshots, as one new commit."""
        repo, issue = self._pull(owner, name, number)
        pull, body = issue.pull, _json(request) or {}
        assert pull is not None
        if issue.state != "open" or pull.head not in repo.branches:
            _fail(405, "Pull Request is not mergeable")
        head_sha, base_sha = repo.branches[pull.head], repo.branches[pull.base]
        if body.get("sha") and body["sha"] != head_sha:
            _fail(409, "Head branch was modified. Review and try the merge again.")
        files, conflicts = repo.history.merge(base_sha, head_sha)
        if conflicts:
            _fail(405, "Pull Request is not mergeable")
        method = body.get("merge_method") or "merge"
        default_title = (
            f"Merge pull request #{issue.number} from {repo.owner}/{pull.head}"
            if method == "merge"
            else f"{issue.title} (#{issue.number})"
        )
        message = "\n\n".join(
            filter(None, [body.get("commit_title") or default_title, body.get("commit_message")])
        )
        parents = (base_sha, head_sha) if method == "merge" else (base_sha,)
        commit = repo.history.commit(files, parents, message, self._actor(request))
        repo.branches[pull.base] = commit.sha
        self._pushed_by(request, repo, f"refs/heads/{pull.base}")
        pull.head_sha, pull.merged_at, pull.merge_commit_sha = head_sha, now(), commit.sha
        self._set_state(issue, "closed", "completed")
        return json_response(
            {"sha": commit.sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    # --- handlers: releases, dispatches, workflows --------------------------------------------------

    def _release(self, repo: Repo, tag: str) -> Release | None:
        return next((release for release in repo.releases if release.tag_name == tag), None)

    def list_releases(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [self._release_json(repo, release) for release in reversed(repo.releases)])

    def create_release(self, request: Request, owner: str, name: str) -> Response:
        """Publishing a release for a tag that does not exist yet creates it at `target_commitish`."""
        repo, body = self._repo(owner, name), _json(request) or {}
        tag = body.get("tag_name") or _invalid("Release", "missing_field", "tag_name")
        if self._release(repo, tag):
            _invalid("Release", "already_exists", "tag_name")
        target = body.get("target_commitish") or repo.default_branch
        if tag not in repo.tags and not body.get("draft"):
            repo.tags[tag] = repo.resolve(target) or _invalid("Release", "invalid", "target_commitish")
            self._pushed_by(request, repo, f"refs/tags/{tag}")
        release = Release(
            next(self._ids),
            tag,
            body.get("name"),
            body.get("body"),
            target,
            bool(body.get("draft")),
            bool(body.get("prerelease")),
            self._actor(request),
            now(),
        )
        repo.releases.append(release)
        return json_response(self._release_json(repo, release), 201)

    def get_release_by_tag(self, request: Request, owner: str, name: str, tag: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._release_json(repo, self._release(repo, tag) or _fail(404, "Not Found")))

    def get_release(self, request: Request, owner: str, name: str, id: str) -> Response:
        repo = self._repo(owner, name)
        release = next((r for r in repo.releases if r.id == int(id)), None) or _fail(404, "Not Found")
        return json_response(self._release_json(repo, release))

    def repository_dispatch(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        event_type = body.get("event_type") or _invalid("RepositoryDispatch", "missing_field", "event_type")
        repo.dispatches.append(Dispatch("repository_dispatch", event_type, body.get("client_payload") or {}))
        return Response(status=204)

    def _workflow(self, repo: Repo, workflow: str) -> tuple[str, int]:
        """Look a workflow up by file name or id, as GitHub accepts either."""
        found = [(file, id_) for file, id_ in repo.workflows().items() if workflow in (file, str(id_))]
        return found[0] if found else _fail(404, "Not Found")

    def get_workflow(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._workflow_json(repo, *self._workflow(repo, workflow)))

    def _workflow_json(self, repo: Repo, file: str, workflow_id: int) -> dict[str, Any]:
        """A workflow as GitHub lists it: named by its `name:` (else its path), dated by the repository."""
        path = f".github/workflows/{file}"
        try:
            doc = yaml.safe_load(repo.files().get(path, b""))
        except yaml.YAMLError:
            doc = None
        created = _iso(repo.history.first_parent_log(repo.branches[repo.default_branch])[-1].date)
        url = f"{self._repo_url(repo)}/actions/workflows/{workflow_id}"
        return {
            "id": workflow_id,
            "node_id": _node_id("Workflow", workflow_id),
            "name": str(doc.get("name") or path) if isinstance(doc, dict) else path,
            "path": path,
            "state": "active",
            "created_at": created,
            "updated_at": created,
            "url": url,
            "html_url": f"{HTML_URL}/{repo.full_name}/blob/{repo.default_branch}/{path}",
            "badge_url": f"{HTML_URL}/{repo.full_name}/workflows/{quote(file)}/badge.svg",
        }

    def _run_json(self, repo: Repo, file: str, run: Dispatch) -> dict[str, Any]:
        """A workflow run (the one a dispatch or push started), at the commit its ref names now."""
        workflow = self._workflow_json(repo, file, repo.workflows()[file])
        sha = repo.resolve(run.ref or "") or repo.branches[repo.default_branch]
        commit, url = repo.history[sha], f"{self._repo_url(repo)}/actions/runs/{run.id}"
        person = {"name": commit.author, "email": f"{commit.author}@users.noreply.github.com"}
        number = sum(d.name == file and d.event != "repository_dispatch" and d.id <= run.id for d in repo.dispatches)
        actor = self._user(run.actor or self.bot_login)
        return {
            "id": run.id, "node_id": _node_id("WorkflowRun", run.id), "name": workflow["name"],
            "display_title": workflow["name"] if run.event == "workflow_dispatch" else commit.title,
            "head_branch": _short_ref(run.ref), "head_sha": sha, "path": workflow["path"], "run_number": number,
            "run_attempt": 1, "event": run.event, "status": run.status, "conclusion": run.conclusion,
            "workflow_id": workflow["id"], "check_suite_id": run.id, "check_suite_node_id": _node_id("CheckSuite", run.id),
            "url": url, "html_url": f"{HTML_URL}/{repo.full_name}/actions/runs/{run.id}", "pull_requests": [],
            "created_at": _iso(run.created_at), "updated_at": _iso(run.created_at),
            "run_started_at": _iso(run.created_at), "actor": actor, "triggering_actor": actor,
            "jobs_url": f"{url}/jobs", "logs_url": f"{url}/logs", "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel", "rerun_url": f"{url}/rerun", "previous_attempt_url": None,
            "check_suite_url": f"{self._repo_url(repo)}/check-suites/{run.id}", "workflow_url": workflow["url"],
            "head_commit": {"id": sha, "tree_id": self._tree_of(repo, sha), "message": commit.message, "timestamp": _iso(commit.date),
                            "author": person, "committer": person},
            "repository": self._repo_json(repo), "head_repository": self._repo_json(repo),
        }

    def workflow_dispatch(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        """Like GitHub: the workflow file at `ref` must have the trigger, and the inputs must be those it declares."""
        repo, body = self._repo(owner, name), _json(request) or {}
        file, _ = self._workflow(repo, workflow)
        ref = body.get("ref") or _invalid("Workflow", "missing_field", "ref")
        sha = repo.resolve(ref) or _fail(422, f"No ref found for: {ref}")
        on = triggers(repo.history[sha].files.get(f".github/workflows/{file}", b""))
        if "workflow_dispatch" not in on:
            _fail(422, "Workflow does not have 'workflow_dispatch' trigger")
        declared = (on["workflow_dispatch"] or {}).get("inputs") or {}
        inputs = body.get("inputs") or {}
        if unexpected := [key for key in inputs if key not in declared]:
            _fail(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        for key, spec in declared.items():
            if (spec or {}).get("required") and (spec or {}).get("default") is None and key not in inputs:
                _fail(422, f"Required input '{key}' not provided")
        repo.dispatches.append(Dispatch("workflow_dispatch", file, inputs, ref, next(self._ids), now(),
                                        actor=self._actor(request)))
        return Response(status=204)

    def list_runs(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        """The runs that dispatches and pushes started, newest first, filtered by `branch` like GitHub."""
        repo = self._repo(owner, name)
        file, _ = self._workflow(repo, workflow)
        branch = request.args.get("branch")
        runs = [d for d in reversed(repo.dispatches) if d.event != "repository_dispatch" and d.name == file
                and (branch is None or _short_ref(d.ref) == branch)]
        return self._page(request, [self._run_json(repo, file, d) for d in runs], "workflow_runs")

    # --- git data: blobs, trees and commits (one commit for many files, as the bot writes) ------------

    def _store_tree(self, repo: Repo, flat: dict[str, tuple[str, str]]) -> str:
        """Store the trees of a flat {path: (mode, blob sha)} listing; returns the root tree's sha."""
        nested: dict[str, Any] = {}
        for path, entry in flat.items():
            *dirs, leaf = path.split("/")
            node = nested
            for part in dirs:
                node = node.setdefault(part, {})
            node[leaf] = entry

        def store(node: dict[str, Any]) -> str:
            entries = [TreeEntry(part, TREE_MODE, "tree", store(v)) if isinstance(v, dict)
                       else TreeEntry(part, v[0], "blob", v[1]) for part, v in node.items()]
            sha = tree_sha(entries)
            repo.trees[sha] = entries
            return sha

        return store(nested)

    def _flat(self, repo: Repo, sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """A stored tree as {path: (mode, blob sha)}, subtrees included."""
        flat: dict[str, tuple[str, str]] = {}
        for entry in repo.trees[sha]:
            if entry.type == "tree":
                flat |= self._flat(repo, entry.sha, f"{prefix}{entry.name}/")
            else:
                flat[prefix + entry.name] = (entry.mode, entry.sha)
        return flat

    def _tree_of(self, repo: Repo, commit_sha: str) -> str:
        """A commit's root tree: the one it was made with, or built once from its snapshot (blobs stored)."""
        if (sha := repo.commit_trees.get(commit_sha)) is None:
            flat = {}
            for path, data in repo.history[commit_sha].files.items():
                blob = git_blob_sha(data)
                repo.blobs[blob], flat[path] = data, ("100644", blob)
            sha = repo.commit_trees[commit_sha] = self._store_tree(repo, flat)
        return sha

    def _has_blob(self, repo: Repo, sha: str) -> bool:
        """Whether the repository holds the blob: uploaded, or the content of a file of any commit."""
        for commit_sha in repo.history.commits:
            if sha in repo.blobs:
                break
            self._tree_of(repo, commit_sha)
        return sha in repo.blobs

    def _git_commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        tree = self._tree_of(repo, commit.sha)
        return self._commit_json(repo, commit) | {
            "node_id": base64.b64encode(f"04:Commit{repo.id}:{commit.sha}".encode()).decode(),
            "tree": {"sha": tree, "url": f"{self._repo_url(repo)}/git/trees/{tree}"},
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        }

    def _tree_json(self, repo: Repo, sha: str, recursive: bool) -> dict[str, Any]:
        url, items = self._repo_url(repo), []

        def walk(tree: str, prefix: str) -> None:
            for entry in sorted(repo.trees[tree], key=lambda e: e.name):
                kind = "trees" if entry.type == "tree" else "blobs"
                item = {"path": prefix + entry.name, "mode": entry.mode, "type": entry.type, "sha": entry.sha,
                        "url": f"{url}/git/{kind}/{entry.sha}"}
                if entry.type == "blob":
                    item["size"] = len(repo.blobs[entry.sha])
                items.append(item)
                if recursive and entry.type == "tree":
                    walk(entry.sha, f"{prefix}{entry.name}/")

        walk(sha, "")
        return {"sha": sha, "url": f"{url}/git/trees/{sha}", "tree": items, "truncated": False}

    def create_blob(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            _invalid("Blob", "missing_field", "content")
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error:
                _fail(422, "Invalid Base64 content")
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            _invalid("Blob", "invalid", "encoding", "encoding must be utf-8 or base64")
        self._refuse_too_large(data)
        sha = git_blob_sha(data)
        repo.blobs[sha] = data
        return json_response({"sha": sha, "url": f"{self._repo_url(repo)}/git/blobs/{sha}"}, 201)

    def get_blob(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        if not self._has_blob(repo, sha):
            _fail(404, "Not Found")
        data = repo.blobs[sha]
        return json_response({
            "sha": sha, "node_id": base64.b64encode(f"04:Blob{repo.id}:{sha}".encode()).decode(),
            "size": len(data), "url": f"{self._repo_url(repo)}/git/blobs/{sha}",
            "content": base64.b64encode(data).decode(), "encoding": "base64",
        })

    def create_tree(self, request: Request, owner: str, name: str) -> Response:
        """A new tree: `base_tree`'s entries (if given) with `tree`'s paths set, replaced or (sha null) deleted."""
        repo, body = self._repo(owner, name), _json(request) or {}
        elements, base = body.get("tree"), body.get("base_tree")
        if not isinstance(elements, list):
            _invalid("Tree", "missing_field", "tree")
        if base is not None and base not in repo.trees and not (
            base in repo.history.commits and (base := self._tree_of(repo, base))
        ):
            _fail(422, "Invalid tree info: base_tree is not a tree or commit of this repository")
        flat = self._flat(repo, base) if base else {}
        for element in elements:
            path, mode, kind = element.get("path"), element.get("mode"), element.get("type")
            if not path or path.startswith("/") or "//" in path:
                _invalid("Tree", "invalid", "tree.path")
            flat = {p: v for p, v in flat.items() if p != path and not p.startswith(f"{path}/")}
            if "content" in element:
                data = str(element["content"]).encode()
                repo.blobs[sha := git_blob_sha(data)] = data
            elif (sha := element.get("sha", ...)) is None:
                continue  # deleted
            if kind == "tree" and mode == TREE_MODE and sha in repo.trees:
                flat |= self._flat(repo, sha, f"{path}/")
            elif kind == "blob" and mode in BLOB_MODES and isinstance(sha, str) and self._has_blob(repo, sha):
                flat[path] = (mode, sha)
            else:
                _fail(422, f"tree.sha {sha} is not a valid {kind or 'object'}: GitRPC::BadObjectState")
        return json_response(self._tree_json(repo, self._store_tree(repo, flat), recursive=False), 201)

    def get_tree(self, request: Request, owner: str, name: str, sha: str) -> Response:
        """A tree by its sha, or the root tree of a commit or ref (GitHub takes either); `recursive`, set to
        anything, lists subtrees' entries too."""
        repo = self._repo(owner, name)
        if sha not in repo.trees:
            commit = repo.resolve(sha) or _fail(404, "Not Found")
            sha = self._tree_of(repo, commit)
        return json_response(self._tree_json(repo, sha, "recursive" in request.args))

    def create_git_commit(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), _json(request) or {}
        message, tree, parents = body.get("message"), body.get("tree"), body.get("parents", [])
        if not isinstance(message, str):
            _invalid("Commit", "missing_field", "message")
        if tree not in repo.trees:
            _fail(422, "Tree SHA does not exist")
        if not isinstance(parents, list) or any(p not in repo.history.commits for p in parents):
            _fail(422, "Parent SHA does not exist or is not a commit object")
        files = {path: repo.blobs[sha] for path, (_, sha) in self._flat(repo, tree).items()}
        author = (body.get("author") or {}).get("name") or self._actor(request)
        commit = repo.history.commit(files, tuple(parents), message, author)
        repo.commit_trees[commit.sha] = tree
        return json_response(self._git_commit_json(repo, commit), 201)

    def get_git_commit(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        if sha not in repo.history.commits:
            _fail(404, "Not Found")
        return json_response(self._git_commit_json(repo, repo.history[sha]))

    # --- limits: file sizes, rate limits, and the refusals a test asks for ------------------------------

    def _refuse_too_large(self, data: bytes) -> None:
        if len(data) > FILE_LIMIT:
            _fail(422, f"File is {len(data) / 2**20:.2f} MB; this exceeds GitHub's file size limit of 100.00 MB",
                  errors=[TOO_LARGE])

    def _served_content(self, repo: Repo, path: str, ref: str, data: bytes) -> dict[str, Any]:
        """The Contents API's JSON for a file: its content up to 1 MiB, none (`encoding: none`) up to 100 MiB;
        beyond that GitHub refuses (use the Git Data API, or clone)."""
        if len(data) > FILE_LIMIT:
            _fail(403, "This API returns blobs up to 100 MB in size. The requested blob is too large to fetch "
                       "via the API, but you can always clone the repository via Git to obtain it.",
                  errors=[TOO_LARGE], documentation_url="https://docs.github.com/rest/repos/contents")
        if len(data) > CONTENTS_INLINE_LIMIT:
            return self._content_json(repo, path, ref, data, False) | {"content": "", "encoding": "none"}
        return self._content_json(repo, path, ref, data)

    def refuse_next(self, status: int, times: int = 1, *, method: str = "", path: str = "",
                    query: dict[str, str] | None = None, retry_after: int | None = None,
                    reset_at: int | None = None) -> None:
        """Answer the next `times` requests (of `method`, when given) whose path contains `path` (and query has
        `query`) with `status` instead, as GitHub does:
        403/429 with `reset_at` (Unix time) is the primary rate limit (x-ratelimit-remaining 0 and
        x-ratelimit-reset), without it the secondary one (Retry-After when `retry_after` is given); 5xx is a
        server error."""
        self.refusals.extend(Refusal(status, method, path, query or {}, retry_after, reset_at) for _ in range(times))

    def _dispatch(self, request: Request, path: str) -> Response:
        """Every answer carries GitHub's x-ratelimit-* headers; a refusal a test asked for comes first."""
        refusal = next((r for r in self.refusals if r.path in path and r.method in ("", request.method)
                        and r.query.items() <= dict(request.args).items()), None)
        if refusal is not None:
            self.refusals.remove(refusal)
            response = self._refusal_response(refusal)
        else:
            try:
                response = super()._dispatch(request, path)
            except HTTPException as exc:
                if exc.response is None:
                    raise
                response = exc.response
        self.rate_used += 1
        reset = int(now().timestamp()) // 3600 * 3600 + 3600
        for header, value in (("x-ratelimit-limit", 5000), ("x-ratelimit-remaining", max(0, 5000 - self.rate_used)),
                              ("x-ratelimit-used", self.rate_used), ("x-ratelimit-reset", reset),
                              ("x-ratelimit-resource", "core")):
            response.headers.setdefault(header, str(value))
        return response

    def _refusal_response(self, refusal: Refusal) -> Response:
        if refusal.status >= 500:
            return json_response({"message": "Server Error"}, refusal.status)
        if refusal.reset_at is not None:
            return json_response(
                {"message": "API rate limit exceeded for installation ID 1.", "documentation_url": RATE_LIMIT_DOCS},
                refusal.status, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(refusal.reset_at)})
        message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If "
                   "you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000.")
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
        return json_response({"message": message, "documentation_url": RATE_LIMIT_DOCS}, refusal.status, headers)
