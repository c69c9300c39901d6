"""Plumbing shared by the GitHub and Hub emulators.

* `serve`: run a WSGI app on 127.0.0.1 (OS-assigned port) in a background thread, so the real PyGithub and
  huggingface_hub talk to it over real HTTP.
* `Emulator`: a WSGI app that routes on the *raw* request path (the Hub sends revisions such as
  `refs%2Fpr%2F1` as one segment), serialises requests under one lock and records each of them.
* `History`: a tiny commit graph of full snapshots, enough git to branch, merge and squash.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, NoReturn, Self
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from kiki_bot.core.canonical import git_blob_sha

from .recorder import decode, record

WsgiApp = Callable[..., Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        """Stay silent: tests read `Emulator.requests` rather than an access log on stderr."""


class Server:
    """A WSGI app served on 127.0.0.1 from a daemon thread; use as a context manager or call `stop()`."""

    def __init__(self, app: WsgiApp) -> None:
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.port}"
        # A short poll interval keeps stop() fast; it bounds how long shutdown waits for the serving loop.
        serve_loop = partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve_loop, name=self.url, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(app: WsgiApp) -> Server:
    """Start serving `app` over HTTP on 127.0.0.1; the URL is `.url`."""
    return Server(app)


# --- routing and recording -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it went over the wire (path still percent-encoded) with its decoded body."""

    method: str
    path: str
    query: dict[str, str]
    json: Any  # the JSON body, a list of objects for NDJSON, or None
    token: str | None  # from `Authorization: token <t>` or `Bearer <t>`


def _compile(template: str) -> re.Pattern[str]:
    """`/a/{x}/b/{rest:.+}` -> a regex; `{x}` matches one raw path segment, `{x:regex}` the given regex."""
    parts = re.split(r"\{(\w+)(?::([^}]+))?\}", template)
    regex = ""
    for i in range(0, len(parts), 3):
        regex += re.escape(parts[i])
        if i + 1 < len(parts):
            regex += f"(?P<{parts[i + 1]}>{parts[i + 2] or '[^/]+'})"
    return re.compile(regex)


def raw_path(request: Request) -> str:
    """The path as sent, before percent-decoding (werkzeug's server keeps it in RAW_URI)."""
    return str(request.environ.get("RAW_URI", request.path)).split("?", 1)[0]


