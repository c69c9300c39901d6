"""Issues, their comments and labels."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from ..server import json_response, now
from .state import BODY_LIMIT, LABEL_LIMITS, Issue, Label, Repo, fail, invalid, refuse_long, request_json


class Issues:
    """The handlers of issues (and pull requests as issues), comments and labels."""

    def list_issues(self, request: Request, owner: str, name: str) -> Response:
        repo, args = self._repo(owner, name), request.args
        state = args.get("state", "open")
        wanted = {label for label in args.get("labels", "").split(",") if label}
        issues = [
            issue
            for issue in reversed(repo.issues.values())
            if state in ("all", issue.state)
            and wanted <= set(issue.labels)
            and args.get("creator", issue.user) == issue.user
        ]
        return self._page(request, [self._issue_json(repo, issue) for issue in issues])

    def create_issue(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        if not body.get("title"):
            invalid("Issue", "missing_field", "title")
        refuse_long("Issue", "body", body.get("body"), BODY_LIMIT)
        self._refuse_label_names(body.get("labels") or [])
        issue = self._new_issue(
            repo, body["title"], body.get("body"), self._actor(request), body.get("labels", [])
        )
        return json_response(self._issue_json(repo, issue), 201)

    def get_issue(self, request: Request, owner: str, name: str, number: str) -> Response:
        return json_response(self._issue_json(*self._issue(owner, name, number)))

    def edit_issue(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = request_json(request) or {}
        if "labels" in body:
            issue.labels = []
            self._add_labels(repo, issue, body["labels"])
        self._edit(issue, body, body.get("state_reason"))
        return json_response(self._issue_json(repo, issue))

    def list_comments(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        return self._page(request, [self._comment_json(repo, issue, comment) for comment in issue.comments])

    def create_comment(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = self._comment_body(request)
        comment = self._new_comment(issue, body, self._actor(request))
        return json_response(self._comment_json(repo, issue, comment), 201)

    def get_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        return json_response(self._comment_json(*self._comment(owner, name, id)))

    def edit_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        repo, issue, comment = self._comment(owner, name, id)
        comment.body = self._comment_body(request)
        comment.updated_at = now()
        return json_response(self._comment_json(repo, issue, comment))

    def delete_comment(self, request: Request, owner: str, name: str, id: str) -> Response:
        _, issue, comment = self._comment(owner, name, id)
        issue.comments.remove(comment)
        return Response(status=204)

    def _comment_body(self, request: Request) -> str:
        """A comment's body: required, and at most 65,536 characters, refused in GitHub's words for comments."""
        text = (request_json(request) or {}).get("body") or invalid("IssueComment", "missing_field", "body")
        if isinstance(text, str) and len(text) > BODY_LIMIT:
            invalid("IssueComment", "unprocessable", "data",
                    f"Body is too long (maximum is {BODY_LIMIT} characters)")
        return str(text)

    def _refuse_label_names(self, names: list[Any]) -> None:
        """A label made on the fly (named on an issue) is held to a label's limits: GitHub answers 422 `invalid`
        with the name (semantic-release/github#518)."""
        for label in names:
            label_name = label["name"] if isinstance(label, dict) else str(label)
            if len(label_name) > LABEL_LIMITS["name"]:
                fail(422, "Validation Failed", errors=[{"value": label_name, "resource": "Label", "field": "name",
                                                        "code": "invalid"}])

    def _add_labels(self, repo: Repo, issue: Issue, names: list[Any]) -> None:
        """Add by name; like GitHub, a label unknown to the repository is created on the fly."""
        self._refuse_label_names(names)
        for label in names:
            label_name = label["name"] if isinstance(label, dict) else str(label)
            repo.labels.setdefault(label_name, Label(label_name))
            if label_name not in issue.labels:
                issue.labels.append(label_name)

    def _issue_labels(self, repo: Repo, issue: Issue) -> Response:
        return json_response([self._label_json(repo, repo.labels[label]) for label in issue.labels])

    def list_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        return self._issue_labels(*self._issue(owner, name, number))

    def add_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, issue = self._issue(owner, name, number)
        body = request_json(request)
        self._add_labels(repo, issue, body.get("labels", []) if isinstance(body, dict) else body or [])
        return self._issue_labels(repo, issue)

    def set_issue_labels(self, request: Request, owner: str, name: str, number: str) -> Response:
        _, issue = self._issue(owner, name, number)
        issue.labels = []
        return self.add_issue_labels(request, owner, name, number)

    def remove_issue_label(
        self, request: Request, owner: str, name: str, number: str, label: str
    ) -> Response:
        repo, issue = self._issue(owner, name, number)
        if label not in issue.labels:
            fail(404, "Label does not exist")
        issue.labels.remove(label)
        return self._issue_labels(repo, issue)

    def list_labels(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [self._label_json(repo, label) for label in repo.labels.values()])

    def create_label(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        label_name = body.get("name") or invalid("Label", "missing_field", "name")
        for key, limit in LABEL_LIMITS.items():
            refuse_long("Label", key, body.get(key), limit)
        if label_name in repo.labels:
            invalid("Label", "already_exists", "name")
        label = repo.labels[label_name] = Label(
            label_name, body.get("color", "ededed"), body.get("description")
        )
        return json_response(self._label_json(repo, label), 201)

    def get_label(self, request: Request, owner: str, name: str, label: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._label_json(repo, repo.labels.get(label) or fail(404, "Not Found")))

