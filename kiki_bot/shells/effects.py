"""Every side effect a behaviour can have, in one place: live, or printed as a plan under --dry-run.

Behaviours call these methods and never PyGithub or huggingface_hub directly, so `--dry-run`
prints each planned effect as one JSON line (`{"action": ...}`) and performs none.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiki_bot.console import dumps
from kiki_bot.shells.github import GitHub
from kiki_bot.shells.hub import Hub


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


def effect(fn: Callable) -> Callable:
    """Under dry-run, print the call as a JSON line instead of making it."""

    @functools.wraps(fn)
    def wrapper(self: Effects, **kwargs: Any) -> Any:
        if self.dry_run:
            line = {"action": fn.__name__, **{k: _describe(v) for k, v in kwargs.items()}}
            self.planned.append(line)
            if self.stream:
                sys.stdout.write(dumps(line) + "\n")
            return None
        return fn(self, **kwargs)

    return wrapper


@dataclass
class Effects:
    github: GitHub | None
    hub: Hub
    dry_run: bool = False
    planned: list[dict] = field(default_factory=list)
    stream: bool = True  # print each planned effect as it comes (off under --json: the plan is in the document)

    @property
    def gh(self) -> GitHub:
        from kiki_bot.core.errors import BadInput

        if self.github is None:
            raise BadInput("GITHUB_REPOSITORY", "the GitHub repository is not known (set GITHUB_REPOSITORY)")
        return self.github

    @effect
    def comment(self, *, number: int, kind: str, body: str) -> int:
        return self.gh.sticky(number, kind, body)

    @effect
    def notice(self, *, number: int, kind: str, body: str) -> bool:
        return self.gh.comment_once(number, kind, body)

    @effect
    def label(self, *, number: int, add: list[str], remove: list[str]) -> None:
        self.gh.set_labels(number, add, remove)

    @effect
    def close_issue(self, *, number: int) -> None:
        self.gh.close(number)

    @effect
    def pull_request(self, *, branch: str, base: str, title: str, body: str, files: dict[str, bytes]) -> str:
        self.gh.commit_files(branch, base, files, title)
        return self.gh.pull_request(branch, base, title, body).html_url

    @effect
    def commit(self, *, branch: str, files: dict[str, bytes], message: str) -> None:
        """Commit `files` onto an existing branch (unchanged files are left alone)."""
        self.gh.commit_files(branch, branch, files, message)

    @effect
    def release(self, *, tag: str, name: str, body: str) -> str:
        return self.gh.release(tag, name, body)

    @effect
    def dispatch(self, *, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        self.gh.dispatch(workflow, ref, inputs)

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
    def ledger_append(self, *, path: Path, event: str, request: dict, actor: str, at: Any, fields: dict,
                      once: list[str] | None = None) -> bool:
        """Append the step unless the ledger has it (same request, event and `once` fields); True if appended."""
        from kiki_bot.core import ledger

        return ledger.append_once(path, event, request, actor, at, once or (), **fields)[1]

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
        path = self.hub.settings.github_step_summary
        if path is not None:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text.rstrip("\n") + "\n")

    @effect
    def create_labels(self, *, repository: str) -> list[str]:
        """The bot's labels in `repository` (init), with the settings' token; those that exist stay."""
        from kiki_bot.init import create_labels

        return create_labels(repository, self.hub.settings.github_token.get_secret_value())

    @effect
    def write_files(self, *, files: dict[Path, bytes]) -> list[Path]:
        """All or nothing: a file set (card, manifests, PEFT export) is never left half new. The paths changed."""
        from kiki_bot.repo.storage import write_files

        return write_files(files)
