"""Reservations of rights from text and data mining (DSM Directive Art. 4(3)): what an answer means.

Pure: the shell (`kiki_bot.shells.optouts`) fetches; this module reads what came back — robots.txt groups,
TDMRep files, headers and meta tags, ai.txt, IETF AI-preference rules — and turns each into one evidence line
(DESIGN.md section 8). It also decides, from stored evidence, whether a record's origin host was reserved on
the day the record was collected, which is what the build refuses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kiki_bot.core.errors import BadInput
from kiki_bot.core.selectors import host_domain, origin_url

# The common AI crawlers whose robots.txt groups express a reservation against AI training.
AI_AGENTS = ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Applebot-Extended", "meta-externalagent",
             "Bytespider")
Signal = Literal["robots", "tdmrep-wellknown", "tdmrep-header", "tdmrep-meta", "x-robots-tag", "meta-robots",
                 "ai-txt", "content-usage-header", "content-usage-robots"]
SIGNALS: tuple[str, ...] = Signal.__args__  # type: ignore[attr-defined]
Verdict = Literal["reserved", "allowed", "unavailable"]
# robots.txt Disallow rules govern crawling a website; content fetched through an API (GitHub's REST API is
# not github.com's website) was not crawled from it. Every other signal reserves the content itself.
CRAWL_RULES = frozenset({"robots"})
# AI-preference categories from the most specific use (training a generative model, which fine-tuning an
# LLM is) to the broadest: the most specific one stated decides (IETF aipref vocabulary, both draft spellings).
_USAGE_CHAIN = (("train-genai", "genai"), ("train-ai", "ai"), ("bots", "tdm"))
_NOAI = ("noai", "noimageai")
ROBOTS_LIMIT = 500 * 1024  # RFC 9309: a crawler must parse at least the first 500 KiB


class Evidence(BaseModel):
    """One line of compliance/optouts/<source>.jsonl: one signal of one host as one check found it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checked_at: dt.datetime
    host: str
    signal: Signal
    url: str
    status: int | None
    sha256: str | None
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class Answer:
    """What one request brought back; `error` says why there is no answer (timeout, refused connection)."""

    url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    sha256: str | None = None
    error: str | None = None

    @property
    def failed(self) -> str | None:
        """Why this answer says nothing about a reservation: no answer, or a server error (5xx)."""
        if self.error is not None:
            return self.error
        if self.status is None or self.status >= 500 or self.status == 429:
            return f"HTTP {self.status}: the server did not answer the request"
        return None

    @property
    def found(self) -> bool:
        return self.failed is None and 200 <= (self.status or 0) < 300


def host_of(url: str | None) -> str | None:
    """The host an origin is checked on: its normalised authority (DESIGN.md section 3: lower-cased, the
    default port dropped, another port kept, so two servers of one machine are two hosts)."""
    parts = origin_url(url)
    return None if parts is None else parts.authority


def robots_token(user_agent: str) -> str:
    """The product token a robots.txt group names (`kiki-scraper` of `kiki-scraper/0.4 (+https://…)`)."""
    return re.split(r"[/\s]", user_agent.strip(), maxsplit=1)[0]


def _line(at: dt.datetime, host: str, signal: str, answer: Answer, verdict: str, detail: str) -> Evidence:
    return Evidence(checked_at=at, host=host, signal=signal, url=answer.url, status=answer.status,  # type: ignore[arg-type]
                    sha256=answer.sha256, verdict=verdict, detail=detail)  # type: ignore[arg-type]


def _text(answer: Answer, limit: int | None = None) -> str:
    return answer.body[:limit].decode("utf-8", errors="replace")


def _first(paths: list[str], blocked) -> tuple[int, str | None]:
    hits = [p for p in paths if blocked(p)]
    return len(hits), (hits[0] if hits else None)


def _share(n: int, paths: list[str], first: str | None) -> str:
    return f"{n} of {len(paths)} origin paths (first: {first})"


