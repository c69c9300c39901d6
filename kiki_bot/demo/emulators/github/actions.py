"""Actions: what a workflow file's `on:` starts, repository and workflow dispatches, workflow runs."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import yaml
from werkzeug.wrappers import Request, Response

from ..server import json_response, now, token_of
from .state import HTML_URL, Dispatch, Repo, fail, invalid, iso, node_id, request_json, short_ref


def triggers(text: bytes) -> dict[str, Any]:
    """A workflow file's `on:` as {event: its filters or None}; {} when the file is not a workflow."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    on = doc.get("on", doc.get(True)) if isinstance(doc, dict) else None  # YAML 1.1 reads `on` as true
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {event: None for event in on if isinstance(event, str)}
    return on if isinstance(on, dict) else {}


def _glob(pattern: str) -> re.Pattern[str]:
    """GitHub's ref filter patterns: `*` stops at `/`, `**` does not."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return re.compile("".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts))


def push_starts(spec: Any, ref: str) -> bool:
    """Whether a push of `ref` (refs/heads/x or refs/tags/x) passes `on: push:`'s branch and tag filters."""
    spec = spec if isinstance(spec, dict) else {}
    kind, _, name = ref.removeprefix("refs/").partition("/")
    key = {"heads": "branches", "tags": "tags"}.get(kind)
    if key is None:
        return False
    for wanted, patterns in ((True, spec.get(key)), (False, spec.get(f"{key}-ignore"))):
        if patterns is not None:
            hit = False
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                negated = pattern.startswith("!")
                if _glob(pattern.removeprefix("!")).fullmatch(name):
                    hit = not negated
            return hit == wanted
    return not any(k in spec for k in ("branches", "branches-ignore", "tags", "tags-ignore"))


