"""The GitHub shell: every call the bot makes through PyGithub, each safe to repeat and to race.

Sticky comments carry a hidden marker (counted only in the bot's own comments) so a re-run edits its own
comment instead of adding one; branches, pull requests and releases are looked up before they are created,
and a write that lost a race with another run re-reads what that run wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from kiki_bot.core.errors import BadInput
from kiki_bot.shells.settings import Settings

PERMISSION_ORDER = ["none", "read", "triage", "write", "maintain", "admin"]


def marker(kind: str) -> str:
    return f"<!-- kiki-bot:{kind} -->"


def missing_permission(exc: Exception) -> str | None:
    """For GitHub's 403 to a token outside its job's `permissions:`, what to grant, in the workflow's words
    (from the X-Accepted-GitHub-Permissions header GitHub sends: `;` between options, `,` within one)."""
    headers = {key.lower(): value for key, value in (getattr(exc, "headers", None) or {}).items()}
    accepted = headers.get("x-accepted-github-permissions")
    if getattr(exc, "status", None) != 403 or not accepted:
        return None
    options = [", ".join(f"`{p.strip().replace('_', '-').replace('=', ': ')}`" for p in option.split(","))
               for option in accepted.split(";")]
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    return (f"403 {message or 'Forbidden'}: the token lacks {' or '.join(options)}; "
            "grant it in the workflow job's `permissions:`")


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
    def _ours(self, issue, kind: str) -> list:
        """The bot's own comments of this kind, oldest first. A marker in anyone else's comment counts for
        nothing: it must not silence a notice or pass for the sticky comment."""
        return [c for c in issue.get_comments()
                if c.user.login == self.settings.bot_login and (c.body or "").startswith(marker(kind))]

    def _single(self, number: int, kind: str, text: str):
        """(the bot's one comment of this kind, created now). Found, or created and re-read: of comments that
        concurrent runs created, every run keeps the oldest and deletes the later duplicates."""
        from github import GithubException

        issue = self.repo.get_issue(number)
        if found := self._ours(issue, kind):
            mine = None
        else:
            mine = issue.create_comment(text)
            found = self._ours(issue, kind) or [mine]
        for duplicate in found[1:]:
            try:
                duplicate.delete()
            except GithubException as exc:
                if exc.status != 404:  # another run removed it first
                    raise
        return found[0], mine is not None and found[0].id == mine.id

    def sticky(self, number: int, kind: str, body: str) -> int:
        """Create the bot's comment of this kind on an issue or PR, or edit it if it exists; returns its id."""
        text = f"{marker(kind)}\n{body}"
        comment, _ = self._single(number, kind, text)
        if comment.body != text:
            comment.edit(text)
        return comment.id

    def comment_once(self, number: int, kind: str, body: str) -> bool:
        """Post a comment that must appear once (a notice, not a status); False when it already exists."""
        return self._single(number, kind, f"{marker(kind)}\n{body}")[1]

    def set_labels(self, number: int, add: list[str] = (), remove: list[str] = ()) -> None:
        """Bring the labels to the wanted state; labels already right cause no request."""
        from github import GithubException

        issue = self.repo.get_issue(number)
        have = {label.name for label in issue.labels}
        if missing := [name for name in add if name not in have]:
            issue.add_to_labels(*missing)
        for name in remove:
            if name in have:
                try:
                    issue.remove_from_labels(name)
                except GithubException as exc:
                    if exc.status != 404:  # "Label does not exist": a concurrent run removed it
                        raise

    def close(self, number: int) -> None:
        issue = self.repo.get_issue(number)
        if issue.state != "closed":
            issue.edit(state="closed", state_reason="completed")

    def permission(self, login: str) -> str:
        """The user's role on the repository: the fine-grained role name when GitHub gives one."""
        return self.repo.get_collaborator_role_name(login)

    # ------------------------------------------------------------ branches, PRs, releases
    def commit_files(self, branch: str, base: str, files: dict[str, bytes], message: str) -> None:
        """Put `files` on `branch`, a branch built on the current head of `base`: created there if missing, and
        moved there when `base` has moved on without it (the files are then written again on top). Unchanged
        files are not rewritten; a run racing another one for the same branch re-reads and carries on."""
        from github import GithubException

        head = self.repo.get_branch(base).commit.sha
        try:
            built_on_base = self.built_on(head, branch)
        except GithubException as exc:
            if exc.status != 404:
                raise
            try:
                self.repo.create_git_ref(ref=f"refs/heads/{branch}", sha=head)
            except GithubException as exc:
                if exc.status != 422:  # "Reference already exists": a concurrent run made it
                    raise
            built_on_base = True
        if not built_on_base:
            self.repo.get_git_ref(f"heads/{branch}").edit(sha=head, force=True)
        for path, content in sorted(files.items()):
            self._put(branch, path, content, message)

    def built_on(self, base: str, branch: str) -> bool:
        """Whether `branch` holds the head of `base` (it is ahead of it or the same): not left behind."""
        return self.repo.compare(base, branch).status in ("ahead", "identical")

    def _put(self, branch: str, path: str, content: bytes, message: str, tries: int = 3) -> None:
        """Write one file on `branch` unless it holds `content`; on a conflict with a concurrent write, re-read."""
        from github import GithubException

        for attempt in range(tries):
            try:
                current = self.repo.get_contents(path, ref=branch)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                current = None
            if current is not None and current.decoded_content == content:
                return
            try:
                if current is None:
                    self.repo.create_file(path, message, content, branch=branch)
                else:
                    self.repo.update_file(path, message, content, current.sha, branch=branch)
                return
            except GithubException as exc:
                if exc.status not in (409, 422) or attempt == tries - 1:
                    raise

    def open_pull(self, branch: str, base: str):
        """The open PR from `branch` into `base`, or None."""
        owner = self.repository.split("/")[0]
        return next(iter(self.repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)), None)

    def open_pulls(self, prefix: str, base: str) -> list:
        """Open PRs into `base` whose head branch starts with `prefix` (the bot's own branches)."""
        return [pr for pr in self.repo.get_pulls(state="open", base=base) if pr.head.ref.startswith(prefix)]

    def pull_request(self, branch: str, base: str, title: str, body: str):
        """The open PR from `branch`, with its body brought up to date, or a new one."""
        from github import GithubException

        if (pr := self.open_pull(branch, base)) is None:
            try:
                return self.repo.create_pull(base=base, head=branch, title=title, body=body)
            except GithubException as exc:
                if exc.status != 422 or (pr := self.open_pull(branch, base)) is None:
                    raise  # not "a pull request already exists" from a concurrent run
        if pr.body != body:
            pr.edit(body=body)
        return pr

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
        """Start `workflow` on `ref`; a refusal (no such trigger, a missing permission) raises, never passes."""
        self.repo.get_workflow(workflow).create_dispatch(ref=ref, inputs=inputs, throw=True)

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
