"""Issue 18, points 2 and 3: upstream opt-out lists (BigCode's format, served by a local HTTP server or a Hub
dataset) and upstream dataset revisions become removal requests the bot files itself, approved by policy."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import pytest
import tomli_w
from factory import KIKI, adapter, make_project, record, source
from test_removal_flow import GH_REPO, bot_comments, labels

from kiki_bot.repo import ledgerfile
from kiki_bot.core.canonical import canonical_json
from kiki_bot.demo.emulators import serve
from kiki_bot.repo.records import iter_source

OWNERS = ["octo-dev"] * 4 + ["acme"] * 12 + ["third"] * 4


class ListServer:
    """A local HTTP server for an upstream list: serves `lines` (or fails with `status`), and counts requests."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.status = 200
        self.server = serve(self)

    def __call__(self, environ, start_response):
        if self.status != 200:
            start_response(f"{self.status} Error", [("Content-Type", "text/plain")])
            return [b"down"]
        start_response("200 OK", [("Content-Type", "application/jsonl")])
        return iter([line + b"\n" for line in self.lines])  # chunk by chunk, as a real server streams

    @property
    def url(self) -> str:
        return f"{self.server.url}/data/optouts.jsonl"


@pytest.fixture
def lists():
    server = ListServer()
    yield server
    server.server.stop()


def optout(owners=(), repos=(), issue=1) -> bytes:
    return json.dumps({"issue": issue, "author": "someone", "optout_repos": list(repos),
                       "optout_owners": list(owners)}).encode()


def upstream_project(tmp_path, upstream: dict, approval: str = "maintainer", records=None):
    kiki = json.loads(json.dumps(KIKI))
    kiki["policy"]["upstream_approval"] = approval
    recs = records or [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}",
                              origin=f"https://github.com/{o}/fw/blob/main/src/f{i}.c", repo=f"{o}/fw",
                              path=f"src/f{i}.c") for i, o in enumerate(OWNERS)]
    return make_project(tmp_path / "repo", kiki=kiki, sources={"acme-fw": source(upstream=upstream)},
                        records={"acme-fw": recs}, adapters={"tiny-lora": adapter(["acme-fw"])})


@pytest.fixture
def on_github(gh, hub, monkeypatch):
    def put(project):
        gh.create_repo(GH_REPO, files={str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*")
                                       if p.is_file()})
        monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
        monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
        return project
    return put


def bot_issues(gh):
    return [i for i in gh.repos[GH_REPO].issues.values() if i.pull is None and i.user == "kiki-bot[bot]"]


