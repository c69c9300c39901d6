"""Who a token acts as and what it may do: a job's GITHUB_TOKEN carries its `permissions:`."""

from __future__ import annotations

import secrets

from werkzeug.wrappers import Request, Response

from ..server import abort_with, json_response, token_of
from .state import ACTIONS_LOGIN, LEGACY_PERMISSION, USERS_SINCE, Repo


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


class Auth:
    """Tokens, roles and GitHub's 403 for a job token outside its permissions (mixed into GitHubEmulator)."""

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

    def get_user(self, request: Request) -> Response:
        """The token's user, as GitHub's public-user."""
        profile = dict.fromkeys(("name", "company", "blog", "location", "email", "hireable", "bio"))
        counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
        return json_response(self._user(self._actor(request)) | profile | counts
                             | {"created_at": USERS_SINCE, "updated_at": USERS_SINCE})

    def get_permission(self, request: Request, owner: str, name: str, user: str) -> Response:
        role = self._repo(owner, name).permissions.get(user, "none")
        levels = ("read", "triage", "write", "maintain", "admin")
        rank = levels.index(role) if role in levels else -1
        granted = {"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3, "admin": rank >= 4}
        collaborator = self._user(user) | {"role_name": role, "permissions": granted}
        return json_response({"permission": LEGACY_PERMISSION[role], "role_name": role, "user": collaborator})

