"""Opt-out evidence (issue 15 point 1): the checker over real HTTP against local servers, the evidence file
format of DESIGN.md section 8, the per-host pace on an injected clock, and the build's refusal."""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from factory import make_project, record, source
from kiki_bot.cli import main
from kiki_bot.core import optouts
from kiki_bot.core.optouts import Answer, Evidence, Facts, Reservations
from kiki_bot.demo.emulators.server import Server
from kiki_bot.repo.project import Project
from kiki_bot.repo import evidence
from kiki_bot.shells.optouts import Fetcher, run

AT = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
PAGE = "/docs/page.html"
HTML = b"<html><head><title>t</title></head><body>hello</body></html>"


class Clock:
    """Fake time: `sleep` moves it on, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Site:
    """One local web server: fixed answers per path (404 otherwise), every request logged with the fake time
    it arrived at; `hang` answers nothing until the test ends (a timeout), `status` answers every path with it."""

    def __init__(self, files: dict[str, tuple[int, dict[str, str], bytes]] | None = None, *, hang: bool = False,
                 status: int | None = None, clock: Clock | None = None) -> None:
        self.files = {PAGE: (200, {"Content-Type": "text/html"}, HTML), **(files or {})}
        self.hang, self.status, self.clock = hang, status, clock
        self.log: list[tuple[str, str, float | None]] = []
        self.release = threading.Event()
        self.server = Server(self.app)
        self.host = self.server.url.removeprefix("http://")

    def app(self, environ, start_response):
        req = Request(environ)
        self.log.append((req.path, req.headers.get("User-Agent", ""), self.clock() if self.clock else None))
        if self.hang:
            self.release.wait(30)
        if self.status is not None:
            return Response(b"oops", status=self.status)(environ, start_response)
        code, headers, body = self.files.get(req.path, (404, {}, b"not found"))
        return Response(body, status=code, headers=headers)(environ, start_response)

    def url(self, path: str = PAGE) -> str:
        return f"{self.server.url}{path}"

    def stop(self) -> None:
        self.release.set()
        self.server.stop()


@pytest.fixture
def sites(request):
    made: list[Site] = []

    def make(*args, **kwargs) -> Site:
        made.append(Site(*args, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.stop()


def project_on(tmp_path: Path, origins: dict[str, list[str]], access: str = "web",
               day: str = "2026-01-10") -> Project:
    """A project whose crawled sources' records come from `origins` (source id → origin URLs)."""
    srcs = {}
    for sid in origins:
        doc = source()
        doc["crawler"] = {**doc["crawler"], "access": access}
        srcs[sid] = doc
    records = {sid: [record(sid, i, f"int f{i}(void) {{ return {i}; }}", origin=o, repo=None, path=None,
                            access_date=day) for i, o in enumerate(urls * 6)] for sid, urls in origins.items()}
    return Project(make_project(tmp_path / "proj", sources=srcs, records=records))


def fetcher(clock: Clock, read_timeout: float = 0.5):
    return functools.partial(Fetcher, clock=clock, sleep=clock.sleep, timeout=(2.0, read_timeout))


def by_signal(lines: list[Evidence], host: str) -> dict[str, list[Evidence]]:
    out: dict[str, list[Evidence]] = {}
    for e in lines:
        if e.host == host:
            out.setdefault(e.signal, []).append(e)
    return out