# ---------------------------------------------------------------- robots.txt and ai.txt
def robots(at: dt.datetime, host: str, answer: Answer, crawler: str, paths: list[str]) -> list[Evidence]:
    """One `robots` line per user agent (the crawler's own, then the AI crawlers) and the robots.txt
    `Content-Usage` rule: reserved when the group that agent obeys disallows an origin path."""
    from protego import Protego

    agents = [robots_token(crawler), *AI_AGENTS]
    if why := answer.failed:
        return [_line(at, host, "robots", answer, "unavailable", f"user agent {a}: {why}") for a in agents] + [
            _line(at, host, "content-usage-robots", answer, "unavailable", why)]
    if not answer.found:  # RFC 9309: a 4xx robots.txt means no rules
        return [_line(at, host, "robots", answer, "allowed", f"user agent {a}: no robots.txt (HTTP {answer.status})")
                for a in agents] + [_line(at, host, "content-usage-robots", answer, "allowed",
                                          f"no robots.txt (HTTP {answer.status})")]
    text = _text(answer, ROBOTS_LIMIT)
    parsed = Protego.parse(text)
    lines = []
    for agent in agents:
        n, first = _first(paths, lambda p, a=agent: not parsed.can_fetch(f"http://{host}{p}", a))
        lines.append(_line(at, host, "robots", answer, "reserved" if n else "allowed",
                           f"user agent {agent}: " + (f"disallowed for {_share(n, paths, first)}" if n else
                                                      f"allowed for all {len(paths)} origin paths")))
    return [*lines, content_usage_robots(at, host, answer, text, robots_token(crawler), paths)]


def ai_txt(at: dt.datetime, host: str, answer: Answer, paths: list[str]) -> Evidence:
    """ai.txt (robots.txt syntax, addressed to AI use): reserved when it disallows an origin path."""
    from protego import Protego

    if why := answer.failed:
        return _line(at, host, "ai-txt", answer, "unavailable", why)
    if not answer.found:
        return _line(at, host, "ai-txt", answer, "allowed", f"no ai.txt (HTTP {answer.status})")
    parsed = Protego.parse(_text(answer, ROBOTS_LIMIT))
    n, first = _first(paths, lambda p: not parsed.can_fetch(f"http://{host}{p}", "*"))
    return _line(at, host, "ai-txt", answer, "reserved" if n else "allowed",
                 f"disallows {_share(n, paths, first)}" if n else f"allows all {len(paths)} origin paths")


def usage_reserved(preferences: str) -> tuple[bool, str] | None:
    """(reserved, the deciding preference) of an AI-preference list such as `train-ai=n, search=y`; None when
    it says nothing about training a generative model."""
    prefs = {}
    for item in preferences.split(","):
        key, _, value = item.strip().partition("=")
        if key.strip():
            prefs[key.strip().lower()] = value.strip().strip('"').lower()
    for level in _USAGE_CHAIN:
        for key in level:
            if key in prefs and prefs[key] in ("y", "n"):
                return prefs[key] == "n", f"{key}={prefs[key]}"
    return None


def content_usage_robots(at: dt.datetime, host: str, answer: Answer, text: str, token: str,
                         paths: list[str]) -> Evidence:
    """`Content-Usage: [path] prefs` rules of the robots.txt groups for `*` or the crawler (IETF aipref): per
    origin path the rule with the longest matching path prefix decides."""
    rules: list[tuple[str, str]] = []
    agents: list[str] = []
    in_rules = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            agents = [] if in_rules else agents
            agents.append(value.lower())
            in_rules = False
        elif name:
            in_rules = True
            if name == "content-usage" and any(a in ("*", token.lower()) for a in agents):
                path, _, prefs = value.partition(" ") if value.startswith("/") else ("/", "", value)
                rules.append((path, prefs.strip()))
    if not rules:
        return _line(at, host, "content-usage-robots", answer, "allowed", "no Content-Usage rule")

    def reserved(p: str) -> bool:
        matching = [r for r in rules if p.startswith(r[0])]
        decided = usage_reserved(max(matching, key=lambda r: len(r[0]))[1]) if matching else None
        return bool(decided and decided[0])

    n, first = _first(paths, reserved)
    said = "; ".join(f"{p} {prefs}" for p, prefs in rules)
    return _line(at, host, "content-usage-robots", answer, "reserved" if n else "allowed",
                 f"Content-Usage {said}: " + (f"reserves {_share(n, paths, first)}" if n else "no reservation"))


