"""The Hugging Face Hub shell: staging an adapter as a Hub PR, publishing it, and the fallbacks.

`HF_ENDPOINT` is read by huggingface_hub at its first import, so this module imports it lazily and
callers (the demo, the tests) set the endpoint before anything touches the Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from kiki_bot.shells.settings import Settings

# The adapter's files in any layout a release has staged (mlx-lm's at the root; or PEFT's at the root with
# mlx-lm's under mlx/; or, before that, PEFT's under peft/): what a new stage replaces as a whole.
_ADAPTER_FILES = {"adapters.safetensors", "adapter_config.json", "adapter_model.safetensors"}
_ADAPTER_DIRS = ("mlx/", "peft/")


@dataclass
class Hub:
    settings: Settings

    @cached_property
    def api(self):
        from huggingface_hub import HfApi

        token = self.settings.hf_token.get_secret_value() if self.settings.hf_token else None
        return HfApi(endpoint=self.settings.hf_endpoint, token=token)

    def open_pr(self, repo_id: str, title: str) -> int | None:
        """The number of the open Hub PR with this title, if any (re-runs reuse it instead of adding one)."""
        return self._open_pr(repo_id, title) if self.api.repo_exists(repo_id) else None

    def _open_pr(self, repo_id: str, title: str) -> int | None:
        for d in self.api.get_repo_discussions(repo_id, discussion_type="pull_request", discussion_status="open"):
            if d.title == title:
                return d.num
        return None

    def stage(self, repo_id: str, files: dict[str, Path | bytes], title: str, description: str) -> int:
        """Upload the adapter files as a Hub pull request; returns the PR number. An open PR of this title
        gets the files committed onto it (huggingface_hub skips the commit when none changed), so a re-run
        that retrained never leaves the old weights staged. Adapter files of an earlier stage that this one
        lacks are deleted in the same commit: weights trained on removed records, or in a layout since
        changed, must not stay downloadable at the head beside the new ones."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        exists = self.api.repo_exists(repo_id)  # asked once: the PR lookup and the file listing both need it
        num = self._open_pr(repo_id, title) if exists else None
        revision = f"refs/pr/{num}" if num is not None else "main"
        there = self.api.list_repo_files(repo_id, revision=revision) if exists else []
        stale = sorted(f for f in there if f not in files and (f in _ADAPTER_FILES or f.startswith(_ADAPTER_DIRS)))
        ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data if isinstance(data, bytes) else str(data))
               for name, data in sorted(files.items())] + [CommitOperationDelete(path_in_repo=f) for f in stale]
        if num is not None:
            self.api.create_commit(repo_id, ops, commit_message=title, revision=revision)
            return num
        self.api.create_repo(repo_id, exist_ok=True)
        info = self.api.create_commit(repo_id, ops, commit_message=title, commit_description=description,
                                      create_pr=True)
        return int(info.pr_num)

    def file_sha256(self, repo_id: str, revision: str, filename: str) -> str | None:
        """SHA-256 of one file as the Hub serves it at `revision` (None when it has no such file)."""
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

        from kiki_bot.repo.storage import files_sha256

        try:
            path = self.api.hf_hub_download(repo_id, filename, revision=revision)
        except (EntryNotFoundError, RepositoryNotFoundError):
            return None
        return files_sha256(Path(path))

    def publish(self, repo_id: str, pr_num: int | None, tag: str) -> str:
        """Merge the staged PR (if still open) and tag the resulting revision; returns the revision URL."""
        if pr_num is not None:
            details = self.api.get_discussion_details(repo_id, pr_num)
            if details.status in ("open", "draft"):
                self.api.merge_pull_request(repo_id, pr_num, comment=f"Published as {tag} by kiki-bot.")
        if not self.has_tag(repo_id, tag):
            self.api.create_tag(repo_id, tag=tag, tag_message=f"kiki-bot release {tag}", exist_ok=True)
        return f"{self.settings.hf_endpoint}/{repo_id}/tree/{tag}"

    def has_tag(self, repo_id: str, tag: str) -> bool:
        if not self.api.repo_exists(repo_id):
            return False
        return any(t.name == tag for t in self.api.list_repo_refs(repo_id).tags)

    def fallback(self, repo_id: str, how: str) -> None:
        """A missed removal deadline: gate the repository or make it private until the retrain ships."""
        info = self.api.repo_info(repo_id)
        if how == "gate" and not info.gated:
            self.api.update_repo_settings(repo_id, gated="manual")
        elif how == "private" and not info.private:
            self.api.update_repo_settings(repo_id, private=True)

    def dataset_files(self, repo_id: str) -> list[str]:
        """The files of a Hub dataset's main revision (none while it does not exist)."""
        if not self.api.repo_exists(repo_id, repo_type="dataset"):
            return []
        return self.api.list_repo_files(repo_id, repo_type="dataset")

    def delete_revisions(self, repo_id: str, tags: list[str]) -> None:
        """Remove superseded versions from the Hub's history: `main` is squashed to one commit, the tags that
        stay are moved onto it (they would keep the old commits reachable), the superseded tags go. The refs of
        the pull requests that staged them stay (`staged_prs`). Safe to repeat: nothing is done once those tags
        are gone, and each step is skipped when it is done already."""
        refs = self.api.list_repo_refs(repo_id)
        doomed = [t.name for t in refs.tags if t.name in tags]
        if not doomed:
            return
        if len(self.api.list_repo_commits(repo_id)) > 1:
            self.api.super_squash_history(repo_id, commit_message="kiki-bot: history squashed after a removal")
        main = next(b.target_commit for b in self.api.list_repo_refs(repo_id).branches if b.name == "main")
        for tag in refs.tags:
            if tag.name not in doomed and tag.target_commit != main:
                self.api.delete_tag(repo_id, tag=tag.name)
                self.api.create_tag(repo_id, tag=tag.name, revision=main, tag_message=f"kiki-bot release {tag.name}")
        for name in doomed:
            self.api.delete_tag(repo_id, tag=name)

    def flag_revision(self, repo_id: str, tag: str, notice: str) -> bool:
        """Put `notice` atop the README of the revision `tag` names, so whoever downloads that revision reads it:
        a commit on top of the tag's commit that changes only README.md, then the tag moved onto it (through a
        branch: the Hub commits only to branches, and deletes a commit no ref reaches). The original commit
        stays reachable by its hash while `main`'s history holds it. Safe to repeat: a README that already says
        it is left alone, and a run stopped between deleting the tag and re-creating it is finished from the
        branch it leaves. False when the Hub has no such tag (nothing to mark)."""
        from huggingface_hub import CommitOperationAdd
        from huggingface_hub.errors import EntryNotFoundError

        from kiki_bot.core.cardhistory import flag_readme

        refs = self.api.list_repo_refs(repo_id)
        branch = f"kiki-bot-flag-{tag}"
        tags = {t.name: t.target_commit for t in refs.tags}
        left = next((b.target_commit for b in refs.branches if b.name == branch), None)
        if tag not in tags:
            if left is not None:  # stopped after the tag was deleted: the branch holds the flagged commit
                self._retag(repo_id, tag, left, branch)
            return left is not None
        try:
            readme = Path(self.api.hf_hub_download(repo_id, "README.md", revision=tags[tag])).read_text("utf-8")
        except EntryNotFoundError:  # a revision without a card gets one that says it
            readme = ""
        flagged = flag_readme(readme, notice)
        if flagged == readme:
            if left is not None:
                self.api.delete_branch(repo_id, branch=branch)
            return True
        if left is not None:  # a stopped run's branch: start again from the tag's commit
            self.api.delete_branch(repo_id, branch=branch)
        self.api.create_branch(repo_id, branch=branch, revision=tags[tag])
        info = self.api.create_commit(repo_id, [CommitOperationAdd("README.md", flagged.encode())], revision=branch,
                                      commit_message=f"kiki-bot: {tag} is superseded (README notice)",
                                      parent_commit=tags[tag])
        self.api.delete_tag(repo_id, tag=tag)
        self._retag(repo_id, tag, info.oid, branch)
        return True

    def _retag(self, repo_id: str, tag: str, revision: str, branch: str) -> None:
        self.api.create_tag(repo_id, tag=tag, revision=revision, tag_message=f"kiki-bot release {tag} (flagged)")
        self.api.delete_branch(repo_id, branch=branch)

    def staged_prs(self, repo_id: str, title: str) -> list[int]:
        """The pull requests of this title, merged or not: each keeps its `refs/pr/N` and the files staged there,
        since the Hub's API deletes branches and tags but not a pull request's ref."""
        if not self.api.repo_exists(repo_id):
            return []
        return sorted(d.num for d in self.api.get_repo_discussions(repo_id, discussion_type="pull_request")
                      if d.title == title)

    def replace_dataset_files(self, repo_id: str, files: dict[str, Path], message: str, squash: bool) -> None:
        """Commit rewritten data files to a Hub dataset repo; squash history so old revisions stop serving them.
        Safe to repeat and finishes a run that failed part-way: huggingface_hub skips the commit when the Hub
        already holds these files, and a history already down to one commit is not squashed again."""
        from huggingface_hub import CommitOperationAdd

        ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in sorted(files.items())]
        self.api.create_commit(repo_id, ops, commit_message=message, repo_type="dataset")
        if squash and len(self.api.list_repo_commits(repo_id, repo_type="dataset")) > 1:
            self.api.super_squash_history(repo_id, repo_type="dataset", commit_message=message)

    # ------------------------------------------------------------ Community discussions (removal requests)
    @cached_property
    def login(self) -> str:
        """The Hub user the token acts as: its comments are the bot's own."""
        return self.api.whoami()["name"]

    def discussions(self, repo_id: str, repo_type: str = "model") -> list[int]:
        """The numbers of a repository's discussions (not pull requests), any status; none for a missing repo."""
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            return [d.num for d in self.api.get_repo_discussions(repo_id, repo_type=repo_type,
                                                                 discussion_type="discussion")]
        except RepositoryNotFoundError:
            return []

    def thread(self, repo_id: str, num: int, repo_type: str = "model"):
        """One discussion with its messages (kiki_bot.core.hubrequests.Thread), or None for a pull request."""
        from kiki_bot.core.hubrequests import Message, Thread

        d = self.api.get_discussion_details(repo_id, num, repo_type=repo_type)
        if d.is_pull_request:
            return None
        messages = tuple(Message(e.author, e.content) for e in d.events if e.type == "comment" and not e.hidden)
        return Thread(repo_type, repo_id, num, d.title, d.author, d.status, d.created_at, d.url, messages)

    def comment(self, repo_id: str, num: int, text: str, repo_type: str = "model") -> None:
        self.api.comment_discussion(repo_id, num, text, repo_type=repo_type)

    def close_discussion(self, repo_id: str, num: int, repo_type: str = "model") -> None:
        if self.api.get_discussion_details(repo_id, num, repo_type=repo_type).status == "open":
            self.api.change_discussion_status(repo_id, num, "closed", repo_type=repo_type)

    # ------------------------------------------------------------ upstream datasets
    def dataset_head(self, repo_id: str, revision: str = "main") -> str:
        """The commit a dataset revision (a branch, by default main) points at now."""
        return self.api.dataset_info(repo_id, revision=revision).sha

    def dataset_lines(self, repo_id: str, revision: str, filename: str):
        """The lines of one dataset file at a revision, streamed from the downloaded file (never all in memory)."""
        path = self.api.hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision)
        with open(path, "rb") as fh:
            for line in fh:
                yield line.rstrip(b"\r\n")
