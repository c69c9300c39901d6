"""The GitHub shell: every call the bot makes through PyGithub, each safe to repeat and to race.

Sticky comments carry a hidden marker (counted only in the bot's own comments) so a re-run edits its own
comment instead of adding one; branches, pull requests and releases are looked up before they are created,
and a write that lost a race with another run re-reads what that run wrote.

Files go up as ONE commit per bot action through the Git Data API (blobs, one tree on the base tree, a
commit, a fast-forward of the branch): a purge PR is one atomic change, and unchanged files are known by the
blob SHA computed here, never downloaded. Lists page 100 at a time; rate-limit answers (403/429 with
Retry-After or x-ratelimit-reset, or a secondary limit's message) are waited out, boundedly and said in the log, and 5xx answers are retried
where the call is idempotent (kiki_bot.shells.github_retry, through PyGithub's own `retry=` hook).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from kiki_bot.core.canonical import git_blob_sha
from kiki_bot.core.errors import BadInput, CheckFailed
from kiki_bot.core.gitattributes import lfs_rule
from kiki_bot.shells.settings import Settings

PERMISSION_ORDER = ["none", "read", "triage", "write", "maintain", "admin"]
FILE_LIMIT = 100 * 1024 * 1024
"""GitHub refuses any file over 100 MiB, through a push or the API."""
PER_PAGE = 100  # the most GitHub sends a page: fewer requests against the rate limit


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


def _lfs_tracked(files: Mapping[str, bytes], attributes: dict[str, str]) -> None:
    """Refuse, before anything is written, a path Git LFS tracks: the API would store the data where LFS
    clients expect a pointer."""
    problems = [(path, f"tracked by Git LFS ({rule}), and kiki-bot writes through the GitHub API, which stores "
                       "plain git blobs, so nothing was written: stop tracking these paths with LFS")
                for path in sorted(files) if (rule := lfs_rule(path, attributes))]
    if problems:
        raise BadInput.of(problems)


def _too_large(files: Mapping[str, bytes]) -> None:
    """Refuse, before anything is sent, a file GitHub would refuse: it names each one and what to do."""
    problems = []
    for path, data in sorted(files.items()):
        if len(data) > FILE_LIMIT:
            parts = path.split("/")
            split = (f"split source `{parts[1]}`'s data into several files under data/{parts[1]}/ (each listed "
                     "in its MANIFEST.json)" if len(parts) == 3 and parts[0] == "data" else "split it")
            problems.append((path, f"{len(data) / 2**20:,.1f} MiB, over the 100 MiB GitHub takes for one file, so "
                                   f"nothing was written: {split}, each under 100 MiB"))
    if problems:
        raise BadInput.of(problems)


def folder_in_checkout(root: Path) -> str:
    """Where the project (`root`, holding kiki.toml) is inside its git checkout, as the repository spells paths:
    "" at the top, else "ml/" (the workflows' `project-dir`). The bot names files relative to the project, and
    GitHub's API relative to the repository."""
    for top in (root, *root.parents):
        if (top / ".git").exists():
            return "" if top == root else root.relative_to(top).as_posix() + "/"
    return ""


@dataclass
class GitHub:
    settings: Settings
    repository: str
    sleep: Callable[[float], None] = time.sleep  # how a rate limit is waited out (tests pass their own)
    clock: Callable[[], float] = time.time  # what x-ratelimit-reset is compared with
    folder: str = ""  # the project's folder in the repository (folder_in_checkout): what its paths start with there

    @cached_property
    def client(self):
        from github import Auth, Github

        from kiki_bot.shells.github_retry import Patience

        s = self.settings
        if s.github_token is None:
            raise BadInput("GITHUB_TOKEN", "a GitHub token is needed for this step")
        pauses = {} if s.throttle else {"seconds_between_requests": None, "seconds_between_writes": None}
        return Github(base_url=s.github_api_url, auth=Auth.Token(s.github_token.get_secret_value()), lazy=True,
                      per_page=PER_PAGE, retry=Patience(self.sleep, self.clock), **pauses)

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

    def bot_comments(self, number: int) -> list[str]:
        """The bodies of the bot's own comments on an issue, oldest first (anyone else's count for nothing)."""
        return [c.body or "" for c in self.repo.get_issue(number).get_comments()
                if c.user.login == self.settings.bot_login]

    def create_labels(self, labels: dict[str, tuple[str, str]]) -> list[str]:
        """Create the labels (name → (colour, description)); those that exist are left alone. The new ones."""
        from github import GithubException

        created = []
        for name, (color, description) in labels.items():
            try:
                self.repo.create_label(name=name, color=color, description=description)
            except GithubException as exc:
                errors = exc.data.get("errors", []) if isinstance(exc.data, dict) else []
                if exc.status == 422 and any(isinstance(e, dict) and e.get("code") == "already_exists" for e in errors):
                    continue
                message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
                raise BadInput(f"label {name!r} in {self.repository}", f"GitHub answered {exc.status}: {message}") from None
            created.append(name)
        return created

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

    def open_issue(self, title: str, body: str, labels: list[str]) -> int:
        return self.repo.create_issue(title=title, body=body, labels=labels).number

    def edit_body(self, number: int, body: str) -> None:
        issue = self.repo.get_issue(number)
        if issue.body != body:
            issue.edit(body=body)

    def bot_issues(self, label: str) -> list[tuple[int, str]]:
        """(number, body) of every issue with `label` that the bot opened itself, open or closed."""
        return [(i.number, i.body or "") for i in self.repo.get_issues(state="all", labels=[label],
                                                                       creator=self.settings.bot_login)
                if i.pull_request is None]

    def close(self, number: int) -> None:
        issue = self.repo.get_issue(number)
        if issue.state != "closed":
            issue.edit(state="closed", state_reason="completed")

    def permission(self, login: str) -> str:
        """The user's role on the repository: the fine-grained role name when GitHub gives one."""
        return self.repo.get_collaborator_role_name(login)

    # ------------------------------------------------------------ branches, PRs, releases
    def commit_files(self, branch: str, base: str, files: dict[str, bytes], message: str, tries: int = 3) -> None:
        """Put `files` (paths relative to the project) on `branch`, a branch built on the current head of `base`,
        in ONE commit: created there if missing, and rebuilt there when `base` has moved on without it (never over a
        commit the bot did not make: _rebuildable). Files whose
        blob SHA the branch already has are not sent; with none left, nothing is committed. Nothing is written when a file is over GitHub's
        limit or tracked by Git LFS. A run that lost a race for the branch (its ref moved) reads it again."""
        from github import GithubException

        _too_large(files)
        files = {self.folder + path: data for path, data in files.items()}
        for attempt in range(tries):
            head = self.repo.get_branch(base).commit
            ref = self._ref(branch)
            tip = ref.object.sha if ref is not None else None
            parent = tip if tip is not None and (tip == head.sha or self._rebuildable(base, head.sha, branch)) \
                else head.sha
            parent_commit = head.commit if parent == head.sha else self.repo.get_git_commit(parent)
            root, known, attributes = self._listing(parent_commit.tree.sha, files)
            _lfs_tracked(files, attributes)
            changed = {path: data for path, data in sorted(files.items()) if known.get(path) != git_blob_sha(data)}
            new = self._commit(changed, root, parent_commit, message) if changed else parent
            try:
                if ref is None:
                    self.repo.create_git_ref(ref=f"refs/heads/{branch}", sha=new)
                elif new != tip:
                    ref.edit(sha=new, force=parent != tip)
                return
            except GithubException as exc:
                # 422: "Reference already exists" / "Update is not a fast forward": another run moved it first
                if exc.status != 422 or attempt == tries - 1:
                    raise

    def _rebuildable(self, base: str, head: str, branch: str) -> bool:
        """Whether `branch` is built on `head` (True) or is to be rebuilt there (False). A rebuild replaces the
        branch, so one holding a commit the bot did not make (a maintainer's push to its PR) is refused with
        nothing written: that commit would be dropped."""
        compared = self.repo.compare(head, branch)
        if compared.status in ("ahead", "identical"):
            return True
        theirs = [c for c in compared.commits if getattr(c.author, "login", None) != self.settings.bot_login]
        if theirs:
            who = ", ".join(f"{c.sha[:7]} by {getattr(c.author, 'login', None) or c.commit.author.name}"
                            for c in theirs)
            keep = theirs[0].parents[0].sha
            raise CheckFailed(
                f"{branch} holds commits kiki-bot did not make: {who}. Rebuilding it on the current {base} "
                f"would drop them, so nothing was written. Keep those changes on a branch of your own (a pull "
                f"request into {base}), put {branch} back where kiki-bot left it (`git push --force origin "
                f"{keep}:refs/heads/{branch}`), then run this step again: kiki-bot rebuilds it on {base}.")
        return False

    def _ref(self, branch: str):
        """The branch's ref, read (so an update goes to the URL GitHub gave: /git/refs/heads/...), or None."""
        from github import GithubException

        try:
            ref = self.repo.get_git_ref(f"heads/{branch}")
            ref.object.sha  # noqa: B018 (lazy objects fetch on access)
            return ref
        except GithubException as exc:
            if exc.status != 404:
                raise
            return None

    def _listing(self, tree_sha: str, files: Mapping[str, bytes]):
        """(the root tree, {path: blob sha} of the files in the folders `files` go to, {.gitattributes path:
        text} along the way): one tree read per folder, never a file's content but small .gitattributes."""
        folders = sorted({"/".join(path.split("/")[:depth]) for path in files for depth in range(path.count("/") + 1)},
                         key=lambda folder: folder.count("/") if folder else -1)
        trees = {"": self.repo.get_git_tree(tree_sha)}
        known: dict[str, str] = {}
        for folder in folders:
            if (tree := trees.get(folder)) is None:
                continue  # a new folder: everything in it is new
            for entry in tree.tree:
                path = f"{folder}/{entry.path}" if folder else entry.path
                if entry.type == "tree" and path in folders:
                    trees[path] = self.repo.get_git_tree(entry.sha)
                elif entry.type == "blob":
                    known[path] = entry.sha
        attributes = {}
        for folder in trees:
            path = f"{folder}/.gitattributes" if folder else ".gitattributes"
            if path in files:
                attributes[path] = files[path].decode("utf-8", "replace")
            elif path in known:
                blob = self.repo.get_git_blob(known[path])
                attributes[path] = base64.b64decode(blob.content).decode("utf-8", "replace")
        return trees[""], known, attributes

    def _commit(self, changed: Mapping[str, bytes], root, parent, message: str) -> str:
        """One commit on `parent` with the `changed` files: their blobs, one tree on the parent's, the commit."""
        from github import InputGitTreeElement

        elements = []
        for path, data in changed.items():
            blob = self.repo.create_git_blob(base64.b64encode(data).decode("ascii"), "base64")
            elements.append(InputGitTreeElement(path, "100644", "blob", sha=blob.sha))
        tree = self.repo.create_git_tree(elements, base_tree=root)
        return self.repo.create_git_commit(message, tree, [parent]).sha

    def built_on(self, base: str, branch: str) -> bool:
        """Whether `branch` holds the head of `base` (it is ahead of it or the same): not left behind."""
        return self.repo.compare(base, branch).status in ("ahead", "identical")

    def open_pull(self, branch: str, base: str):
        """The open PR from `branch` into `base`, or None."""
        owner = self.repository.split("/")[0]
        return next(iter(self.repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)), None)

    def merged_pull(self, branch: str, base: str) -> str | None:
        """The URL of the PR from `branch` that merged into `base` (newest first), or None."""
        owner = self.repository.split("/")[0]
        return next((pr.html_url for pr in self.repo.get_pulls(state="closed", head=f"{owner}:{branch}", base=base)
                     if pr.merged_at is not None), None)

    def open_pulls(self, prefix: str, base: str) -> list:
        """Open PRs into `base` whose head branch starts with `prefix` (the bot's own branches)."""
        return [pr for pr in self.repo.get_pulls(state="open", base=base) if pr.head.ref.startswith(prefix)]

    def pull_request(self, branch: str, base: str, title: str, body: str):
        """The open PR from `branch`, with its body brought up to date, or a new one; None when `branch` holds
        nothing `base` lacks (what it would propose is merged already: GitHub refuses an empty PR)."""
        from github import GithubException

        if (pr := self.open_pull(branch, base)) is None:
            if self.repo.compare(base, branch).ahead_by == 0:
                return None
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
        """A file's bytes at a ref (its path relative to the project), or None where it does not exist."""
        from github import GithubException

        try:
            found = self.repo.get_contents(self.folder + path, ref=ref)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise
        if found.encoding == "base64":
            return found.decoded_content
        # over 1 MiB the Contents API sends no content ("encoding": "none"): the blob API serves up to 100 MiB
        return base64.b64decode(self.repo.get_git_blob(found.sha).content)

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