# ---------------------------------------------------------------- TDMRep
def _location_matches(location: str, path: str) -> bool:
    """A TDMRep `location` pattern (robots.txt style: `*` any characters, `$` the end) against a path."""
    pattern = re.escape(location).replace(r"\*", ".*")
    pattern = pattern[:-2] + "$" if pattern.endswith(r"\$") else pattern
    return re.match(pattern, path) is not None


def tdmrep_wellknown(at: dt.datetime, host: str, answer: Answer, paths: list[str]) -> Evidence:
    """/.well-known/tdmrep.json: per origin path the first rule whose `location` matches decides."""
    if why := answer.failed:
        return _line(at, host, "tdmrep-wellknown", answer, "unavailable", why)
    if not answer.found:
        return _line(at, host, "tdmrep-wellknown", answer, "allowed", f"no tdmrep.json (HTTP {answer.status})")
    try:
        rules = json.loads(answer.body)
        if not isinstance(rules, list) or not all(isinstance(r, dict) and isinstance(r.get("location"), str)
                                                  for r in rules):
            raise ValueError("expected a JSON array of objects with a `location`")
    except ValueError as exc:
        return _line(at, host, "tdmrep-wellknown", answer, "unavailable", f"not a TDMRep file: {exc}")

    def rule(p: str) -> dict | None:
        return next((r for r in rules if _location_matches(r["location"], p)), None)

    n, first = _first(paths, lambda p: str((rule(p) or {}).get("tdm-reservation")) == "1")
    if not n:
        return _line(at, host, "tdmrep-wellknown", answer, "allowed", f"no reservation for any of {len(paths)} "
                     "origin paths")
    hit = rule(first or "/") or {}
    policy = f", tdm-policy {hit['tdm-policy']}" if hit.get("tdm-policy") else ""
    return _line(at, host, "tdmrep-wellknown", answer, "reserved",
                 f"tdm-reservation 1 for location {hit.get('location')}{policy}: {_share(n, paths, first)}")


