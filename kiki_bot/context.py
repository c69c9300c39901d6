"""What every behaviour needs: the project, the settings, the effects, the repository and the clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from kiki_bot.repo.project import Project
from kiki_bot.shells.effects import Effects
from kiki_bot.shells.settings import Settings


@dataclass
class Context:
    project: Project
    settings: Settings
    fx: Effects
    repository: str | None
    branch: str | None = None  # the default branch as the event names it; None: asked of GitHub when needed
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @cached_property
    def default_branch(self) -> str:
        """The repository's default branch (not always `main`): as the event named it, else GitHub's answer,
        asked once; `main` where no repository is known (nothing is read from or written to a branch then)."""
        if self.branch:
            return self.branch
        return self.fx.default_branch() if self.repository else "main"

    @property
    def runs_dir(self) -> Path:
        return self.settings.runs_dir or self.project.root / ".kiki" / "runs"

    @property
    def dry_run(self) -> bool:
        return self.fx.dry_run


def make(project_dir: Path, dry_run: bool = False, repository: str | None = None,
         default_branch: str | None = None, now: dt.datetime | None = None) -> Context:
    from kiki_bot.shells.github import folder_in_checkout

    settings = Settings()
    repo = repository or settings.github_repository
    project = Project(project_dir)
    fx = Effects(settings, repo, dry_run, folder=folder_in_checkout(project.root))
    return Context(project, settings, fx, repo, default_branch, now or dt.datetime.now(dt.UTC))
