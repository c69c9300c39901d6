"""Issue 18 end to end, with real training: a removal request opened as a Hub discussion and an upstream opt-out
list entry both reach the release without their records. The deadline run mirrors the one and files the other,
starts the retrain when it must, and publishing answers on the Hub and closes the discussion and the issues."""

from __future__ import annotations

import datetime as dt
import json

from test_hubsync import hub_answers, mirrors, steps
from test_release_flow import GH_REPO, handle, merged_event, tiny_base, tiny_project  # noqa: F401 (tiny_base: fixture)
from test_removal_flow import body, comment_event
from test_upstream import ListServer, optout

from factory import edit_toml, record
from kiki_bot.repo import ledgerfile, skeleton as scaffold
from kiki_bot.core.hubrequests import mirrored

TAG = "tiny-lora/v0.1.0"
HUB_REPO = "test-lab/tiny-lora"


def test_hub_and_upstream_requests_reach_a_release(gh, hub, cli, monkeypatch, tmp_path, tiny_base):  # noqa: F811
    lists = ListServer()
    owners = ["octo-dev"] * 3 + ["acme"] * 17
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}", repo=f"{o}/fw",
                   origin=f"https://github.com/{o}/fw/blob/main/src/f{i}.c") for i, o in enumerate(owners)]
    env = tiny_project(tmp_path / "repo", tiny_base, records={"acme-fw": recs})
    with open(env / "sources" / "acme-fw.toml", "a") as fh:
        fh.write(f'\n[[upstream.optout_lists]]\nname = "bigcode"\nurl = "{lists.url}"\n')
    edit_toml(env / "kiki.toml", "[policy]\n", '[policy]\nupstream_approval = "auto"\n')
    files = {str(p.relative_to(env)): p.read_bytes() for p in env.rglob("*") if p.is_file()}
    gh.create_repo(GH_REPO, files=files | {path: text.encode() for path, text in
                                           scaffold.caller_workflows(("a" * 40, "a pin")).items()})
    gh.set_permission(GH_REPO, "writer", "write")
    hub.create_repo(HUB_REPO)
    for name, value in (("KIKI_GITHUB_THROTTLE", "0"), ("KIKI_RUNS_DIR", str(tmp_path / "runs")),
                        ("GITHUB_REPOSITORY", GH_REPO)):
        monkeypatch.setenv(name, value)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    num = hub.open_discussion(HUB_REPO, "Removal request", body("https://github.com/acme/fw/blob/main/src/f5.c"),
                              "hf-rightsholder", created_at=start)
    lists.lines = [optout(owners=["Octo-Dev"])]
    try:
        # The scheduled run: the discussion is mirrored; the list entry is filed, approved by policy, purged.
        res = cli("schedule", "run", "--now", start.isoformat(), "-C", env)
        assert res.code == 0, res.err
        [mirror] = [i for i in mirrors(gh) if mirrored(i.body)]
        [upstream_issue] = [i for i in mirrors(gh) if i.number != mirror.number]
        assert steps(hub, num) == ["triaged"]
        entries = ledgerfile.read(env / "compliance" / "removals.jsonl")
        assert [(e.event, e.actor) for e in entries] == [("requested", "upstream:bigcode"),
                                                         ("approved", "upstream:bigcode"), ("purged", "upstream:bigcode")]
        # The maintainer approves the Hub request on GitHub; the Hub hears it at once.
        res = handle(cli, env, "issue_comment", comment_event(mirror.number, "/kiki approve", "writer",
                                                              issue_user="kiki-bot[bot]"))
        assert res.code == 0, res.err
        assert steps(hub, num) == ["triaged", "approved", "purged"]

        # Four weeks on, the deadline run starts the retrain that releases both.
        later = (start + dt.timedelta(days=28)).isoformat()
        assert cli("schedule", "run", "--now", later, "-C", env).code == 0
        [run] = [d for d in gh.dispatches(GH_REPO) if d.event == "workflow_dispatch"]
        assert run.payload == {"tag": TAG}
        res = cli("release", TAG, "-C", env)
        assert res.code == 0, res.err
        [review] = [p for p in gh.pulls(GH_REPO) if p.title == f"Release {TAG}"]
        from emulator_fixtures import github_client

        github_client().get_repo(GH_REPO).get_pull(review.number).merge(merge_method="squash")
        for name, data in gh.files(GH_REPO, "main").items():
            (env / name).parent.mkdir(parents=True, exist_ok=True)
            (env / name).write_bytes(data)
        res = handle(cli, env, "pull_request", merged_event(review.number, "kiki/release/tiny-lora/0.1.0"))
        assert res.code == 0, res.err

        released = {e.request.id for e in ledgerfile.read(env / "compliance" / "removals.jsonl") if e.event == "released"}
        assert released == {f"R-{mirror.number}", f"R-{upstream_issue.number}"}
        assert gh.issue(GH_REPO, mirror.number).state == gh.issue(GH_REPO, upstream_issue.number).state == "closed"
        assert steps(hub, num) == ["triaged", "approved", "purged", "released:tiny-lora:0.1.0", "closed"]
        assert hub.repo(HUB_REPO).discussions[num].status == "closed"
        assert "no longer contains these records" in hub_answers(hub, num)[3]
        assert cli("hub", "sync", "-C", env).code == 0  # nothing more to say
        assert len(hub_answers(hub, num)) == 5
        assert json.loads((env / "compliance/upstream/acme-fw.jsonl").read_text().splitlines()[0])["filed"] == \
            [f"R-{upstream_issue.number}"]
    finally:
        lists.server.stop()