class _Meta(HTMLParser):
    """The `<meta name=… content=…>` tags of a page, names lower-cased."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            a = {k.lower(): v or "" for k, v in attrs}
            if a.get("name"):
                self.meta.setdefault(a["name"].strip().lower(), a.get("content", ""))


def page(at: dt.datetime, host: str, answer: Answer) -> list[Evidence]:
    """The signals one page carries: TDMRep header and meta, X-Robots-Tag and meta robots `noai`/`noimageai`,
    the Content-Usage header."""
    signals = ("tdmrep-header", "tdmrep-meta", "x-robots-tag", "meta-robots", "content-usage-header")
    if why := answer.failed or (None if answer.found else f"HTTP {answer.status}: no page to read"):
        return [_line(at, host, s, answer, "unavailable", why) for s in signals]
    h = answer.headers
    parser = _Meta()
    if "html" in h.get("content-type", ""):
        parser.feed(_text(answer))
    meta = parser.meta

    def tdm(value: str | None, where: str, policy: str | None) -> tuple[str, str]:
        if value is None:
            return "allowed", f"no {where}"
        extra = f", tdm-policy {policy}" if policy else ""
        return ("reserved" if value.strip() == "1" else "allowed"), f"{where} {value.strip()}{extra}"

    def noai(value: str | None, where: str) -> tuple[str, str]:
        directives = {d.strip().rsplit(":", 1)[-1].strip().lower() for d in (value or "").split(",")}
        found = sorted(directives & set(_NOAI))
        if value is None:
            return "allowed", f"no {where}"
        return ("reserved", f"{where}: {', '.join(found)}") if found else ("allowed", f"{where}: {value.strip()}")

    usage = h.get("content-usage")
    decided = usage_reserved(usage) if usage is not None else None
    found = {
        "tdmrep-header": tdm(h.get("tdm-reservation"), "tdm-reservation header", h.get("tdm-policy")),
        "tdmrep-meta": tdm(meta.get("tdm-reservation"), "tdm-reservation meta tag", meta.get("tdm-policy")),
        "x-robots-tag": noai(h.get("x-robots-tag"), "X-Robots-Tag"),
        "meta-robots": noai(meta.get("robots"), "meta robots"),
        "content-usage-header": ("allowed", "no Content-Usage header") if usage is None else (
            ("reserved" if decided and decided[0] else "allowed"),
            f"Content-Usage {usage.strip()}" + (f" ({decided[1]} decides)" if decided else
                                                 " (says nothing about AI training)")),
    }
    return [_line(at, host, s, answer, *found[s]) for s in signals]


# ---------------------------------------------------------------- stored evidence and the decision
def parse(data: bytes, where: str) -> list[Evidence]:
    """Every line of an evidence file; a bad line is an error naming its line and key."""
    out = []
    for no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            out.append(Evidence.model_validate_json(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "line"
            raise BadInput(f"{where}:{no}: key `{key}`", f"{err['msg']} (expected one opt-out evidence object "
                           "of DESIGN.md section 8)") from None
    return out


def dumps(line: Evidence) -> str:
    return json.dumps(line.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass
class Reservations:
    """A source's stored evidence, by host and check, answering "was this host reserved on that day?"."""

    checks: dict[str, dict[dt.datetime, list[Evidence]]]
    applies: frozenset[str]

    @classmethod
    def of(cls, lines: Iterable[Evidence], through_api: bool) -> Reservations:
        checks: dict[str, dict[dt.datetime, list[Evidence]]] = {}
        for e in lines:
            checks.setdefault(e.host, {}).setdefault(e.checked_at, []).append(e)
        return cls(checks, frozenset(SIGNALS) - (CRAWL_RULES if through_api else frozenset()))

    def in_force(self, host: str, day: dt.date) -> list[Evidence]:
        """The check that tells the host's state on `day`: the last one made by then, else (all were made
        later) the first one, the nearest known state."""
        checks = self.checks.get(host)
        if not checks:
            return []
        times = sorted(checks)
        before = [t for t in times if t.date() <= day]
        return checks[before[-1] if before else times[0]]

    def reserved(self, host: str, day: dt.date) -> Evidence | None:
        """The evidence line that reserved `host` (an origin's `host_of`) on `day` for a signal that applies."""
        return next((e for e in self.in_force(host, day) if e.verdict == "reserved" and e.signal in self.applies),
                    None)

    @property
    def reserved_hosts(self) -> frozenset[str]:
        """The hosts reserved, for a signal that applies, by some check: only their records can be refused."""
        return frozenset(host for host, by_time in self.checks.items() for lines in by_time.values() for e in lines
                         if e.verdict == "reserved" and e.signal in self.applies)


def refusal(source: str, evidence: Evidence, day: dt.date, evidence_file: str) -> str:
    """The build's message for a record whose origin host was reserved when it was collected."""
    return (f"record of source {source} collected on {day.isoformat()} from {evidence.host}, which reserved "
            f"its rights from text and data mining ({evidence.signal}: {evidence.detail}; checked "
            f"{evidence.checked_at.date().isoformat()}, {evidence_file}): remove it from the data (for "
            "example with a removal request for its origin) before training")


@dataclass
class Facts:
    """What card section 3.1 states about opt-outs: each crawled source's stored evidence (None: the source has
    no evidence file) and the records the build refuses because their host was reserved when collected (in the
    eligibility rule's words)."""

    evidence: dict[str, list[Evidence] | None]
    through_api: dict[str, bool]
    refused: list[str] = field(default_factory=list)
    domains: dict[str, frozenset[str]] = field(default_factory=dict)  # registrable domains of the records used


def checked_signals(crawler_tokens: Iterable[str]) -> str:
    agents = ", ".join([*sorted(set(crawler_tokens)), *AI_AGENTS])
    return (f"robots.txt for the user agents {agents}; the TDM Reservation Protocol (/.well-known/tdmrep.json, "
            "the tdm-reservation header and meta tag); X-Robots-Tag and meta robots noai/noimageai; ai.txt; the "
            "IETF AI-preferences Content-Usage header and robots.txt rule")


def latest(lines: list[Evidence]) -> dict[str, list[Evidence]]:
    """Per host, the lines of its most recent check."""
    r = Reservations.of(lines, through_api=False)
    return {host: by_time[max(by_time)] for host, by_time in sorted(r.checks.items())}


