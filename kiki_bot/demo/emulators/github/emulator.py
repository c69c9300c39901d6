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
100 MiB, no content in the Contents API's JSON over 1 MiB, no issue, pull request or comment body over 65,536
characters, no release notes over 125,000, no label name over 50, at most 100 items a page; every answer
carries x-ratelimit-* headers, and `refuse_next` makes the next matching requests meet a rate limit (with or
without those headers) or a 5xx.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from ..server import Emulator, History, json_response, now, raw_path, token_of
from .actions import Actions
from .auth import Auth
from .gitdata import GitData
from .issues import Issues
from .limits import Limits, Refusal
from .pulls import Pulls
from .repos import Repos
from .shapes import Shapes
from .state import (
    BODY_LIMIT, DOCS, Comment, Dispatch, Issue, Label, Pull, Release, Repo, fail, invalid, refuse_long,
)


class GitHubEmulator(Limits, Auth, Repos, GitData, Issues, Pulls, Actions, Shapes, Emulator):
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

    def _edit(self, issue: Issue, body: dict[str, Any], reason: str | None) -> None:
        """The title, body and state an issue's or a pull request's PATCH sets."""
        refuse_long("PullRequest" if issue.pull else "Issue", "body", body.get("body"), BODY_LIMIT)
        issue.title = body.get("title", issue.title)
        issue.body = body.get("body", issue.body)
        if "state" in body:
            self._set_state(issue, body["state"], reason)
        issue.updated_at = now()

    def _set_state(self, issue: Issue, state: str, reason: str | None) -> None:
        if state not in ("open", "closed"):
            invalid("Issue", "invalid", "state")
        if state != issue.state:
            issue.closed_at = now() if state == "closed" else None
            issue.state_reason = reason or ("completed" if state == "closed" else "reopened")
        issue.state = state

    # --- lookups ------------------------------------------------------------------------------------

    def _actor(self, request: Request) -> str:
        return self.tokens.get(token_of(request) or "", self.bot_login)

    def _repo(self, owner: str, name: str) -> Repo:
        return self.repos.get(f"{owner}/{name}") or fail(404, "Not Found")

    def _issue(self, owner: str, name: str, number: str) -> tuple[Repo, Issue]:
        repo = self._repo(owner, name)
        return repo, repo.issues.get(int(number)) or fail(404, "Not Found")

    def _pull(self, owner: str, name: str, number: str) -> tuple[Repo, Issue]:
        repo, issue = self._issue(owner, name, number)
        return (repo, issue) if issue.pull else fail(404, "Not Found")

    def _comment(self, owner: str, name: str, comment_id: str) -> tuple[Repo, Issue, Comment]:
        repo = self._repo(owner, name)
        for issue in repo.issues.values():
            for comment in issue.comments:
                if comment.id == int(comment_id):
                    return repo, issue, comment
        fail(404, "Not Found")

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

