"""Limits: file sizes, rate limits, and the refusals a test asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from ..server import json_response, now
from .state import CONTENTS_INLINE_LIMIT, FILE_LIMIT, TOO_LARGE, Repo, fail


RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass


class Refusal:
    """An answer a test asked for in place of the next matching request's (rate limits, server errors)."""

    status: int
    method: str  # "" for any
    path: str
    query: dict[str, str]
    retry_after: int | None
    reset_at: int | None
    rate_headers: bool = True  # False: no x-ratelimit-* headers (a secondary limit may come without them)


class Limits:
    """GitHub's size limits and rate-limit headers, and `refuse_next`."""

    def _refuse_too_large(self, data: bytes) -> None:
        if len(data) > FILE_LIMIT:
            fail(422, f"File is {len(data) / 2**20:.2f} MB; this exceeds GitHub's file size limit of 100.00 MB",
                 errors=[TOO_LARGE])

    def _served_content(self, repo: Repo, path: str, ref: str, data: bytes) -> dict[str, Any]:
        """The Contents API's JSON for a file: its content up to 1 MiB, none (`encoding: none`) up to 100 MiB;
        beyond that GitHub refuses (use the Git Data API, or clone)."""
        if len(data) > FILE_LIMIT:
            fail(403, "This API returns blobs up to 100 MB in size. The requested blob is too large to fetch "
                      "via the API, but you can always clone the repository via Git to obtain it.",
                 errors=[TOO_LARGE], documentation_url="https://docs.github.com/rest/repos/contents")
        if len(data) > CONTENTS_INLINE_LIMIT:
            return self._content_json(repo, path, ref, data, False) | {"content": "", "encoding": "none"}
        return self._content_json(repo, path, ref, data)

    def refuse_next(self, status: int, times: int = 1, *, method: str = "", path: str = "",
                    query: dict[str, str] | None = None, retry_after: int | None = None,
                    reset_at: int | None = None, rate_headers: bool = True) -> None:
        """Answer the next `times` requests (of `method`, when given) whose path contains `path` (and query has
        `query`) with `status` instead, as GitHub does:
        403/429 with `reset_at` (Unix time) is the primary rate limit (x-ratelimit-remaining 0 and
        x-ratelimit-reset), without it the secondary one (Retry-After when `retry_after` is given); 5xx is a
        server error. `rate_headers=False` leaves out the x-ratelimit-* headers every other answer carries: the
        secondary limit with neither Retry-After nor x-ratelimit-remaining 0, for which GitHub's docs ("rate limits
        for the REST API") tell clients to wait at least a minute, longer each time."""
        self.refusals.extend(Refusal(status, method, path, query or {}, retry_after, reset_at, rate_headers)
                             for _ in range(times))

    def _dispatch(self, request: Request, path: str) -> Response:
        """Every answer carries GitHub's x-ratelimit-* headers; a refusal a test asked for comes first."""
        refusal = next((r for r in self.refusals if r.path in path and r.method in ("", request.method)
                        and r.query.items() <= dict(request.args).items()), None)
        if refusal is not None:
            self.refusals.remove(refusal)
            response = self._refusal_response(refusal)
        else:
            try:
                response = super()._dispatch(request, path)
            except HTTPException as exc:
                if exc.response is None:
                    raise
                response = exc.response
        self.rate_used += 1
        if refusal is not None and not refusal.rate_headers:
            return response
        reset = int(now().timestamp()) // 3600 * 3600 + 3600
        for header, value in (("x-ratelimit-limit", 5000), ("x-ratelimit-remaining", max(0, 5000 - self.rate_used)),
                              ("x-ratelimit-used", self.rate_used), ("x-ratelimit-reset", reset),
                              ("x-ratelimit-resource", "core")):
            response.headers.setdefault(header, str(value))
        return response

    def _refusal_response(self, refusal: Refusal) -> Response:
        if refusal.status >= 500:
            return json_response({"message": "Server Error"}, refusal.status)
        if refusal.reset_at is not None:
            return json_response(
                {"message": "API rate limit exceeded for installation ID 1.", "documentation_url": RATE_LIMIT_DOCS},
                refusal.status, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(refusal.reset_at)})
        message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If "
                   "you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000.")
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
        return json_response({"message": message, "documentation_url": RATE_LIMIT_DOCS}, refusal.status, headers)
