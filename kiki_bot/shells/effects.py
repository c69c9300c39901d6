"""The one door to the outside: every side effect a behaviour can have, live or printed as a plan under
--dry-run, and every read of GitHub or the Hub a behaviour needs.

Behaviours call these methods and never PyGithub or huggingface_hub directly, so `--dry-run` prints each
planned effect as one JSON line (`{"action": ...}`) and performs none. Reads run in a dry run too: the plan
is made from what is really there. The clients are built on first use, so a step that needs neither
service (init without a token, a PEFT export) needs no configuration for them.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from kiki_bot.console import dumps
from kiki_bot.shells.settings import Settings


def _describe(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_describe(v) for v in value]
    return value


def effect(fn: Callable | None = None, *, action: str | None = None) -> Callable:
    """Under dry-run, print the call as a JSON line `{"action": action or the method's name, ...}` instead of
    making it. `action` keeps the dry-run format of DESIGN.md section 4 where a method's name says more."""
    if fn is None:
        return functools.partial(effect, action=action)

    @functools.wraps(fn)
    def wrapper(self: Effects, **kwargs: Any) -> Any:
        if self.dry_run:
            line = {"action": action or fn.__name__, **{k: _describe(v) for k, v in kwargs.items()}}
            self.planned.append(line)
            if self.stream:
                sys.stdout.write(dumps(line) + "\n")
            return None
        return fn(self, **kwargs)

    return wrapper


