"""Asking origin hosts whether they reserved their rights from text and data mining, politely.

Polite by construction: every request carries the crawler's own user agent (from its source's `[crawler]`),
has a timeout, reads a bounded body, goes at most once a second to one host, and is asked once per run
(several sources on one host share the answers). What the answers mean is decided in `core.optouts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kiki_bot.core import optouts
from kiki_bot.core.optouts import Answer, Evidence

TIMEOUT = (5.0, 10.0)  # seconds to connect, and between bytes read
INTERVAL = 1.0  # seconds between two requests to one host
PAGE_LIMIT = 1024 * 1024  # a page's head holds its meta tags; the rest is not read


class Fetcher:
    """GET with the crawler's user agent, a per-host pace and a cache; `clock`/`sleep` are injectable so a
    test can check the pace without waiting."""

    def __init__(self, user_agent: str, timeout: tuple[float, float] = TIMEOUT, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 pace: dict[str, float] | None = None) -> None:
        import requests

        self.session = requests.Session()
        self.session.max_redirects = 5
        self.session.headers["User-Agent"] = user_agent
        self.user_agent, self.timeout, self.interval = user_agent, timeout, interval
        self.clock, self.sleep = clock, sleep
        self._last: dict[str, float] = {} if pace is None else pace  # host → when its last request started
        self._cache: dict[str, Answer] = {}
        self._down: dict[str, str] = {}  # host → why it gave no answer: it is not asked again this run

    def get(self, url: str, limit: int) -> Answer:
        if url not in self._cache:
            self._cache[url] = self._fetch(url, limit)
        return self._cache[url]

    def _pace(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None and (wait := last + self.interval - self.clock()) > 0:
            self.sleep(wait)
        self._last[host] = self.clock()

    def _fetch(self, url: str, limit: int) -> Answer:
        import requests

        host = optouts.host_of(url) or url
        if host in self._down:
            return Answer(url=url, error=f"not asked: {self._down[host]}")
        self._pace(host)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True, allow_redirects=True) as resp:
                body = resp.raw.read(limit, decode_content=True) or b""
                return Answer(url=url, status=resp.status_code, body=body,
                              headers={k.lower(): v for k, v in resp.headers.items()},
                              sha256=hashlib.sha256(body).hexdigest())
        except requests.RequestException as exc:
            why = _reason(exc, self.timeout[1])
            self._down[host] = f"{host} gave no answer earlier in this check: {why}"
            return Answer(url=url, error=why)


def _reason(exc: Exception, read_timeout: float) -> str:
    """Why a request got no answer, in a few words (requests' own text repeats the whole URL and pool)."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {read_timeout:g} s (timeout)"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "the host name did not resolve: no DNS answer"
    if "Connection refused" in text:
        return "connection refused"
    return f"request failed ({type(exc).__name__}): {(text.splitlines() or [''])[0][:200]}"


def check_host(fetcher: Fetcher, at: dt.datetime, host: str, sample: str, paths: list[str]) -> list[Evidence]:
    """Every signal of one host: robots.txt, tdmrep.json and ai.txt of the site, and one origin page of it."""
    base = f"{urlsplit(sample).scheme}://{host}"
    lines = optouts.robots(at, host, fetcher.get(f"{base}/robots.txt", optouts.ROBOTS_LIMIT), fetcher.user_agent,
                           paths)
    lines.append(optouts.tdmrep_wellknown(at, host, fetcher.get(f"{base}/.well-known/tdmrep.json", PAGE_LIMIT),
                                          paths))
    lines.append(optouts.ai_txt(at, host, fetcher.get(f"{base}/ai.txt", optouts.ROBOTS_LIMIT), paths))
    lines += optouts.page(at, host, fetcher.get(sample, PAGE_LIMIT))
    return lines


def check(project, source_ids: list[str], at: dt.datetime,
          fetcher: Callable[..., Fetcher] = Fetcher) -> dict[str, list[Evidence]]:
    """Check every origin host of each source; the evidence lines per source. `fetcher(user_agent, pace=…)`
    makes the fetcher of one crawler's user agent; all share one per-host pace."""
    from kiki_bot.repo.records import iter_source

    pace: dict[str, float] = {}
    fetchers: dict[str, Fetcher] = {}

    def made(agent: str) -> Fetcher:
        if agent not in fetchers:
            fetchers[agent] = fetcher(agent, pace=pace)
        return fetchers[agent]

    out: dict[str, list[Evidence]] = {}
    for sid in source_ids:
        source = project.sources[sid]
        hosts: dict[str, tuple[str, set[str]]] = {}
        for rec in iter_source(project.data_dir, sid):
            origin = rec.provenance.origin
            host = optouts.host_of(origin)
            if host is None:
                continue
            parts = urlsplit(origin)
            sample, paths = hosts.setdefault(host, (origin, set()))
            paths.add((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
            if origin < sample:
                hosts[host] = (origin, paths)
        f = made(source.crawler.name)
        out[sid] = [e for host, (sample, paths) in sorted(hosts.items())
                    for e in check_host(f, at, host, sample, sorted(paths))]
    return out


@dataclass
class Outcome:
    """A check's result: the new lines per source (none offline), the evidence files with them appended,
    every source's evidence after the check, and the records the build would refuse."""

    lines: dict[str, list[Evidence]]
    files: dict[Path, bytes]
    evidence: dict[str, list[Evidence] | None]
    refused: list[tuple[str, str]]


def run(project, source_ids: list[str], at: dt.datetime, offline: bool,
        fetcher: Callable[..., Fetcher] = Fetcher) -> Outcome:
    """Check the sources' hosts (or, offline, take the stored evidence as it is) and say what it means."""
    from kiki_bot.core.eligibility import Verdict
    from kiki_bot.repo import evidence, ledgerfile, trainset
    from kiki_bot.repo.records import iter_source

    lines = {} if offline else check(project, source_ids, at.replace(microsecond=0), fetcher)
    stored = {sid: evidence.load(project, sid) for sid in source_ids}
    after = {sid: ([*(stored[sid] or []), *lines[sid]] if sid in lines else stored[sid]) for sid in source_ids}
    rule = trainset.rule(project, ledgerfile.read(project.ledger_path), optouts=after)
    refused = [(err.where, err.problem) for sid in source_ids if rule.reserved_hosts(sid)
               for rec in iter_source(project.data_dir, sid) if rule.of_record(rec) is Verdict.RESERVED
               for err in [rule.refuse(rec, Verdict.RESERVED)]]
    return Outcome(lines, evidence.appended(project, lines), after, refused)
