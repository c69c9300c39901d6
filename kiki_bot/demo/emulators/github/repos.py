"""Repositories, branches, refs, contents and releases."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from ..server import Commit, git_blob_sha, json_response, now
from .state import HTML_URL, RELEASE_BODY_LIMIT, Release, Repo, fail, invalid, refuse_long, request_json


class Repos:
    """The handlers of repositories, branches, compare, refs, the Contents API and releases."""

    def get_repo(self, request: Request, owner: str, name: str) -> Response:
        return json_response(self._repo_json(self._repo(owner, name)))

    def _branch_json(self, repo: Repo, branch: str) -> dict[str, Any]:
        commit = repo.history[repo.branches[branch]]
        return {
            "name": branch,
            "commit": self._rest_commit_json(repo, commit),
            "_links": {"self": f"{self._repo_url(repo)}/branches/{quote(branch)}",
                       "html": f"{HTML_URL}/{repo.full_name}/tree/{quote(branch)}"},
            "protected": False,
            "protection": {"enabled": False, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{self._repo_url(repo)}/branches/{quote(branch)}/protection",
        }

    def list_branches(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [
            {"name": branch, "commit": {"sha": sha, "url": f"{self._repo_url(repo)}/commits/{sha}"}, "protected": False}
            for branch, sha in sorted(repo.branches.items())
        ])

    def get_branch(self, request: Request, owner: str, name: str, branch: str) -> Response:
        repo = self._repo(owner, name)
        if branch not in repo.branches:
            fail(404, "Branch not found")
        return json_response(self._branch_json(repo, branch))

    def compare(self, request: Request, owner: str, name: str, basehead: str) -> Response:
        """`GET /compare/{base}...{head}`: where head stands against base (ahead, behind, diverged, identical)."""
        repo = self._repo(owner, name)
        base_ref, sep, head_ref = basehead.partition("...")
        base_sha, head_sha = repo.resolve(base_ref), repo.resolve(head_ref)
        if not sep or base_sha is None or head_sha is None:
            fail(404, "Not Found")
        below_base = {c.sha for c in repo.history.ancestry(base_sha)}
        below_head = list(repo.history.ancestry(head_sha))
        ahead = [c for c in below_head if c.sha not in below_base]
        behind = below_base - {c.sha for c in below_head}
        merge_base = next((c for c in below_head if c.sha in below_base), None)
        status = ("identical" if base_sha == head_sha else "ahead" if not behind else
                  "behind" if not ahead else "diverged")
        html = f"{HTML_URL}/{repo.full_name}/compare/{basehead}"
        return json_response({
            "url": f"{self._repo_url(repo)}/compare/{basehead}", "html_url": html, "permalink_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "status": status, "ahead_by": len(ahead),
            "behind_by": len(behind), "total_commits": len(ahead),
            "base_commit": self._rest_commit_json(repo, repo.history[base_sha]),
            "merge_base_commit": self._rest_commit_json(repo, merge_base) if merge_base else None,
            "commits": [self._rest_commit_json(repo, c) for c in reversed(ahead)], "files": [],
        })

    def _refs(self, repo: Repo, ref: str) -> tuple[dict[str, str], str]:
        """`heads/x` or `refs/tags/x` -> (the dict holding it, its short name)."""
        kind, _, short = ref.removeprefix("refs/").partition("/")
        refs = {"heads": repo.branches, "tags": repo.tags}.get(kind)
        return (refs, short) if refs is not None and short else fail(404, "Not Found")

    def get_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self._repo(owner, name)
        refs, short = self._refs(repo, ref)
        sha = refs.get(short) or fail(404, "Not Found")
        return json_response(self._ref_json(repo, f"refs/{ref.removeprefix('refs/')}", sha))

    def create_ref(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        ref, sha = body.get("ref", ""), body.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            fail(422, f"{ref} is not a valid ref name.")
        refs, short = self._refs(repo, ref)
        if short in refs:
            fail(422, "Reference already exists")
        if sha not in repo.history.commits:
            fail(422, "Object does not exist")
        refs[short] = sha
        self._pushed_by(request, repo, ref)
        return json_response(self._ref_json(repo, ref, sha), 201)

    def update_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        refs, short = self._refs(repo, f"refs/{ref}")
        old, sha = refs.get(short) or fail(422, "Reference does not exist"), body.get("sha", "")
        if sha not in repo.history.commits:
            fail(422, "Object does not exist")
        if not body.get("force") and not repo.history.is_ancestor(old, sha):
            fail(422, "Update is not a fast forward")
        refs[short] = sha
        self._pushed_by(request, repo, f"refs/{ref}")
        return json_response(self._ref_json(repo, f"refs/{ref}", sha))

    def delete_ref(self, request: Request, owner: str, name: str, ref: str) -> Response:
        refs, short = self._refs(self._repo(owner, name), f"refs/{ref}")
        if refs.pop(short, None) is None:
            fail(422, "Reference does not exist")
        return Response(status=204)

    # --- handlers: contents -------------------------------------------------------------------------

    def get_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        repo = self._repo(owner, name)
        ref = request.args.get("ref") or repo.default_branch
        sha = repo.resolve(ref) or fail(404, f"No commit found for the ref {ref}")
        files, path = repo.history[sha].files, path.strip("/")
        if path in files:
            return json_response(self._served_content(repo, path, ref, files[path]))
        prefix = f"{path}/" if path else ""
        children = {
            p[len(prefix) :].split("/", 1)[0]: "/" in p[len(prefix) :] for p in files if p.startswith(prefix)
        }
        if not children:
            fail(404, "Not Found")
        listing = []
        for child, is_dir in sorted(children.items()):
            child_path = prefix + child
            listing.append(
                self._content_json(repo, child_path, ref, None if is_dir else files[child_path], False)
            )
        return json_response(listing)

    def _write(
        self, request: Request, owner: str, name: str, path: str, data: bytes | None
    ) -> tuple[Repo, Commit, bool]:
        """Shared by create/update/delete: GitHub's sha checks, then one commit on the branch."""
        repo, body = self._repo(owner, name), request_json(request) or {}
        branch = body.get("branch") or repo.default_branch
        if branch not in repo.branches:
            fail(404, f"Branch {branch} not found")
        current = repo.history[repo.branches[branch]].files.get(path)
        if current is None and data is None:
            fail(404, "Not Found")
        if current is not None and not body.get("sha"):
            fail(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if current is not None and body["sha"] != git_blob_sha(current):
            fail(409, f"{path} does not match {body['sha']}")
        commit = repo.push(branch, {path: data}, body.get("message", ""), self._actor(request))
        self._pushed_by(request, repo, f"refs/heads/{branch}")
        return repo, commit, current is None

    def put_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        body = request_json(request) or {}
        if "content" not in body:
            invalid("Content", "missing_field", "content")
        data = base64.b64decode(body["content"])
        self._refuse_too_large(data)
        repo, commit, created = self._write(request, owner, name, path, data)
        content = self._content_json(repo, path, body.get("branch") or repo.default_branch, data, False)
        return json_response(
            {"content": content, "commit": self._commit_json(repo, commit)}, 201 if created else 200
        )

    def delete_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        repo, commit, _ = self._write(request, owner, name, path, None)
        return json_response({"content": None, "commit": self._commit_json(repo, commit)})

    def _release(self, repo: Repo, tag: str) -> Release | None:
        return next((release for release in repo.releases if release.tag_name == tag), None)

    def list_releases(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._page(request, [self._release_json(repo, release) for release in reversed(repo.releases)])

    def create_release(self, request: Request, owner: str, name: str) -> Response:
        """Publishing a release for a tag that does not exist yet creates it at `target_commitish`."""
        repo, body = self._repo(owner, name), request_json(request) or {}
        tag = body.get("tag_name") or invalid("Release", "missing_field", "tag_name")
        if self._release(repo, tag):
            invalid("Release", "already_exists", "tag_name")
        refuse_long("Release", "body", body.get("body"), RELEASE_BODY_LIMIT)
        target = body.get("target_commitish") or repo.default_branch
        if tag not in repo.tags and not body.get("draft"):
            repo.tags[tag] = repo.resolve(target) or invalid("Release", "invalid", "target_commitish")
            self._pushed_by(request, repo, f"refs/tags/{tag}")
        release = Release(
            next(self._ids),
            tag,
            body.get("name"),
            body.get("body"),
            target,
            bool(body.get("draft")),
            bool(body.get("prerelease")),
            self._actor(request),
            now(),
        )
        repo.releases.append(release)
        return json_response(self._release_json(repo, release), 201)

    def get_release_by_tag(self, request: Request, owner: str, name: str, tag: str) -> Response:
        repo = self._repo(owner, name)
        return json_response(self._release_json(repo, self._release(repo, tag) or fail(404, "Not Found")))

    def get_release(self, request: Request, owner: str, name: str, id: str) -> Response:
        repo = self._repo(owner, name)
        release = next((r for r in repo.releases if r.id == int(id)), None) or fail(404, "Not Found")
        return json_response(self._release_json(repo, release))