@dataclass
class Effects:
    settings: Settings
    repository: str | None = None  # owner/name on GitHub; None where the step has no repository
    dry_run: bool = False
    planned: list[dict] = field(default_factory=list)
    stream: bool = True  # print each planned effect as it comes (off under --json: the plan is in the document)
    folder: str = ""  # the project's folder in the repository (github.folder_in_checkout)

    @cached_property
    def gh(self):
        """The GitHub client, for the methods below (behaviours call those, never this)."""
        from kiki_bot.core.errors import BadInput
        from kiki_bot.shells.github import GitHub

        if self.repository is None:
            raise BadInput("GITHUB_REPOSITORY", "the GitHub repository is not known (set GITHUB_REPOSITORY)")
        return GitHub(self.settings, self.repository, folder=self.folder)

    @cached_property
    def hub(self):
        """The Hub client, for the methods below (behaviours call those, never this)."""
        from kiki_bot.shells.hub import Hub

        return Hub(self.settings)

    # ------------------------------------------------------------ reads (made in a dry run too)
    def bot_comments(self, number: int) -> list[str]:
        """The bodies of the bot's own comments on an issue, oldest first (where triage stored the request)."""
        return self.gh.bot_comments(number)

    def permission(self, login: str) -> str:
        return self.gh.permission(login)

    def file_at(self, path: str, ref: str) -> bytes | None:
        """A file's bytes at a ref of the repository, or None where it does not exist."""
        return self.gh.read(path, ref)

    def tag_exists(self, tag: str) -> bool:
        return self.gh.tag_exists(tag)

    def default_branch(self) -> str:
        """The repository's default branch, as GitHub names it."""
        return self.gh.repo.default_branch

    def workflow_runs(self, workflow: str, ref: str) -> list[tuple[datetime, str, str | None]]:
        """(created, status, conclusion) of the workflow's runs on `ref`, newest first."""
        return self.gh.runs(workflow, ref)

    def open_pull(self, branch: str, base: str) -> Any:
        return self.gh.open_pull(branch, base)

    def merged_pull(self, branch: str, base: str) -> str | None:
        return self.gh.merged_pull(branch, base)

    def open_pulls(self, prefix: str, base: str) -> list:
        return self.gh.open_pulls(prefix, base)

    def built_on(self, base: str, branch: str) -> bool:
        return self.gh.built_on(base, branch)

    def hub_has_tag(self, repo: str, tag: str) -> bool:
        return self.hub.has_tag(repo, tag)

    def hub_file_sha256(self, repo: str, revision: str, filename: str) -> str | None:
        return self.hub.file_sha256(repo, revision, filename)

    def hub_dataset_files(self, repo: str) -> list[str]:
        """The files of a Hub dataset (none while it does not exist)."""
        return self.hub.dataset_files(repo)

    def hub_pr(self, repo: str, title: str) -> int | None:
        """The open Hub PR of this title (the staged adapter), if any."""
        return self.hub.open_pr(repo, title)

    def hub_staged_prs(self, repo: str, title: str) -> list[int]:
        """The Hub PRs of this title, merged or not (each keeps the files staged on it)."""
        return self.hub.staged_prs(repo, title)

    def bot_issues(self, label: str) -> list[tuple[int, str]]:
        """(number, body) of the issues with `label` the bot opened (mirrors, upstream requests)."""
        return self.gh.bot_issues(label)

    def hub_discussions(self, repo: str, repo_type: str) -> list[int]:
        return self.hub.discussions(repo, repo_type)

    def hub_thread(self, repo: str, num: int, repo_type: str) -> Any:
        """A Hub discussion with its messages (core.hubrequests.Thread), None for a pull request."""
        return self.hub.thread(repo, num, repo_type)

    def hub_login(self) -> str:
        return self.hub.login

    def dataset_head(self, repo: str) -> str:
        return self.hub.dataset_head(repo)

    def dataset_lines(self, repo: str, revision: str, filename: str) -> Iterator[bytes]:
        return self.hub.dataset_lines(repo, revision, filename)

    # ------------------------------------------------------------ effects (planned only, in a dry run)
    @effect(action="comment")
    def sticky_comment(self, *, number: int, kind: str, body: str) -> int:
        """The bot's one comment of this kind on the issue, created or edited to `body`."""
        return self.gh.sticky(number, kind, body)

    @effect(action="notice")
    def comment_once(self, *, number: int, kind: str, body: str) -> bool:
        """A comment that appears once however often the step runs; False when it was there."""
        return self.gh.comment_once(number, kind, body)

    @effect
    def open_issue(self, *, title: str, body: str, labels: list[str]) -> int:
        return self.gh.open_issue(title, body, labels)

    @effect
    def edit_issue(self, *, number: int, body: str) -> None:
        self.gh.edit_body(number, body)

    @effect
    def hub_comment(self, *, repo: str, repo_type: str, num: int, body: str) -> None:
        self.hub.comment(repo, num, body, repo_type)

    @effect
    def hub_close_discussion(self, *, repo: str, repo_type: str, num: int) -> None:
        self.hub.close_discussion(repo, num, repo_type)

    @effect
    def label(self, *, number: int, add: list[str], remove: list[str]) -> None:
        self.gh.set_labels(number, add, remove)

    @effect
    def close_issue(self, *, number: int) -> None:
        self.gh.close(number)

    @effect
    def pull_request(self, *, branch: str, base: str, title: str, body: str, files: dict[str, bytes]) -> str | None:
        """The PR's URL; None when `base` already holds `files` (nothing to propose)."""
        self.gh.commit_files(branch, base, files, title)
        pr = self.gh.pull_request(branch, base, title, body)
        return pr.html_url if pr is not None else None

    @effect
    def commit(self, *, branch: str, files: dict[str, bytes], message: str) -> None:
        """Commit `files` onto an existing branch (unchanged files are left alone)."""
        self.gh.commit_files(branch, branch, files, message)

    @effect
    def release(self, *, tag: str, name: str, body: str) -> str:
        return self.gh.release(tag, name, body)

    @effect
    def start_release(self, *, tag: str, branch: str, workflow: str) -> None:
        """Tag the branch head and dispatch the release workflow on that tag (a token-made tag starts no workflow)."""
        self.gh.tag(tag, branch)
        self.gh.dispatch(workflow, tag, {"tag": tag})

    @effect
    def train(self, *, spec: dict[str, Any]) -> Any:
        from kiki_bot.shells import training

        return training.train(training.TrainSpec(**spec))

    @effect
    def hub_stage(self, *, repo: str, files: dict[str, Path | bytes], title: str, description: str) -> int:
        return self.hub.stage(repo, files, title, description)

    @effect
    def hub_publish(self, *, repo: str, pr: int | None, tag: str) -> str:
        return self.hub.publish(repo, pr, tag)

    @effect
    def hub_fallback(self, *, repo: str, how: str) -> None:
        self.hub.fallback(repo, how)

    @effect
    def hub_delete_revisions(self, *, repo: str, tags: list[str]) -> None:
        self.hub.delete_revisions(repo, tags)

    @effect
    def hub_flag_revision(self, *, repo: str, tag: str, notice: str) -> bool:
        return self.hub.flag_revision(repo, tag, notice)

    @effect
    def ledger_append(self, *, path: Path, event: str, request: dict, actor: str, at: Any, fields: dict,
                      once: list[str] | None = None) -> bool:
        """Append the step unless the ledger has it (same request, event and `once` fields); True if appended."""
        from kiki_bot.repo import ledgerfile

        return ledgerfile.append_once(path, event, request, actor, at, once or (), **fields)[1]

    @effect
    def purge(self, *, root: Path, request: str, issue: int | None, keys: list, adapters: list[str], actor: str,
              at: Any, approved: list | None = None) -> list:
        from kiki_bot.repo import purge
        from kiki_bot.repo.project import Project

        return purge.purge(Project(root), request, issue, set(map(tuple, keys)), set(), adapters, actor, at,
                           approved=None if approved is None else [tuple(t) for t in approved])

    @effect
    def hub_dataset_update(self, *, repo: str, files: dict[str, Path], message: str, squash: bool) -> None:
        self.hub.replace_dataset_files(repo, files, message, squash)

    @effect
    def job_summary(self, *, text: str) -> None:
        """Append to the Actions job summary (GITHUB_STEP_SUMMARY); also works where the token cannot comment."""
        if (path := self.settings.github_step_summary) is not None:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text.rstrip("\n") + "\n")

    @effect
    def create_labels(self, *, repository: str, labels: dict[str, tuple[str, str]]) -> list[str]:
        """`labels` (name → (colour, description)) in `repository` (init); those that exist stay. The new ones."""
        from kiki_bot.shells.github import GitHub

        return GitHub(self.settings, repository).create_labels(labels)

    @effect
    def write_files(self, *, files: dict[Path, bytes]) -> list[Path]:
        """All or nothing: a file set (card, manifests, PEFT export) is never left half new. The paths changed."""
        from kiki_bot.repo.storage import write_files

        return write_files(files)
