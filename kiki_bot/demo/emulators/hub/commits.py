"""Uploads: preupload, the git-LFS batch API, and NDJSON commits to branches and `refs/pr/N`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from ..server import git_blob_sha, json_response
from .state import KINDS, LFS_THRESHOLD, HubRepo, fail, lfs_pointer, lfs_tracked, request_json


class Commits:
    """The handlers of uploads and commits."""

    def preupload(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """"lfs" for a file over 10 MB or tracked by LFS in the revision's .gitattributes, else "regular";
        `oid` (the LFS sha256, or the git blob sha) lets the client skip files already there."""
        repo = self._repo(request, kind, ns, name)
        files = repo.history[self._revision(repo, rev)].files
        answers = []
        for entry in (request_json(request) or {}).get("files", []):
            path, size = str(entry.get("path", "")), int(entry.get("size") or 0)
            lfs = size > LFS_THRESHOLD or lfs_tracked(files.get(".gitattributes", b""), path)
            answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in files:
                found = repo.lfs_object(files[path])
                answer["oid"] = found[0] if found else git_blob_sha(files[path])
            answers.append(answer)
        return json_response({"files": answers, "commitOid": self._revision(repo, rev)})

    def lfs_batch(self, request: Request, ns: str, name: str, kind: str = "models") -> Response:
        """The git-LFS batch API (basic transfer): where to PUT each object not yet stored, and to verify it."""
        repo, body = self._repo(request, kind, ns, name), request_json(request) or {}
        self._writer(request)
        if body.get("operation") != "upload":
            fail(422, "Only the upload operation is supported")
        base = f"{self._url(repo)}.git/info/lfs/objects"
        objects = []
        for item in body.get("objects") or []:
            oid, size = str(item.get("oid", "")), item.get("size")
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                answer["error"] = {"code": 422, "message": "Invalid object: a sha256 oid and a size are required"}
            elif oid not in repo.lfs:
                answer["actions"] = {"upload": {"href": f"{base}/{oid}"}, "verify": {"href": f"{base}/verify"}}
            objects.append(answer)
        return Response(json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
                        mimetype="application/vnd.git-lfs+json")

    def lfs_upload(self, request: Request, ns: str, name: str, oid: str, kind: str = "models") -> Response:
        """The PUT of an object's bytes (on the Hub, to its storage: no token); kept only if they hash to `oid`."""
        repo, data = self.repos.get((KINDS[kind], f"{ns}/{name}")), request.get_data()
        if repo is None:
            fail(404, "Repository not found", "RepoNotFound")
        if hashlib.sha256(data).hexdigest() != oid:
            fail(400, f"The uploaded content does not hash to {oid}")
        repo.lfs[oid] = data
        return Response(status=200)

    def lfs_verify(self, request: Request, ns: str, name: str, kind: str = "models") -> Response:
        repo, body = self._repo(request, kind, ns, name), request_json(request) or {}
        data = repo.lfs.get(str(body.get("oid")))
        if data is None or len(data) != body.get("size"):
            fail(404, f"LFS object {body.get('oid')} of size {body.get('size')} was not uploaded")
        return json_response({"success": True})

    def _apply(self, repo: HubRepo, files: dict[str, bytes], operation: dict[str, Any]) -> None:
        key, value = operation.get("key"), operation.get("value") or {}
        path = str(value.get("path", ""))
        if key == "file":
            data = base64.b64decode(value.get("content", ""))
            if len(data) > LFS_THRESHOLD:
                fail(400, f"Your push was rejected because it contains files larger than 10 MiB ({path}): "
                     "upload them through LFS (preupload answers uploadMode 'lfs')")
            files[path] = data
        elif key == "lfsFile":
            oid, size = str(value.get("oid", "")), value.get("size")
            if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs or len(repo.lfs[oid]) != size:
                fail(400, f"{path}: LFS object {oid} of size {size} was not uploaded (LFS batch API first)")
            files[path] = lfs_pointer(oid, size)
        elif key == "deletedFile":
            if path not in files:
                fail(404, f"{path} does not exist", "EntryNotFound")
            del files[path]
        elif key == "deletedFolder":
            for existing in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                del files[existing]
        else:
            fail(400, f"Unsupported commit operation {key!r}")

    def commit(self, request: Request, kind: str, ns: str, name: str, rev: str) -> Response:
        """Apply an NDJSON commit to a branch or `refs/pr/N`; `?create_pr=1` opens a PR against `rev`."""
        repo, author = self._repo(request, kind, ns, name), self._writer(request)
        operations = [json.loads(line) for line in request.get_data().splitlines() if line.strip()]
        if not operations or operations[0].get("key") != "header":
            fail(400, "The first line of a commit must be its header")
        header = operations[0].get("value") or {}
        create_pr = request.args.get("create_pr") in ("1", "true", "True")
        pr_match = re.fullmatch(r"refs/pr/(\d+)", rev)
        pull = None
        if pr_match and not create_pr:
            pull = self._discussion(repo, pr_match[1])
            if not pull.is_pull_request:
                fail(400, f"Discussion #{pull.num} is not a pull request")
        elif rev not in repo.branches:
            self._revision(repo, rev)  # 404 RevisionNotFound for an unknown revision
            fail(400, f"Can only commit to a branch or a pull request, not {rev}")
        parent = self._revision(repo, rev)
        if header.get("parentCommit") and header["parentCommit"] != parent and not create_pr:
            fail(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.history[parent].files)
        for operation in operations[1:]:
            self._apply(repo, files, operation)
        summary, description = header.get("summary") or "", header.get("description") or ""
        commit = repo.history.commit(files, (parent,), f"{summary}\n\n{description}".strip(), author)
        if create_pr:
            pull = self._open_discussion(repo, summary, description, author, target_branch=rev)
        if pull:
            pull.head = commit.sha
            pull.status = "open" if pull.status == "draft" else pull.status
            pull.events.append(self._event("commit", author, {"subject": summary, "oid": commit.sha}))
        else:
            repo.branches[rev] = commit.sha
        return json_response(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._url(repo)}/commit/{commit.sha}",
                "hookOutput": "",
                "pullRequestUrl": f"{self._url(repo)}/discussions/{pull.num}" if create_pr and pull else None,
            }
        )