def test_checker_over_http_records_each_signal_per_host(tmp_path, sites):
    clock = Clock()
    plain = sites(clock=clock)
    gptbot = sites({"/robots.txt": (200, {}, b"User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n")},
                   clock=clock)
    tdmrep = sites({"/.well-known/tdmrep.json": (200, {"Content-Type": "application/json"}, json.dumps(
        [{"location": "/docs/*", "tdm-reservation": 1, "tdm-policy": "https://pub.example/policy.json"}]).encode())},
        clock=clock)
    header = sites({PAGE: (200, {"Content-Type": "text/html", "tdm-reservation": "1"}, HTML)}, clock=clock)
    usage = sites({PAGE: (200, {"Content-Type": "text/html", "Content-Usage": "train-ai=n, search=y"}, HTML)},
                  clock=clock)
    slow = sites(hang=True, clock=clock)
    broken = sites(status=503, clock=clock)
    all_sites = [plain, gptbot, tdmrep, header, usage, slow, broken]
    proj = project_on(tmp_path, {"web": [s.url() for s in all_sites]})

    outcome = run(proj, ["web"], AT, offline=False, fetcher=fetcher(clock))
    lines = outcome.lines["web"]

    # every host got every signal, robots once per user agent: the crawler's own and each AI crawler
    for s in all_sites:
        got = by_signal(lines, s.host)
        assert set(got) == set(optouts.SIGNALS)
        assert [e.detail.split(":")[0] for e in got["robots"]] == [
            f"user agent {a}" for a in ("test-crawler", *optouts.AI_AGENTS)]
        assert all(e.checked_at == AT for es in got.values() for e in es)
    verdicts = {s.host: {sig: {e.verdict for e in es} for sig, es in by_signal(lines, s.host).items()}
                for s in all_sites}
    assert all(v == {"allowed"} for v in verdicts[plain.host].values())
    robots = by_signal(lines, gptbot.host)["robots"]
    assert [(e.detail.split(":")[0], e.verdict) for e in robots if e.verdict == "reserved"] == [
        ("user agent GPTBot", "reserved")]
    assert robots[0].status == 200 and robots[0].url == gptbot.url("/robots.txt") and len(robots[0].sha256) == 64
    [tdm] = by_signal(lines, tdmrep.host)["tdmrep-wellknown"]
    assert tdm.verdict == "reserved" and "https://pub.example/policy.json" in tdm.detail
    assert by_signal(lines, header.host)["tdmrep-header"][0].verdict == "reserved"
    [cu] = by_signal(lines, usage.host)["content-usage-header"]
    assert cu.verdict == "reserved" and "train-ai=n" in cu.detail
    for down, why in ((slow, "timeout"), (broken, "HTTP 503")):
        assert verdicts[down.host] == {sig: {"unavailable"} for sig in optouts.SIGNALS}
        assert all(why in e.detail or "not asked" in e.detail for e in lines if e.host == down.host)
        assert all(e.status in (None, 503) for e in lines if e.host == down.host)
    # a host that gave no answer is not asked again in the same check
    assert len(slow.log) == 1 and len(broken.log) == 4
    # each request named the crawler
    assert {ua for s in all_sites for _, ua, _ in s.log} == {"test-crawler/1.0"}

    # the evidence file is the lines of DESIGN.md section 8, one JSON object each
    Path_ = evidence.path(proj, "web")
    assert list(outcome.files) == [Path_]
    stored = [json.loads(x) for x in outcome.files[Path_].decode().splitlines()]
    assert len(stored) == len(lines)
    assert set(stored[0]) == {"checked_at", "host", "signal", "url", "status", "sha256", "verdict", "detail"}


def test_at_most_one_request_a_second_per_host_on_an_injected_clock(tmp_path, sites):
    clock = Clock()
    a, b = sites(clock=clock), sites(clock=clock)
    proj = project_on(tmp_path, {"web": [a.url(), b.url()]})
    run(proj, ["web"], AT, offline=False, fetcher=fetcher(clock))
    for s in (a, b):
        times = [t for _, _, t in s.log]
        assert len(times) == 4  # robots.txt, tdmrep.json, ai.txt, the page
        assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:]))
    # the host asked second was not held back by the first one's pace
    first, second = sorted((a, b), key=lambda s: s.log[0][2])
    assert second.log[0][2] == first.log[-1][2]
    assert clock.slept == [1.0] * 6


def test_sources_sharing_a_host_ask_it_once(tmp_path, sites):
    clock = Clock()
    shared = sites({"/robots.txt": (200, {}, b"User-agent: CCBot\nDisallow: /docs/\n")}, clock=clock)
    proj = project_on(tmp_path, {"one": [shared.url()], "two": [shared.url()]})
    outcome = run(proj, ["one", "two"], AT, offline=False, fetcher=fetcher(clock))
    assert [p for p, _, _ in shared.log].count("/robots.txt") == 1
    assert len(shared.log) == 4
    assert outcome.lines["one"] == outcome.lines["two"]