class Emulator:
    """Base WSGI app: dispatches `routes` to handler methods and records every request in `requests`.

    Routes are `(method, path template, handler name)`; handlers receive the request plus the decoded
    template fields and return a Response or raise one with `abort_with`. HEAD is served by
    the GET handler (werkzeug then drops the body but keeps Content-Length). A handler bug is answered as a
    400 and kept in `errors`: a 5xx would make huggingface_hub retry with backoff for seconds.
    """

    routes: ClassVar[list[tuple[str, str, str]]]
    _compiled: ClassVar[list[tuple[str, re.Pattern[str], str]]]

    def __init_subclass__(cls) -> None:
        cls._compiled = [(method, _compile(template), name) for method, template, name in cls.routes]

    def __init__(self, base_url: str) -> None:
        self._lock = threading.RLock()
        self.base_url = base_url  # for absolute URLs in bodies; becomes the served URL with the first request
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []

    def reset(self) -> None:
        """Forget all state and recorded requests (the server keeps running)."""
        self.requests.clear()
        self.errors.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = raw_path(request)
        with self._lock:
            self.base_url = request.host_url.rstrip("/")
            body = decode(request.get_data(), request.mimetype)
            self.requests.append(RecordedRequest(request.method, path, dict(request.args), body, token_of(request)))
            try:
                response = self._dispatch(request, path)
            except HTTPException as exc:
                response = exc.get_response(environ)
            except Exception:  # noqa: BLE001 - reported through `errors`, see the class docstring
                self.errors.append(traceback.format_exc())
                response = self.error_response(400, "emulator error (see Emulator.errors)")
            record(type(self).__name__.removesuffix("Emulator").lower(), request, path, response)
        return response(environ, start_response)

    def _dispatch(self, request: Request, path: str) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        for route_method, pattern, name in self._compiled:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                fields = {key: unquote(value) for key, value in match.groupdict().items()}
                self.authorize(request, name, fields)
                response: Response = getattr(self, name)(request, **fields)
                return response
        return self.error_response(404, "Not Found")

    def authorize(self, request: Request, handler: str, fields: dict[str, str]) -> None:
        """Refuse (with `abort_with`) what the request's token may not do; subclasses that model scopes say how."""

    def error_response(self, status: int, message: str) -> Response:
        """Each service shapes its errors its own way (GitHub's `message`, the Hub's X-Error-Code): subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must shape its own error responses")


def token_of(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") and token.strip() else None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers, mimetype="application/json")


def abort_with(response: Response) -> NoReturn:
    raise HTTPException(response=response)


def now() -> datetime:
    return datetime.now(UTC)


# --- commits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    sha: str
    files: dict[str, bytes]  # the full snapshot, path -> content
    parents: tuple[str, ...]
    message: str
    author: str
    date: datetime

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def description(self) -> str:
        return self.message.partition("\n")[2].strip()


class History:
    """All commits of one repository, keyed by a sha that is unique per commit."""

    def __init__(self) -> None:
        self.commits: dict[str, Commit] = {}
        self._serial = itertools.count()

    def __getitem__(self, sha: str) -> Commit:
        return self.commits[sha]

    def commit(self, files: dict[str, bytes], parents: tuple[str, ...], message: str, author: str) -> Commit:
        tree = sorted((path, git_blob_sha(data)) for path, data in files.items())
        seed = repr((tree, parents, message, author, next(self._serial))).encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), dict(files), parents, message, author, now())
        self.commits[commit.sha] = commit
        return commit

    def commit_changes(
        self, parent: str, changes: dict[str, bytes | None], message: str, author: str,
        put: Callable[[dict[str, bytes], str, bytes], None] = dict.__setitem__,
    ) -> Commit:
        """A commit on `parent` with `changes` applied (None deletes a path); `put` stores a file (the Hub's
        goes through LFS where the Hub would)."""
        files = dict(self.commits[parent].files)
        for path, data in changes.items():
            if data is None:
                files.pop(path, None)
            else:
                put(files, path, data)
        return self.commit(files, (parent,), message, author)

    def ancestry(self, sha: str) -> Iterator[Commit]:
        """`sha` and every commit reachable from it, nearest first."""
        seen, queue = {sha}, [sha]
        while queue:
            commit = self.commits[queue.pop(0)]
            yield commit
            for parent in commit.parents:
                if parent not in seen and parent in self.commits:
                    seen.add(parent)
                    queue.append(parent)

    def first_parent_log(self, sha: str) -> list[Commit]:
        log = [self.commits[sha]]
        while log[-1].parents and log[-1].parents[0] in self.commits:
            log.append(self.commits[log[-1].parents[0]])
        return log

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        return any(commit.sha == ancestor for commit in self.ancestry(sha))

    def merge(self, ours: str, theirs: str) -> tuple[dict[str, bytes], list[str]]:
        """Three-way merge of two commits' snapshots, file by file; returns (files, conflicting paths)."""
        theirs_ancestry = {commit.sha for commit in self.ancestry(theirs)}
        base_sha = next((c.sha for c in self.ancestry(ours) if c.sha in theirs_ancestry), None)
        base = self.commits[base_sha].files if base_sha else {}
        mine, other = self.commits[ours].files, self.commits[theirs].files
        merged: dict[str, bytes] = {}
        conflicts = []
        for path in sorted(base.keys() | mine.keys() | other.keys()):
            a, o, t = base.get(path), mine.get(path), other.get(path)
            if o != t and o != a and t != a:
                conflicts.append(path)
                continue
            result = t if o == a else o  # take whichever side changed the file (None: deleted)
            if result is not None:
                merged[path] = result
        return merged, conflicts

    def resolve(self, ref: str, branches: dict[str, str], tags: dict[str, str]) -> str | None:
        """A branch, tag (optionally as `refs/heads/...`/`refs/tags/...`) or commit sha -> commit sha."""
        for prefix, refs in (("refs/heads/", branches), ("refs/tags/", tags)):
            if ref.startswith(prefix):
                return refs.get(ref.removeprefix(prefix))
        return branches.get(ref) or tags.get(ref) or (ref if ref in self.commits else None)

    def keep_reachable(self, roots: Iterable[str]) -> None:
        """Drop every commit no ref reaches (what git's gc does after a history rewrite)."""
        reachable = {commit.sha for root in roots for commit in self.ancestry(root)}
        self.commits = {sha: c for sha, c in self.commits.items() if sha in reachable}