def _why(lines: list[Evidence]) -> str:
    """The first reason a host gave no answer, without the user agent a robots line names."""
    return re.sub(r"^user agent [^:]+: ", "", lines[0].detail)


def _found(last: dict[str, list[Evidence]], applies: frozenset[str]) -> str:
    reserved = [e for lines in last.values() for e in lines if e.verdict == "reserved"]
    unavailable = [e for lines in last.values() for e in lines if e.verdict == "unavailable"]
    parts = []
    counted = [e for e in reserved if e.signal in applies]
    ignored = [e for e in reserved if e.signal not in applies]
    if counted:
        parts.append("reservations found: " + "; ".join(f"{e.host} ({e.signal}: {e.detail})" for e in counted))
    if ignored:
        parts.append("found but not applying to content fetched through an API: " + "; ".join(
            f"{e.host} ({e.signal}: {e.detail})" for e in ignored))
    if unavailable:
        by_host: dict[str, list[Evidence]] = {}
        for e in unavailable:
            by_host.setdefault(e.host, []).append(e)
        parts.append("unavailable, so neither reserved nor allowed: " + "; ".join(
            f"{f'all {len(es)}' if len(es) == len(last[h]) else f'{len(es)} of {len(last[h])}'} signals on {h} "
            f"({_why(es)})"
            for h, es in by_host.items()))
    return "; ".join(parts) if parts else "no reservation found"


UNCHECKED = "no opt-out check is recorded, so nothing is stated for its hosts"


def card_text(facts: Facts, crawler_tokens: Iterable[str], crawled_records: int) -> str:
    """Card section 3.1 on opt-outs: what was checked, when, over how many hosts, what was found, and how many
    records were excluded; for content fetched through an API, which signals apply and which do not."""
    sentences = [f"kiki-bot checks every origin host of each crawled source for reservations of rights (the "
                 f"command kiki-bot data check-optouts, which keeps each answer in compliance/optouts/, one file "
                 f"per source): {checked_signals(crawler_tokens)}."]
    said: dict[str, list[str]] = {}  # sources with the same finding share one sentence
    for sid, lines in sorted(facts.evidence.items()):
        if not lines:
            said.setdefault(UNCHECKED, []).append(sid)
            continue
        last = latest(lines)
        times = sorted({e.checked_at for e in lines})
        when = (f"checked on {times[0].date().isoformat()}" if len(times) == 1 else
                f"checked {len(times)} times from {times[0].date().isoformat()} to {times[-1].date().isoformat()}")
        applies = frozenset(SIGNALS) - (CRAWL_RULES if facts.through_api.get(sid) else frozenset())
        unchecked = sorted(facts.domains.get(sid, frozenset()) - {host_domain(e.host) for e in lines})
        gap = (f"; no check is recorded for its records from {', '.join(unchecked)}, so nothing is stated for them"
               if unchecked else "")
        said.setdefault(f"{when} over {len(last)} host{'s' * (len(last) != 1)} ({', '.join(last)}); latest "
                        f"check: {_found(last, applies)}{gap}", []).append(sid)
    for finding, sids in said.items():
        files = ", ".join(f"compliance/optouts/{sid}.jsonl" for sid in sids)
        sentences.append(f"{', '.join(sids)} ({files}): {finding}." if finding != UNCHECKED else
                         f"{', '.join(sids)}: {finding}.")
    api = sorted(s for s, yes in facts.through_api.items() if yes)
    if api:
        sentences.append(f"Content of {', '.join(api)} was fetched through an API, not crawled from the website: "
                         "robots.txt Disallow rules govern crawling a website (github.com's robots.txt does not "
                         "govern GitHub's REST API), so they do not apply to these records and are recorded for "
                         "information only; the other signals reserve the content itself, and apply.")
    sentences.append(f"A record whose origin host was reserved, for a signal that applies, on the day it was "
                     f"collected is refused at build like a licence outside the policy; an unavailable answer is "
                     f"not taken as a reservation. Records excluded for a reservation: {len(facts.refused):,} of "
                     f"{crawled_records:,} crawled records.")
    return " ".join(sentences)
