"""The Git Data API: blobs, trees and commits with git's own object ids (one commit for many files,
as the bot writes)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from werkzeug.wrappers import Request, Response

from ..server import Commit, git_blob_sha, json_response
from .state import BLOB_MODES, TREE_MODE, Repo, TreeEntry, fail, invalid, request_json, tree_sha


class GitData:
    """Blobs, trees on a base tree, and commits."""

    def _store_tree(self, repo: Repo, flat: dict[str, tuple[str, str]]) -> str:
        """Store the trees of a flat {path: (mode, blob sha)} listing; returns the root tree's sha."""
        nested: dict[str, Any] = {}
        for path, entry in flat.items():
            *dirs, leaf = path.split("/")
            node = nested
            for part in dirs:
                node = node.setdefault(part, {})
            node[leaf] = entry

        def store(node: dict[str, Any]) -> str:
            entries = [TreeEntry(part, TREE_MODE, "tree", store(v)) if isinstance(v, dict)
                       else TreeEntry(part, v[0], "blob", v[1]) for part, v in node.items()]
            sha = tree_sha(entries)
            repo.trees[sha] = entries
            return sha

        return store(nested)

    def _flat(self, repo: Repo, sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """A stored tree as {path: (mode, blob sha)}, subtrees included."""
        flat: dict[str, tuple[str, str]] = {}
        for entry in repo.trees[sha]:
            if entry.type == "tree":
                flat |= self._flat(repo, entry.sha, f"{prefix}{entry.name}/")
            else:
                flat[prefix + entry.name] = (entry.mode, entry.sha)
        return flat

    def _tree_of(self, repo: Repo, commit_sha: str) -> str:
        """A commit's root tree: the one it was made with, or built once from its snapshot (blobs stored)."""
        if (sha := repo.commit_trees.get(commit_sha)) is None:
            flat = {}
            for path, data in repo.history[commit_sha].files.items():
                blob = git_blob_sha(data)
                repo.blobs[blob], flat[path] = data, ("100644", blob)
            sha = repo.commit_trees[commit_sha] = self._store_tree(repo, flat)
        return sha

    def _has_blob(self, repo: Repo, sha: str) -> bool:
        """Whether the repository holds the blob: uploaded, or the content of a file of any commit."""
        for commit_sha in repo.history.commits:
            if sha in repo.blobs:
                break
            self._tree_of(repo, commit_sha)
        return sha in repo.blobs

    def _git_commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        tree = self._tree_of(repo, commit.sha)
        return self._commit_json(repo, commit) | {
            "node_id": base64.b64encode(f"04:Commit{repo.id}:{commit.sha}".encode()).decode(),
            "tree": {"sha": tree, "url": f"{self._repo_url(repo)}/git/trees/{tree}"},
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        }

    def _tree_json(self, repo: Repo, sha: str, recursive: bool) -> dict[str, Any]:
        url, items = self._repo_url(repo), []

        def walk(tree: str, prefix: str) -> None:
            for entry in sorted(repo.trees[tree], key=lambda e: e.name):
                kind = "trees" if entry.type == "tree" else "blobs"
                item = {"path": prefix + entry.name, "mode": entry.mode, "type": entry.type, "sha": entry.sha,
                        "url": f"{url}/git/{kind}/{entry.sha}"}
                if entry.type == "blob":
                    item["size"] = len(repo.blobs[entry.sha])
                items.append(item)
                if recursive and entry.type == "tree":
                    walk(entry.sha, f"{prefix}{entry.name}/")

        walk(sha, "")
        return {"sha": sha, "url": f"{url}/git/trees/{sha}", "tree": items, "truncated": False}

    def create_blob(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            invalid("Blob", "missing_field", "content")
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error:
                fail(422, "Invalid Base64 content")
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            invalid("Blob", "invalid", "encoding", "encoding must be utf-8 or base64")
        self._refuse_too_large(data)
        sha = git_blob_sha(data)
        repo.blobs[sha] = data
        return json_response({"sha": sha, "url": f"{self._repo_url(repo)}/git/blobs/{sha}"}, 201)

    def get_blob(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        if not self._has_blob(repo, sha):
            fail(404, "Not Found")
        data = repo.blobs[sha]
        return json_response({
            "sha": sha, "node_id": base64.b64encode(f"04:Blob{repo.id}:{sha}".encode()).decode(),
            "size": len(data), "url": f"{self._repo_url(repo)}/git/blobs/{sha}",
            "content": base64.b64encode(data).decode(), "encoding": "base64",
        })

    def create_tree(self, request: Request, owner: str, name: str) -> Response:
        """A new tree: `base_tree`'s entries (if given) with `tree`'s paths set, replaced or (sha null) deleted."""
        repo, body = self._repo(owner, name), request_json(request) or {}
        elements, base = body.get("tree"), body.get("base_tree")
        if not isinstance(elements, list):
            invalid("Tree", "missing_field", "tree")
        if base is not None and base not in repo.trees and not (
            base in repo.history.commits and (base := self._tree_of(repo, base))
        ):
            fail(422, "Invalid tree info: base_tree is not a tree or commit of this repository")
        flat = self._flat(repo, base) if base else {}
        for element in elements:
            path, mode, kind = element.get("path"), element.get("mode"), element.get("type")
            if not path or path.startswith("/") or "//" in path:
                invalid("Tree", "invalid", "tree.path")
            flat = {p: v for p, v in flat.items() if p != path and not p.startswith(f"{path}/")}
            if "content" in element:
                data = str(element["content"]).encode()
                repo.blobs[sha := git_blob_sha(data)] = data
            elif (sha := element.get("sha", ...)) is None:
                continue  # deleted
            if kind == "tree" and mode == TREE_MODE and sha in repo.trees:
                flat |= self._flat(repo, sha, f"{path}/")
            elif kind == "blob" and mode in BLOB_MODES and isinstance(sha, str) and self._has_blob(repo, sha):
                flat[path] = (mode, sha)
            else:
                fail(422, f"tree.sha {sha} is not a valid {kind or 'object'}: GitRPC::BadObjectState")
        return json_response(self._tree_json(repo, self._store_tree(repo, flat), recursive=False), 201)

    def get_tree(self, request: Request, owner: str, name: str, sha: str) -> Response:
        """A tree by its sha, or the root tree of a commit or ref (GitHub takes either); `recursive`, set to
        anything, lists subtrees' entries too."""
        repo = self._repo(owner, name)
        if sha not in repo.trees:
            commit = repo.resolve(sha) or fail(404, "Not Found")
            sha = self._tree_of(repo, commit)
        return json_response(self._tree_json(repo, sha, "recursive" in request.args))

    def create_git_commit(self, request: Request, owner: str, name: str) -> Response:
        repo, body = self._repo(owner, name), request_json(request) or {}
        message, tree, parents = body.get("message"), body.get("tree"), body.get("parents", [])
        if not isinstance(message, str):
            invalid("Commit", "missing_field", "message")
        if tree not in repo.trees:
            fail(422, "Tree SHA does not exist")
        if not isinstance(parents, list) or any(p not in repo.history.commits for p in parents):
            fail(422, "Parent SHA does not exist or is not a commit object")
        files = {path: repo.blobs[sha] for path, (_, sha) in self._flat(repo, tree).items()}
        author = (body.get("author") or {}).get("name") or self._actor(request)
        commit = repo.history.commit(files, tuple(parents), message, author)
        repo.commit_trees[commit.sha] = tree
        return json_response(self._git_commit_json(repo, commit), 201)

    def get_git_commit(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        if sha not in repo.history.commits:
            fail(404, "Not Found")
        return json_response(self._git_commit_json(repo, repo.history[sha]))