class Actions:
    """Pushes starting workflows, dispatches, workflows and their runs."""

    def _starts_workflows(self, request: Request) -> bool:
        """A person's token does; the Actions token (a job's, or any token not mapped to a person) does not."""
        login = self.tokens.get(token_of(request) or "")
        return login is not None and (token_of(request) or "") not in self.scopes and not login.endswith("[bot]")

    def _pushed(self, repo: Repo, ref: str, actor: str) -> None:
        """A push of `ref`: start each workflow at the pushed commit whose `on: push` filters take it."""
        sha = repo.resolve(ref)
        if sha is None:
            return
        for file in repo.workflows(sha):
            on = triggers(repo.history[sha].files[f".github/workflows/{file}"])
            if "push" in on and push_starts(on["push"], ref):
                repo.dispatches.append(Dispatch("push", file, {}, ref, next(self._ids), now(), actor=actor))

    def _pushed_by(self, request: Request, repo: Repo, ref: str) -> None:
        if self._starts_workflows(request):
            self._pushed(repo, ref, self._actor(request))

    def repository_dispatch(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        event_type = body.get("event_type") or invalid("RepositoryDispatch", "missing_field", "event_type")
        repo.dispatches.append(Dispatch("repository_dispatch", event_type, body.get("client_payload") or {}))
        return Response(status=204)

    def _workflow(self, repo: Repo, workflow: str) -> tuple[str, int]:
        """Look a workflow up by file name or id, as GitHub accepts either."""
        found = [(file, id_) for file, id_ in repo.workflows().items() if workflow in (file, str(id_))]
        return found[0] if found else fail(404, "Not Found")

    def get_workflow(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._workflow_json(repo, *self._workflow(repo, workflow)))

    def _workflow_json(self, repo: Repo, file: str, workflow_id: int) -> dict[str, Any]:
        """A workflow as GitHub lists it: named by its `name:` (else its path), dated by the repository."""
        path = f".github/workflows/{file}"
        try:
            doc = yaml.safe_load(repo.files().get(path, b""))
        except yaml.YAMLError:
            doc = None
        created = iso(repo.history.first_parent_log(repo.branches[repo.default_branch])[-1].date)
        url = f"{self._repo_url(repo)}/actions/workflows/{workflow_id}"
        return {
            "id": workflow_id,
            "node_id": node_id("Workflow", workflow_id),
            "name": str(doc.get("name") or path) if isinstance(doc, dict) else path,
            "path": path,
            "state": "active",
            "created_at": created,
            "updated_at": created,
            "url": url,
            "html_url": f"{HTML_URL}/{repo.full_name}/blob/{repo.default_branch}/{path}",
            "badge_url": f"{HTML_URL}/{repo.full_name}/workflows/{quote(file)}/badge.svg",
        }

    def _run_json(self, repo: Repo, file: str, run: Dispatch) -> dict[str, Any]:
        """A workflow run (the one a dispatch or push started), at the commit its ref names now."""
        workflow = self._workflow_json(repo, file, repo.workflows()[file])
        sha = repo.resolve(run.ref or "") or repo.branches[repo.default_branch]
        commit, url = repo.history[sha], f"{self._repo_url(repo)}/actions/runs/{run.id}"
        person = {"name": commit.author, "email": f"{commit.author}@users.noreply.github.com"}
        number = sum(d.name == file and d.event != "repository_dispatch" and d.id <= run.id for d in repo.dispatches)
        actor = self._user(run.actor or self.bot_login)
        return {
            "id": run.id, "node_id": node_id("WorkflowRun", run.id), "name": workflow["name"],
            "display_title": workflow["name"] if run.event == "workflow_dispatch" else commit.title,
            "head_branch": short_ref(run.ref), "head_sha": sha, "path": workflow["path"], "run_number": number,
            "run_attempt": 1, "event": run.event, "status": run.status, "conclusion": run.conclusion,
            "workflow_id": workflow["id"], "check_suite_id": run.id, "check_suite_node_id": node_id("CheckSuite", run.id),
            "url": url, "html_url": f"{HTML_URL}/{repo.full_name}/actions/runs/{run.id}", "pull_requests": [],
            "created_at": iso(run.created_at), "updated_at": iso(run.created_at),
            "run_started_at": iso(run.created_at), "actor": actor, "triggering_actor": actor,
            "jobs_url": f"{url}/jobs", "logs_url": f"{url}/logs", "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel", "rerun_url": f"{url}/rerun", "previous_attempt_url": None,
            "check_suite_url": f"{self._repo_url(repo)}/check-suites/{run.id}", "workflow_url": workflow["url"],
            "head_commit": {"id": sha, "tree_id": self._tree_of(repo, sha), "message": commit.message, "timestamp": iso(commit.date),
                            "author": person, "committer": person},
            "repository": self._repo_json(repo), "head_repository": self._repo_json(repo),
        }

    def workflow_dispatch(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        """Like GitHub: the workflow file at `ref` must have the trigger, and the inputs must be those it declares."""
        repo, body = self._repo(owner, name), request_json(request) or {}
        file, _ = self._workflow(repo, workflow)
        ref = body.get("ref") or invalid("Workflow", "missing_field", "ref")
        sha = repo.resolve(ref) or fail(422, f"No ref found for: {ref}")
        on = triggers(repo.history[sha].files.get(f".github/workflows/{file}", b""))
        if "workflow_dispatch" not in on:
            fail(422, "Workflow does not have 'workflow_dispatch' trigger")
        declared = (on["workflow_dispatch"] or {}).get("inputs") or {}
        inputs = body.get("inputs") or {}
        if unexpected := [key for key in inputs if key not in declared]:
            fail(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        for key, spec in declared.items():
            if (spec or {}).get("required") and (spec or {}).get("default") is None and key not in inputs:
                fail(422, f"Required input '{key}' not provided")
        repo.dispatches.append(Dispatch("workflow_dispatch", file, inputs, ref, next(self._ids), now(),
                                        actor=self._actor(request)))
        return Response(status=204)

    def list_runs(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        """The runs that dispatches and pushes started, newest first, filtered by `branch` like GitHub."""
        repo = self._repo(owner, name)
        file, _ = self._workflow(repo, workflow)
        branch = request.args.get("branch")
        runs = [d for d in reversed(repo.dispatches) if d.event != "repository_dispatch" and d.name == file
                and (branch is None or short_ref(d.ref) == branch)]
        return self._page(request, [self._run_json(repo, file, d) for d in runs], "workflow_runs")