def evidence(project) -> list[dict]:
    path = project / "compliance" / "upstream" / "acme-fw.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_upstream_opt_out_is_filed_once_and_waits_for_a_maintainer(tmp_path, lists, on_github, gh, cli):
    env = on_github(upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": lists.url}]}))
    lists.lines = [optout(owners=["Octo-Dev"]), optout(repos=["ACME/FW"], owners=["someone-else"]),
                   optout(repos=["nobody/fw"]), b"", b"not json <b>@x</b>", b"[1]", optout(owners=[3])]
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    [issue] = bot_issues(gh)
    [comment] = bot_comments(gh, issue.number)
    assert "| `https://github.com/acme/fw` | 12 |" in comment.body and "| `https://github.com/octo-dev` | 4 |" in comment.body
    assert labels(gh, issue.number) == {"removal-request", "awaiting-approval"}
    assert not (env / "compliance" / "removals.jsonl").exists()  # a maintainer decides
    [check] = evidence(env)
    assert (check["name"], check["status"], check["lines"], check["matched"], check["filed"]) == \
        ("bigcode", "ok", 7, 2, [f"R-{issue.number}"])
    assert check["bad_lines"] == 3 and check["problems"][0] == "line 5: not valid JSON"
    assert "<b>" not in json.dumps(check)  # bad lines are named by number, never quoted
    assert gh.files(GH_REPO, "main")["compliance/upstream/acme-fw.jsonl"] == \
        (env / "compliance/upstream/acme-fw.jsonl").read_bytes()

    assert cli("hub", "sync", "-C", env).code == 0  # the same list again: nothing new is filed or recorded
    assert len(bot_issues(gh)) == 1 and len(evidence(env)) == 1
    lists.lines.append(optout(owners=["third"], issue=9))  # the list grew: only what is new is filed
    assert cli("hub", "sync", "-C", env).code == 0
    first, second = sorted(bot_issues(gh), key=lambda i: i.number)
    assert "third" in second.body and "octo-dev" not in second.body and len(evidence(env)) == 2


def test_auto_approval_purges_as_the_upstream_list(tmp_path, lists, on_github, gh, cli):
    env = on_github(upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": lists.url}]}, "auto"))
    lists.lines = [optout(owners=["OCTO-DEV"])]
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert [(e.event, e.actor) for e in entries] == [("requested", "upstream:bigcode"), ("approved", "upstream:bigcode"),
                                                     ("purged", "upstream:bigcode")]
    assert len(entries[2].records) == 4 and entries[0].deadline == entries[0].at + __import__("datetime").timedelta(30)
    assert {r.provenance.repo for r in iter_source(env / "data", "acme-fw")} == {"acme/fw", "third/fw"}
    [issue] = bot_issues(gh)
    assert labels(gh, issue.number) == {"removal-request", "purged", "retrain-scheduled"}
    assert cli("hub", "sync", "-C", env).code == 0  # the purged records are gone: nothing matches any more
    assert len(bot_issues(gh)) == 1 and len(ledgerfile.read(env / "compliance" / "removals.jsonl")) == 3


def test_without_a_repository_the_request_is_filed_privately(tmp_path, lists, cli, monkeypatch):
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    env = upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": lists.url}]})
    lists.lines = [optout(owners=["octo-dev"])]
    assert cli("hub", "sync", "-C", env).code == 0
    [entry] = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert (entry.event, entry.actor, entry.selectors) == ("requested", "upstream:bigcode", ["https://github.com/octo-dev"])
    assert cli("hub", "sync", "-C", env).code == 0
    assert len(ledgerfile.read(env / "compliance" / "removals.jsonl")) == 1


def test_an_unavailable_list_is_recorded_and_the_run_goes_on(tmp_path, lists, on_github, gh, cli):
    env = on_github(upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": lists.url}]}))
    lists.status = 503
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    assert "upstream bigcode unavailable: HTTP 503" in res.err
    [check] = evidence(env)
    assert (check["status"], check["detail"], check["filed"]) == ("unavailable", "HTTP 503", [])
    assert bot_issues(gh) == []


def test_a_list_in_a_hub_dataset(tmp_path, on_github, gh, hub, cli):
    hub.create_repo("bigcode-project/opt-out-v2", "dataset",
                    files={"data/optouts.jsonl": optout(owners=["acme"]) + b"\n"})
    upstream = {"optout_lists": [{"name": "bigcode", "hub_dataset": "bigcode-project/opt-out-v2",
                                  "file": "data/optouts.jsonl"}]}
    env = on_github(upstream_project(tmp_path, upstream))
    assert cli("hub", "sync", "-C", env).code == 0
    [issue] = bot_issues(gh)
    assert "| `https://github.com/acme` | 12 |" in bot_comments(gh, issue.number)[0].body
    assert evidence(env)[0]["where"] == "hf:datasets/bigcode-project/opt-out-v2/data/optouts.jsonl@main"


def _row(i: int) -> dict:
    return {"commit": f"c{i}", "new_contents": f"int f{i}(void) {{ return {i}; }}"}


def test_rows_removed_upstream_become_a_request(tmp_path, on_github, gh, hub, cli):
    rows = [_row(i) for i in range(6)]
    repo = hub.create_repo("bigcode/commitpackft", "dataset",
                           files={"data/c.jsonl": b"".join(canonical_json(r) + b"\n" for r in rows)})
    pinned = repo.branches["main"]
    recs = [record("acme-fw", i, rows[i]["new_contents"],
                   sha256=hashlib.sha256(rows[i]["new_contents"].encode()).hexdigest()) for i in range(6)]
    upstream = {"dataset": {"name": "commitpackft", "repo": "bigcode/commitpackft", "revision": pinned,
                            "files": ["data/c.jsonl"], "content_field": "new_contents"}}
    env = on_github(upstream_project(tmp_path, upstream, "auto", records=recs))
    assert cli("hub", "sync", "-C", env).code == 0  # the pinned revision is the newest: nothing to do
    assert bot_issues(gh) == [] and evidence(env)[0]["newest"] == pinned
    kept = [r for i, r in enumerate(rows) if i not in (2, 4)]
    repo.push({"data/c.jsonl": b"".join(canonical_json(r) + b"\n" for r in kept)}, "Honour opt-outs")
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    [issue] = bot_issues(gh)
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert [e.actor for e in entries] == ["upstream:commitpackft"] * 3
    assert sorted(entries[0].selectors) == sorted(f"sha256:{recs[i]['_provenance']['sha256']}" for i in (2, 4))
    assert sorted(idx for _, idx, _ in entries[2].records) == [2, 4]
    last = evidence(env)[-1]
    assert (last["revision"], last["newest"], last["matched"]) == (pinned, repo.branches["main"], 2)


def test_rows_removed_upstream_are_matched_by_their_upstream_id_when_the_records_keep_it(tmp_path, on_github, gh,
                                                                                        hub, cli):
    """With `id_field` naming the dataset's id column and records keeping it as `_provenance.upstream_id`, a row
    upstream removed is the one whose id is gone: a row upstream edited keeps its id and is not a removal (by
    content hash it would look removed). A record without an id is still matched by its content hash."""
    rows = [{"id": f"row-{i}", **_row(i)} for i in range(6)]
    repo = hub.create_repo("bigcode/commitpackft", "dataset",
                           files={"data/c.jsonl": b"".join(canonical_json(r) + b"\n" for r in rows)})
    pinned = repo.branches["main"]
    recs = [record("acme-fw", i, rows[i]["new_contents"], upstream_id=None if i == 5 else rows[i]["id"],
                   sha256=hashlib.sha256(rows[i]["new_contents"].encode()).hexdigest()) for i in range(6)]
    upstream = {"dataset": {"name": "commitpackft", "repo": "bigcode/commitpackft", "revision": pinned,
                            "files": ["data/c.jsonl"], "content_field": "new_contents", "id_field": "id"}}
    env = on_github(upstream_project(tmp_path, upstream, "auto", records=recs))
    edited = {**rows[4], "new_contents": "int f4(void) { return 44; }"}  # reformatted upstream, same row
    kept = [edited if i == 4 else r for i, r in enumerate(rows) if i not in (2, 5)]
    repo.push({"data/c.jsonl": b"".join(canonical_json(r) + b"\n" for r in kept)}, "Honour opt-outs")
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
    assert sorted(entries[0].selectors) == ["record:acme-fw#2", f"sha256:{recs[5]['_provenance']['sha256']}"]
    assert sorted(idx for _, idx, _ in entries[2].records) == [2, 5]
    assert evidence(env)[-1]["matched"] == 2


def test_upstream_config_is_validated(tmp_path, cli):
    env = upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": "https://x.example/l.jsonl",
                                                        "hub_dataset": "a/b", "file": "l.jsonl"}]})
    res = cli("hub", "sync", "-C", env)
    assert res.code == 2 and "sources/acme-fw.toml" in res.err and "upstream" in res.err
    assert "give exactly one of `url` or `hub_dataset`" in res.err and "Traceback" not in res.err