def test_reserved_host_refuses_its_records_at_build_and_cli_exit_1(tmp_path, sites, capsys, streaming):
    """Reserved is decided once, by the eligibility rule `trainset.rule` builds from the stored evidence: the
    check, the training set, the card's figures (through the index or streamed), card check and card render
    refuse the same records in the same words. Both sites run on one machine: the host is the authority,
    port included, so the other site's records are not refused."""
    clock = Clock()
    header = sites({PAGE: (200, {"Content-Type": "text/html", "tdm-reservation": "1"}, HTML)}, clock=clock)
    plain = sites(clock=clock)
    proj = project_on(tmp_path, {"web": [header.url(), plain.url()]})
    outcome = run(proj, ["web"], AT, offline=False, fetcher=fetcher(clock))
    assert len(outcome.refused) == 6  # the records from the reserved host, none from the other one
    assert all(header.host in why and "tdmrep-header" in why for _, why in outcome.refused)
    for path, data in outcome.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    from kiki_bot.core.errors import BadInput
    from kiki_bot.repo import figures, ledgerfile, trainset

    said = [f"{where}: {why}" for where, why in outcome.refused]
    rule = trainset.rule(proj, ledgerfile.read(proj.ledger_path))
    with pytest.raises(BadInput) as exc:
        trainset.assemble(proj, proj.adapter("tiny-lora"), tmp_path / "out", rule)
    assert exc.value.lines == said and "part-000.jsonl:1" in said[0] and "reserved its rights" in said[0]
    assert not (tmp_path / "out" / "train.jsonl").exists()
    figs = figures.compute(proj, proj.adapter("tiny-lora"), rule)
    with streaming():
        assert figures.compute(proj, proj.adapter("tiny-lora"), rule) == figs
    assert figs.reserved == said and figs.refused == []

    asked = len(header.log) + len(plain.log)
    with pytest.raises(SystemExit) as code:
        main(["data", "check-optouts", "--offline", "--json", "-C", str(proj.root)])
    assert code.value.code == 1
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["refused"]) == 6 and doc["sources"]["web"]["checked"] == 0
    assert {e["signal"] for e in doc["sources"]["web"]["reserved"]} == {"tdmrep-header"}
    assert len(header.log) + len(plain.log) == asked  # offline: the stored evidence, no request

    with pytest.raises(SystemExit) as code:
        main(["card", "check", "--json", "-C", str(proj.root)])
    assert code.value.code == 1
    assert json.loads(capsys.readouterr().out)["tiny-lora"]["reserved"] == said

    with pytest.raises(SystemExit) as code:
        main(["card", "render", "-C", str(proj.root)])
    assert code.value.code == 2
    assert "reserved its rights" in capsys.readouterr().err


def test_robots_rules_do_not_apply_to_content_fetched_through_an_api(tmp_path, sites):
    clock = Clock()
    robots = sites({"/robots.txt": (200, {}, b"User-agent: *\nDisallow: /\n")}, clock=clock)
    proj = project_on(tmp_path, {"api": [robots.url()]}, access="api")
    outcome = run(proj, ["api"], AT, offline=False, fetcher=fetcher(clock))
    assert {e.verdict for e in outcome.lines["api"] if e.signal == "robots"} == {"reserved"}
    assert outcome.refused == []


def test_the_check_in_force_on_the_collection_day_decides():
    def line(day: int, verdict: str) -> Evidence:
        return Evidence(checked_at=dt.datetime(2026, 1, day, tzinfo=dt.UTC), host="pub.example",
                        signal="tdmrep-header", url="https://pub.example/a", status=200, sha256=None,
                        verdict=verdict, detail="d")

    rules = Reservations.of([line(5, "allowed"), line(20, "reserved")], through_api=False)
    host = optouts.host_of("https://pub.example/a")
    assert rules.reserved(host, dt.date(2026, 1, 1)) is None  # before any check: the first one stands in
    assert rules.reserved(host, dt.date(2026, 1, 10)) is None  # reserved only later
    assert rules.reserved(host, dt.date(2026, 1, 25)).verdict == "reserved"
    assert rules.reserved("other.example", dt.date(2026, 1, 25)) is None


@pytest.mark.parametrize(("prefs", "reserved"), [
    ("train-ai=n", True), ("train-ai=y", False), ("search=n", None), ("train-ai=n, train-genai=y", False),
    ("bots=n", True), ("genai=n", True), ("tdm=n, ai=y", False)])
def test_ai_preferences_most_specific_category_decides(prefs, reserved):
    decided = optouts.usage_reserved(prefs)
    assert (decided[0] if decided else None) is reserved


