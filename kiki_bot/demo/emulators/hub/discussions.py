"""Discussions and pull requests: open, comment, change status, merge."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from ..server import json_response, now
from .state import Discussion, HubRepo, fail, iso, request_json


class Discussions:
    """The Community tab: discussions and pull requests."""

    def _discussion(self, repo: HubRepo, num: str) -> Discussion:
        return repo.discussions.get(int(num)) or fail(404, "Discussion not found")

    def _event(self, kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
        event_id = f"{next(self._event_ids):024x}"
        return {
            "id": event_id,
            "type": kind,
            "createdAt": iso(now()),
            "author": {"name": author},
            "data": data,
        }

    def _comment_event(self, author: str, text: str) -> dict[str, Any]:
        return self._event("comment", author, {"edited": False, "hidden": False, "latest": {"raw": text}})

    def _open_discussion(
        self, repo: HubRepo, title: str, description: str, author: str, target_branch: str | None
    ) -> Discussion:
        """A discussion or, given a `target_branch`, a draft pull request whose refs/pr/N starts there."""
        discussion = Discussion(len(repo.discussions) + 1, title, author, target_branch is not None, now())
        discussion.events.append(self._comment_event(author, description))
        if target_branch is not None:
            discussion.status, discussion.head = "draft", repo.branches[target_branch]
            discussion.target_branch = target_branch
        repo.discussions[discussion.num] = discussion
        return discussion

    def _discussion_json(
        self, repo: HubRepo, discussion: Discussion, details: bool = False
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "num": discussion.num,
            "title": discussion.title,
            "status": discussion.status,
            "isPullRequest": discussion.is_pull_request,
            "createdAt": iso(discussion.created_at),
            "author": {"name": discussion.author},
            "repo": {"name": repo.repo_id, "type": repo.repo_type},
            "pinned": False,
            "numComments": len(discussion.comments),
            "topReactions": [],
        }
        if details:
            data["events"] = discussion.events
            if discussion.is_pull_request and discussion.head:
                base = repo.branches.get(discussion.target_branch, discussion.head)
                data["changes"] = {
                    "base": f"refs/heads/{discussion.target_branch}",
                    "mergeCommitId": discussion.merge_commit,
                }
                data["filesWithConflicts"] = repo.history.merge(base, discussion.head)[1]
        return data

    def list_discussions(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo, args = self._repo(request, kind, ns, name), request.args
        kinds = {"discussion": {False}, "pull_request": {True}}.get(args.get("type", "all"), {False, True})
        statuses = {"open": {"open", "draft"}, "closed": {"closed", "merged"}}.get(args.get("status", "all"))
        found = [
            d
            for d in reversed(repo.discussions.values())
            if d.is_pull_request in kinds
            and (statuses is None or d.status in statuses)
            and args.get("author", d.author) == d.author
        ]
        page, per_page = int(args.get("p", 0)), 50
        return json_response(
            {
                "discussions": [
                    self._discussion_json(repo, d) for d in found[page * per_page : (page + 1) * per_page]
                ],
                "count": len(found),
                "start": page * per_page,
            }
        )

    def create_discussion(self, request: Request, kind: str, ns: str, name: str) -> Response:
        """A pull request starts as a draft whose `refs/pr/N` points at main until something is committed."""
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), request_json(request) or {}
        title = str(body.get("title") or "").strip() or fail(400, "A title is required")
        target = "main" if body.get("pullRequest") else None
        discussion = self._open_discussion(repo, title, str(body.get("description") or ""), author, target)
        return json_response({"num": discussion.num, "pullRequest": discussion.is_pull_request})

    def discussion_details(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo = self._repo(request, kind, ns, name)
        return json_response(self._discussion_json(repo, self._discussion(repo, num), details=True))

    def comment(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        discussion = self._discussion(repo, num)
        text = str((request_json(request) or {}).get("comment") or "").strip() or fail(400, "A comment is required")
        discussion.events.append(event := self._comment_event(author, text))
        return json_response({"newMessage": event})

    def change_status(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), request_json(request) or {}
        discussion = self._discussion(repo, num)
        if body.get("status") not in ("open", "closed") or discussion.status == "merged":
            fail(
                400, f"Cannot change the status of a {discussion.status} discussion to {body.get('status')!r}"
            )
        if body.get("comment"):
            discussion.events.append(self._comment_event(author, body["comment"]))
        discussion.status = body["status"]
        discussion.events.append(event := self._event("status-change", author, {"status": body["status"]}))
        return json_response({"newStatus": event})

    def merge(self, request: Request, kind: str, ns: str, name: str, num: str) -> Response:
        """Squash-merge `refs/pr/N` into its target branch (three-way, per file) as one new commit."""
        repo, author, body = self._repo(request, kind, ns, name), self._writer(request), request_json(request) or {}
        pull = self._discussion(repo, num)
        if not pull.is_pull_request or pull.head is None or pull.status not in ("open", "draft"):
            fail(400, f"Discussion #{num} is not an open pull request")
        base = repo.branches[pull.target_branch]
        files, conflicts = repo.history.merge(base, pull.head)
        if conflicts:
            fail(409, f"Merge conflict in: {', '.join(conflicts)}")
        commit = repo.history.commit(files, (base,), f"{pull.title} (#{pull.num})", author)
        repo.branches[pull.target_branch] = pull.merge_commit = commit.sha
        if body.get("comment"):
            pull.events.append(self._comment_event(author, body["comment"]))
        pull.status = "merged"
        pull.events.append(self._event("status-change", author, {"status": "merged"}))
        return json_response({})
