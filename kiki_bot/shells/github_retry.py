"""How kiki-bot waits for GitHub: a urllib3 retry policy given to PyGithub through its own `retry=` argument
(the library is not patched), imported only when a GitHub client is made (urllib3 is slow to import).

GitHub's rules (docs: "rate limits for the REST API"): after a 403/429 with Retry-After, wait that long; with
x-ratelimit-remaining 0, wait until x-ratelimit-reset; a 429 without either, or a 403 whose message says it
is a secondary rate limit, at least a minute, longer each time. The request was not served, so any method
may be sent again. A 5xx is retried only where repeating the
call changes nothing. Retries are bounded, and so is a single wait: a limit that lifts later fails the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from urllib3 import Retry
from urllib3.exceptions import MaxRetryError

RETRIES = 5
MAX_WAIT = 900.0
"""The longest single wait for a rate limit (seconds)."""
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
CONTENT_ADDRESSED = ("/git/blobs", "/git/trees")
"""POSTs that make a content-addressed object: sending one again makes the same object, so it may be retried."""


def rate_limit_wait(status: int, headers: Mapping[str, str], now: float, attempt: int,
                    message: str | None = None) -> tuple[float, str] | None:
    """(seconds to wait, why) for a rate-limit answer, by GitHub's rule: Retry-After when given, else until
    x-ratelimit-reset when x-ratelimit-remaining is 0, else (a 429, or a 403 whose `message` says so) at least
    a minute, longer each time. None for any other answer: a 403 without these is a refusal (a permission)."""
    if status not in (403, 429):
        return None
    lower = {key.lower(): value for key, value in headers.items()}
    if (after := lower.get("retry-after", "")).strip().isdigit():
        return float(after), "Retry-After"
    if lower.get("x-ratelimit-remaining") == "0" and (reset := lower.get("x-ratelimit-reset", "")).isdigit():
        return max(0.0, int(reset) - now) + 1, "x-ratelimit-reset"  # +1: the reset happens during that second
    if status == 429 or _says_secondary(message):
        return 60.0 * 2**attempt, "secondary rate limit"
    return None


def _says_secondary(message: str | None) -> bool:
    from github.Requester import Requester

    return bool(message) and Requester.isSecondaryRateLimitError(message)


class Patience(Retry):
    """urllib3's retry policy, as GitHub asks: rate limits waited out for any method (the request was not
    served), 5xx retried only where repeating the call changes nothing; at most `RETRIES` times, no single wait
    over `MAX_WAIT`. `sleep` and `clock` are injected so tests wait for nothing; each wait is said in the log."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 **kwargs: Any) -> None:
        kwargs.setdefault("total", RETRIES)
        kwargs.setdefault("allowed_methods", IDEMPOTENT)  # for read errors (a dropped connection)
        kwargs.setdefault("raise_on_status", False)  # out of retries: PyGithub raises on the last answer
        super().__init__(**kwargs)
        self._sleep, self._clock = sleep, clock
        self.wait: tuple[float, str] = (0.0, "")

    def new(self, **kwargs: Any) -> Patience:
        return super().new(sleep=self._sleep, clock=self._clock, **kwargs)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code in (403, 429) or status_code >= 500  # `increment` tells which may be sent again

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Patience:
        attempt, call = len(self.history), f"{method} {_path(url)}"
        refusal = None  # a 403 whose body was read: raised as PyGithub would, since the body is gone
        if response is not None and response.status in (403, 429):
            wait = rate_limit_wait(response.status, response.headers, self._clock(), attempt)
            if wait is None and response.status == 403:  # only its message tells a secondary limit
                refusal = _exception(response, url or "")
                message = refusal.data.get("message") if isinstance(refusal.data, dict) else None
                wait = rate_limit_wait(response.status, response.headers, self._clock(), attempt, message)
            if wait is None:  # a refusal, not a limit: answered as it came
                raise refusal or MaxRetryError(_pool, url or "", None)
            if wait[0] > MAX_WAIT:
                _say(f"GitHub's rate limit ({wait[1]}) lifts in {wait[0]:,.0f} s, more than the {MAX_WAIT:,.0f} s "
                     f"kiki-bot waits: giving up on {call}; run again later")
                raise refusal or MaxRetryError(_pool, url or "", None)
            seconds, why = wait[0], f"{response.status} ({wait[1]})"
        else:
            if response is not None and not idempotent(method or "", url or ""):
                raise MaxRetryError(_pool, url or "", None)  # it may have been done: never sent twice
            seconds, why = min(2.0**attempt, 60.0), f"{response.status}" if response is not None else repr(error)
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            _say(f"GitHub answered {why} to {call} {RETRIES + 1} times: giving up")
            if refusal is not None:
                raise refusal from None
            raise
        retry.wait = (seconds, f"GitHub answered {why} to {call}")
        return retry

    def sleep(self, response: Any = None) -> None:
        seconds, why = self.wait
        _say(f"{why}: waiting {seconds:,.0f} s before retry {len(self.history)} of {RETRIES}")
        self._sleep(seconds)


def _exception(response: Any, url: str) -> Exception:
    """The GithubException PyGithub makes of this answer, its body read (as PyGithub's own GithubRetry does)."""
    import json

    from github.GithubRetry import GithubRetry
    from github.Requester import Requester

    content = GithubRetry.get_content(response, url)
    try:
        data = json.loads(content)
    except ValueError:
        data = content.decode("utf-8", "replace")
    headers = {key.lower(): value for key, value in response.headers.items()}
    return Requester.createException(response.status, headers, data)


def idempotent(method: str, url: str) -> bool:
    """Whether sending the call twice does what sending it once does."""
    return method.upper() in IDEMPOTENT or (method.upper() == "POST" and _path(url).endswith(CONTENT_ADDRESSED))


def _path(url: str | None) -> str:
    return (url or "").split("?", 1)[0]


def _say(message: str) -> None:
    from kiki_bot.console import say

    say(message)
