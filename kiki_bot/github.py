"""The GitHub shell: every call the bot makes through PyGithub, each safe to repeat.

Sticky comments carry a hidden marker so a re-run edits its own comment instead of adding one;
branches, pull requests and releases are looked up before they are created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from kiki_bot.errors import BadInput
from kiki_bot.settings import Settings

PERMISSION_ORDER = ["none", "read", "triage", "write", "maintain", "admin"]


def marker(kind: str) -> str:
    return f"<!-- kiki-bot:{kind} -->"


@dataclass
class GitHub:
    settings: Settings
    repository: str

    @cached_property
    def client(self):
        from github import Auth, Github

        s = self.settings
        if s.github_token is None:
            raise BadInput("GITHUB_TOKEN", "a GitHub token is needed for this step")
        extra = {} if s.throttle else {"seconds_between_requests": None, "seconds_between_writes": None, "retry": None}
        return Github(base_url=s.github_api_url, auth=Auth.Token(s.github_token.get_secret_value()), lazy=True, **extra)

    @cached_property
    def repo(self):
        return self.client.get_repo(self.repository)

    # ------------------------------------------------------------ issues and comments
    def sticky(self, number: int, kind: str, body: str) -> int:
        """Create the bot's comment of this kind on an issue or PR, or edit it if it exists; returns its id."""
        issue = self.repo.get_issue(number)
        text = f"{marker(kind)}\n{body}"
        for comment in issue.get_comments():
            if marker(kind) in (comment.body or "") and comment.user.login == self.settings.bot_login:
                if comment.body != text:
                    comment.edit(text)
                return comment.id
        return issue.create_comment(text).id

    def comment_once(self, number: int, kind: str, body: str) -> bool:
        """Post a comment that must appear once (a notice, not a status); False when it already exists."""
        issue = self.repo.get_issue(number)
        if any(marker(kind) in (c.body or "") for c in issue.get_comments()):
            return False
        issue.create_comment(f"{marker(kind)}\n{body}")
        return True

    def set_labels(self, number: int, add: list[str] = (), remove: list[str] = ()) -> None:
        """Bring the labels to the wanted state; labels already right cause no request."""
        issue = self.repo.get_issue(number)
        have = {label.name for label in issue.labels}
        if missing := [name for name in add if name not in have]:
            issue.add_to_labels(*missing)
        for name in remove:
            if name in have:
                issue.remove_from_labels(name)

    def close(self, number: int) -> None:
        issue = self.repo.get_issue(number)
        if issue.state != "closed":
            issue.edit(state="closed", state_reason="completed")

    def permission(self, login: str) -> str:
        """The user's role on the repository: the fine-grained role name when GitHub gives one."""
        return self.repo.get_collaborator_role_name(login)

    # ------------------------------------------------------------ branches, PRs, releases
    def commit_files(self, branch: str, base: str, files: dict[str, bytes], message: str) -> None:
        """Put `files` on `branch` (created from `base` if missing); unchanged files are not rewritten."""
        from github import GithubException

        try:
            self.repo.get_branch(branch)
        except GithubException as exc:
            if exc.status != 404:
                raise
            sha = self.repo.get_branch(base).commit.sha
            self.repo.create_git_ref(ref=f"refs/heads/{branch}", sha=sha)
        for path, content in sorted(files.items()):
            try:
                current = self.repo.get_contents(path, ref=branch)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                self.repo.create_file(path, message, content, branch=branch)
                continue
            if current.decoded_content != content:
                self.repo.update_file(path, message, content, current.sha, branch=branch)

    def pull_request(self, branch: str, base: str, title: str, body: str):
        """The open PR from `branch`, with its body brought up to date, or a new one."""
        owner = self.repository.split("/")[0]
        for pr in self.repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base):
            if pr.body != body:
                pr.edit(body=body)
            return pr
        return self.repo.create_pull(base=base, head=branch, title=title, body=body)

    def release(self, tag: str, name: str, body: str) -> str:
        """The GitHub release for `tag`, created once; returns its URL."""
        from github import GithubException

        try:
            return self.repo.get_release(tag).html_url
        except GithubException as exc:
            if exc.status != 404:
                raise
        return self.repo.create_git_release(tag=tag, name=name, message=body).html_url

    def dispatch(self, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        self.repo.get_workflow(workflow).create_dispatch(ref=ref, inputs=inputs)

    def read(self, path: str, ref: str) -> bytes | None:
        """A file's bytes at a ref, or None where it does not exist."""
        from github import GithubException

        try:
            return self.repo.get_contents(path, ref=ref).decoded_content
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    def tag_exists(self, tag: str) -> bool:
        from github import GithubException

        try:
            self.repo.get_git_ref(f"tags/{tag}").object.sha  # noqa: B018 (lazy objects fetch on access)
            return True
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise

    def tag(self, tag: str, branch: str) -> None:
        """Create a lightweight tag at the head of `branch` (once; an existing tag is left as it is)."""
        if not self.tag_exists(tag):
            self.repo.create_git_ref(ref=f"refs/tags/{tag}", sha=self.repo.get_branch(branch).commit.sha)

    def runs(self, workflow: str, ref: str) -> list[tuple[datetime, str, str | None]]:
        """(created, status, conclusion) of the workflow's runs on `ref`, newest first."""
        return [(r.created_at, r.status, r.conclusion) for r in self.repo.get_workflow(workflow).get_runs(branch=ref)]
