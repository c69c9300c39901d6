"""Pull requests: opening, listing, their files and merging."""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from ..server import git_blob_sha, json_response, now
from .state import BODY_LIMIT, CONTENTS_LIMIT, HTML_URL, Pull, Repo, fail, invalid, refuse_long, request_json


class Pulls:
    """The handlers of pull requests."""

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
        repo, body = self._repo(owner, name), request_json(request) or {}
        head, base = str(body.get("head", "")).split(":")[-1], body.get("base", "")
        if not body.get("title"):  # OpenAPI, "Create a pull request": "Required unless `issue` is specified"
            invalid("PullRequest", "missing_field", "title")
        refuse_long("PullRequest", "body", body.get("body"), BODY_LIMIT)
        if head not in repo.branches:
            invalid("PullRequest", "invalid", "head")
        if base not in repo.branches:
            invalid("PullRequest", "invalid", "base")
        # These two, as GitHub sends them, name no field (seen in its answers; octokit users match the message).
        if repo.history.is_ancestor(repo.branches[head], repo.branches[base]):
            fail(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom",
                                                    "message": f"No commits between {base} and {head}"}])
        if any(
            i.pull and i.state == "open" and (i.pull.head, i.pull.base) == (head, base)
            for i in repo.issues.values()
        ):
            exists = f"A pull request already exists for {repo.owner}:{head}."
            fail(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom", "message": exists}])
        pull = Pull(head, base, repo.branches[head], draft=bool(body.get("draft")))
        issue = self._new_issue(
            repo, body["title"], body.get("body"), self._actor(request), [], pull
        )
        return json_response(self._pull_json(repo, issue), 201)

    def get_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        return json_response(self._pull_json(*self._pull(owner, name, number)))

    def edit_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._pull(owner, name, number)
        assert issue.pull is not None
        body = request_json(request) or {}
        issue.pull.base = body.get("base", issue.pull.base)
        self._edit(issue, body, None)  # a pull request takes no state_reason
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
        pull, body = issue.pull, request_json(request) or {}
        assert pull is not None
        if issue.state != "open" or pull.head not in repo.branches:
            fail(405, "Pull Request is not mergeable")
        head_sha, base_sha = repo.branches[pull.head], repo.branches[pull.base]
        if body.get("sha") and body["sha"] != head_sha:
            fail(409, "Head branch was modified. Review and try the merge again.")
        files, conflicts = repo.history.merge(base_sha, head_sha)
        if conflicts:
            fail(405, "Pull Request is not mergeable")
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

