"""Accounts, repositories and their metadata, downloads, refs and history."""

from __future__ import annotations

from typing import Any

import yaml
from werkzeug.wrappers import Request, Response

from ..server import git_blob_sha, json_response, now
from .cards import card_metadata, validate_card
from .state import URL_PREFIX, HubRepo, avatar, fail, iso, request_json


class Repos:
    """The handlers of the account, repositories, settings, card validation, `resolve`, refs, tags, branches,
    tree, commit log and super-squash (mixed into HubEmulator)."""

    def _blob_json(self, repo: HubRepo, stored: bytes) -> dict[str, Any]:
        """A file's size and git blob id, and for content stored by LFS its `lfs` sha256, size and pointer size."""
        found = repo.lfs_object(stored)
        blob = {"size": len(found[1]) if found else len(stored), "blobId": git_blob_sha(stored)}
        if found:
            blob["lfs"] = {"sha256": found[0], "size": len(found[1]), "pointerSize": len(stored)}
        return blob

    def _file_json(self, repo: HubRepo, path: str, stored: bytes) -> dict[str, Any]:
        """A tree entry for a file, as `list_repo_tree` reads it (`lfs` with `oid` for LFS content)."""
        blob = self._blob_json(repo, stored)
        entry = {"type": "file", "oid": blob["blobId"], "size": blob["size"], "path": path}
        if "lfs" in blob:
            entry["lfs"] = {"oid": blob["lfs"]["sha256"], "size": blob["size"], "pointerSize": len(stored)}
        return entry

    def whoami(self, request: Request) -> Response:
        name = self._writer(request)
        return json_response(
            {
                "type": "user",
                "id": git_blob_sha(name.encode())[:24],
                "name": name,
                "fullname": name,
                "email": None,
                "emailVerified": False,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": avatar(name),
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "emulator", "role": "write",
                                                                 "createdAt": iso(now())}},
            }
        )

    def create_repo_handler(self, request: Request) -> Response:
        body, author = request_json(request) or {}, self._writer(request)
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX or not body.get("name"):
            fail(400, f"Invalid repository type or name: {repo_type!r}, {body.get('name')!r}")
        repo_id = f"{body.get('organization') or author}/{body['name']}"
        if (repo_type, repo_id) in self.repos:
            repo = self.repos[repo_type, repo_id]
            return json_response(
                {"error": f"You already created this {repo_type} repo", "url": self._url(repo)}, 409
            )
        repo = self.create_repo(repo_id, repo_type, private=body.get("visibility") == "private")
        return json_response({"url": self._url(repo), "name": repo_id, "id": git_blob_sha(repo_id.encode())[:24]})

    def repo_info(self, request: Request, kind: str, ns: str, name: str, rev: str = "main") -> Response:
        repo = self._repo(request, kind, ns, name)
        commit = repo.history[self._revision(repo, rev)]
        try:
            card = card_metadata(commit.files.get("README.md", b"").decode(errors="replace"))
        except yaml.YAMLError:
            card = None
        card = card if isinstance(card, dict) else None
        info = {
            "_id": git_blob_sha(repo.repo_id.encode())[:24],
            "id": repo.repo_id,
            "author": ns,
            "sha": commit.sha,
            "lastModified": iso(commit.date),
            "createdAt": iso(repo.created_at),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list(card.get("tags") or []) if card else [],
            "cardData": card,
            "siblings": [
                {"rfilename": path} | self._blob_json(repo, data) for path, data in sorted(commit.files.items())
            ],
            "usedStorage": sum(len(repo.content(data)) for data in commit.files.values()),
        }
        if repo.repo_type == "model":  # what the card says of the model, as the Hub reads it from there
            info |= {"modelId": repo.repo_id, "spaces": [], "library_name": (card or {}).get("library_name"),
                     "pipeline_tag": (card or {}).get("pipeline_tag")}
            info |= {"model-index": card["model-index"]} if card and "model-index" in card else {}
        return json_response(info)

    def update_settings(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo, body = self._repo(request, kind, ns, name), request_json(request) or {}
        self._writer(request)
        if "gated" in body and body["gated"] not in (False, "auto", "manual"):
            fail(400, f"Invalid gated value {body['gated']!r}")
        if "visibility" in body and body["visibility"] not in ("private", "public"):
            fail(400, f"Invalid visibility {body['visibility']!r}")
        repo.gated = body.get("gated", repo.gated)
        repo.private = body.get("visibility", "private" if repo.private else "public") == "private"
        return json_response({})

    def validate_yaml(self, request: Request) -> Response:
        errors, warnings = validate_card(str((request_json(request) or {}).get("content", "")))
        problems = {
            "errors": [{"message": e} for e in errors],
            "warnings": [{"message": w} for w in warnings],
        }
        return json_response(problems, 400 if errors else 200)

    def resolve(
        self, request: Request, ns: str, name: str, rev: str, path: str, kind: str = "models"
    ) -> Response:
        repo = self._repo(request, kind, ns, name, download=True)
        sha = self._revision(repo, rev)
        data = repo.history[sha].files.get(path)
        if data is None:
            fail(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(data)}"', "Accept-Ranges": "bytes"}
        if found := repo.lfs_object(data):  # the Hub redirects to its storage; the linked headers say what
            oid, data = found
            headers |= {"ETag": f'"{oid}"', "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data))}
        return Response(data, headers=headers, mimetype="application/octet-stream")

    def refs(self, request: Request, kind: str, ns: str, name: str) -> Response:
        repo = self._repo(request, kind, ns, name)

        def ref(name: str, full: str, sha: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": sha}

        refs: dict[str, Any] = {
            "branches": [ref(b, f"refs/heads/{b}", sha) for b, sha in sorted(repo.branches.items())],
            "tags": [ref(t, f"refs/tags/{t}", sha) for t, sha in sorted(repo.tags.items())],
            "converts": [],
        }
        if request.args.get("include_prs"):
            refs["pullRequests"] = [
                ref(f"refs/pr/{d.num}", f"refs/pr/{d.num}", d.head)
                for d in repo.discussions.values()
                if d.head
            ]
        return json_response(refs)

    def create_tag(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        repo, body = self._repo(request, kind, ns, name), request_json(request) or {}
        self._writer(request)
        tag = body.get("tag") or fail(400, "A tag name is required")
        if tag in repo.tags:
            fail(409, f"Tag reference refs/tags/{tag} already exists")
        repo.tags[tag] = self._revision(repo, rev)
        return json_response({})

    def delete_tag(self, request: Request, kind: str, ns: str, name: str, tag: str) -> Response:
        """Remove a tag; the commits only it reached are gone (no ref keeps them)."""
        repo = self._repo(request, kind, ns, name)
        self._writer(request)
        if tag not in repo.tags:
            fail(404, f"Invalid rev id: {tag}", "RevisionNotFound")
        del repo.tags[tag]
        repo.history.keep_reachable(repo.roots())
        return json_response({})

    def create_branch(self, request: Request, kind: str, ns: str, name: str, branch: str) -> Response:
        """A branch at `startingPoint` (a revision; `main`'s head without one); 409 when it exists."""
        repo, body = self._repo(request, kind, ns, name), request_json(request) or {}
        self._writer(request)
        if branch in repo.branches:
            fail(409, f"Reference refs/heads/{branch} already exists")
        repo.branches[branch] = self._revision(repo, str(body.get("startingPoint") or "main"))
        return json_response({})

    def delete_branch(self, request: Request, kind: str, ns: str, name: str, branch: str) -> Response:
        """Remove a branch (never `main`); the commits only it reached are gone."""
        repo = self._repo(request, kind, ns, name)
        self._writer(request)
        if branch == "main":
            fail(403, "Cannot delete the default branch main")
        if branch not in repo.branches:
            fail(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        del repo.branches[branch]
        repo.history.keep_reachable(repo.roots())
        return json_response({})

    def tree(self, request: Request, kind: str, ns: str, name: str, rev: str, path: str = "") -> Response:
        repo = self._repo(request, kind, ns, name)
        files = repo.history[self._revision(repo, rev)].files
        recursive = request.args.get("recursive", "").lower() == "true"
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for file_path, data in sorted(files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = prefix + "/".join(parts[:depth])
                entries[folder] = {
                    "type": "directory",
                    "path": folder,
                    "size": 0,
                    "oid": git_blob_sha(folder.encode()),
                }
            if recursive or len(parts) == 1:
                entries[file_path] = self._file_json(repo, file_path, data)
        if prefix and not entries:
            fail(404, f"Entry not found: {path}", "EntryNotFound")
        return json_response(list(entries.values()))

    def commits(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        repo = self._repo(request, kind, ns, name)
        return json_response(
            [
                {
                    "id": c.sha,
                    "title": c.title,
                    "message": c.description,
                    "authors": [{"user": c.author, "avatar": avatar(c.author)}],
                    "date": iso(c.date),
                }
                for c in repo.history.first_parent_log(self._revision(repo, rev))
            ]
        )

    def super_squash(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """Replace a branch's history with one commit; commits no ref reaches any more are gone."""
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        if rev not in repo.branches:
            self._revision(repo, rev)  # 404 RevisionNotFound for an unknown revision
            fail(400, f"Invalid reference for a branch: {rev}")
        message = (request_json(request) or {}).get("message") or f"Super-squash branch '{rev}'"
        repo.branches[rev] = repo.history.commit(
            repo.history[repo.branches[rev]].files, (), message, author
        ).sha
        repo.history.keep_reachable(repo.roots())
        return json_response({"commitId": repo.branches[rev]})

