"""The outside of the upstream checks: an opt-out list streamed over HTTP (requests), line by line, so a list of
any length never sits in memory. What cannot be had is an `unavailable` check, said why, never a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import requests

TIMEOUT = 60  # seconds to connect and between bytes: a stalled server ends the check, not the run


def _hub_errors() -> tuple[type[Exception], ...]:
    from huggingface_hub.errors import HfHubHTTPError

    return (HfHubHTTPError,)


UNAVAILABLE: tuple[type[Exception], ...] = (requests.RequestException, OSError, *_hub_errors())


def why(exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"HTTP {status}" if status else f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def url_lines(url: str) -> Iterator[bytes]:
    """The lines of the document at `url` (https, redirects followed), as they arrive."""
    with requests.get(url, stream=True, timeout=TIMEOUT, headers={"User-Agent": "kiki-bot"}) as response:
        response.raise_for_status()
        yield from response.iter_lines()


def missing_is_empty(read: Callable[[str, str, str], Iterator[bytes]], repo: str, revision: str,
                     name: str) -> Iterator[bytes]:
    """A dataset file the revision no longer has holds no rows (every row of it was removed)."""
    from huggingface_hub.errors import EntryNotFoundError

    try:
        yield from read(repo, revision, name)
    except EntryNotFoundError:
        return