def test_robots_content_usage_rule_and_meta_tags():
    robots_txt = b"User-agent: *\nAllow: /\nContent-Usage: train-ai=y\nContent-Usage: /docs/ train-ai=n\n"
    ans = Answer(url="https://pub.example/robots.txt", status=200, body=robots_txt, sha256="0" * 64)
    lines = optouts.robots(AT, "pub.example", ans, "kiki/1.0", ["/docs/a", "/blog/b"])
    [cu] = [e for e in lines if e.signal == "content-usage-robots"]
    assert cu.verdict == "reserved" and "1 of 2 origin paths (first: /docs/a)" in cu.detail
    page = Answer(url="https://pub.example/a", status=200, headers={"content-type": "text/html",
                                                                    "x-robots-tag": "otherbot: noai"},
                  body=b'<head><meta name="robots" content="index, noimageai">'
                       b'<meta name="tdm-reservation" content="1"></head>', sha256="0" * 64)
    got = {e.signal: e.verdict for e in optouts.page(AT, "pub.example", page)}
    assert got == {"tdmrep-header": "allowed", "tdmrep-meta": "reserved", "x-robots-tag": "reserved",
                   "meta-robots": "reserved", "content-usage-header": "allowed"}


def test_card_text_says_what_was_checked_when_found_and_excluded():
    line = Evidence(checked_at=AT, host="github.com", signal="robots", url="https://github.com/robots.txt",
                    status=None, sha256=None, verdict="unavailable", detail="user agent x: no answer (timeout)")
    text = optouts.card_text(Facts({"esp": [line], "new": None}, {"esp": True, "new": False}), ["kiki"], 1350)
    assert "esp (compliance/optouts/esp.jsonl): checked on 2026-01-05 over 1 host (github.com)" in text
    assert "unavailable, so neither reserved nor allowed: all 1 signals on github.com (no answer" in text
    assert "new: no opt-out check is recorded" in text
    assert "Content of esp was fetched through an API" in text
    assert "Records excluded for a reservation: 0 of 1,350 crawled records." in text


def test_bad_evidence_line_is_exit_2_naming_file_line_and_key(tmp_path, capsys):
    proj = project_on(tmp_path, {"web": ["https://pub.example/a"]})
    p = evidence.path(proj, "web")
    p.parent.mkdir(parents=True)
    p.write_text('{"checked_at": "2026-01-05T09:00:00Z", "host": "pub.example", "signal": "robots", '
                 '"url": "https://pub.example/robots.txt", "status": 200, "sha256": null, "verdict": "maybe", '
                 '"detail": ""}\n')
    with pytest.raises(SystemExit) as code:
        main(["data", "check-optouts", "--offline", "-C", str(proj.root)])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert "compliance/optouts/web.jsonl:1: key `verdict`" in err and "Traceback" not in err


def test_a_source_that_is_not_crawled_is_bad_input(tmp_path, capsys):
    proj = Project(make_project(tmp_path / "p", sources={"ds": source("2.1")}))
    with pytest.raises(SystemExit) as code:
        main(["data", "check-optouts", "ds", "--offline", "-C", str(proj.root)])
    assert code.value.code == 2
    assert "not a crawled source (category 2.1)" in capsys.readouterr().err


def test_release_asks_the_hosts_and_refuses_records_of_a_reserved_one(gh, hub, tmp_path, monkeypatch, sites, cli):
    from test_release_flow import GH_REPO, handle, push_event, tiny_project, writes

    site = sites({PAGE: (200, {"Content-Type": "text/html", "X-Robots-Tag": "noai"}, HTML)})
    records = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}", origin=site.url(), repo=None, path=None)
               for i in range(20)]
    base = tmp_path / "base"  # refused before training: the base is never read
    base.mkdir()
    (base / "config.json").write_text("{}")
    root = tiny_project(tmp_path / "repo", base, records={"acme-fw": records})
    gh.create_repo(GH_REPO, files={str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()})
    for name, value in (("KIKI_GITHUB_THROTTLE", "0"), ("KIKI_RUNS_DIR", str(tmp_path / "runs")),
                        ("GITHUB_REPOSITORY", GH_REPO), ("KIKI_OPTOUTS_OFFLINE", "0")):
        monkeypatch.setenv(name, value)

    result = handle(cli, root, "push", push_event("tiny-lora/v0.1.0"))
    assert result.code == 2, result.err
    assert "reserved its rights" in result.err and "x-robots-tag: X-Robots-Tag: noai" in result.err
    assert "Traceback" not in result.err
    assert [(p, ua) for p, ua, _ in site.log] == [(p, "test-crawler/1.0") for p in (
        "/robots.txt", "/.well-known/tdmrep.json", "/ai.txt", PAGE)]
    stored = optouts.parse((root / "compliance" / "optouts" / "acme-fw.jsonl").read_bytes(), "evidence")
    assert {e.signal for e in stored if e.verdict == "reserved"} == {"x-robots-tag"}
    assert writes(gh) == [] and writes(hub) == []  # refused before anything is staged