def _peak(lines: int) -> int:
    from kiki_bot.core import upstream

    ids = upstream.Identities(frozenset({"octo-dev"}), frozenset({"acme/fw"}))
    stream = (optout(owners=[f"owner-{i}"], repos=[f"owner-{i}/r{i}", "acme/fw"], issue=i) for i in range(lines))
    tracemalloc.start()
    try:
        scan = upstream.scan_optouts(stream, ids)
        return tracemalloc.get_traced_memory()[1] if scan.lines == lines and scan.matched == {"acme/fw"} else -1
    finally:
        tracemalloc.stop()


def test_a_long_list_is_processed_in_flat_memory():
    small, large = _peak(10_000), _peak(100_000)
    assert small > 0 and large > 0
    assert large < 1.5 * small  # ten times the lines, not ten times the memory


def test_card_states_what_is_followed_and_when_it_was_last_checked(tmp_path, lists, on_github, gh, cli):
    import datetime as dt

    from rendering import visible

    env = on_github(upstream_project(tmp_path, {"optout_lists": [{"name": "bigcode", "url": lists.url}]}))
    today = dt.datetime.now(dt.UTC).date()
    lists.lines = [optout(owners=["nobody"])]
    assert cli("card", "render", "-C", env, "--version", "0.1.0", "--date", today.isoformat()).code == 0
    text = visible((env / "cards" / "tiny-lora" / "README.md").read_text())
    assert f"source acme-fw follows the opt-out list bigcode ({lists.url}), not checked yet." in text
    assert cli("hub", "sync", "-C", env).code == 0
    assert cli("card", "render", "-C", env, "--version", "0.1.0", "--date", today.isoformat()).code == 0
    text = visible((env / "cards" / "tiny-lora" / "README.md").read_text())
    assert f"source acme-fw follows the opt-out list bigcode ({lists.url}), last checked {today}." in text
    yesterday = (today - dt.timedelta(days=1)).isoformat()  # a version rendered before the check does not claim it
    assert cli("card", "render", "-C", env, "--version", "0.1.0", "--date", yesterday).code == 0
    assert "not checked yet" in visible((env / "cards" / "tiny-lora" / "README.md").read_text())
