"""Issue 18, point 1: removal requests opened as Hub Community discussions. huggingface_hub's discussion API talks
to the Hub emulator, PyGithub to the GitHub emulator; the discussion is mirrored to a removal issue, triaged,
decided there, and answered on the Hub at each step, once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from factory import adapter, make_project, record, source
from test_removal_flow import GH_REPO, bot_comments, body, comment_event, handle, labels

from kiki_bot.removal import STORED, Triaged
from kiki_bot.repo import ledgerfile

HUB_REPO = "test-lab/tiny-lora"
OPENED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def env(gh, hub, monkeypatch, tmp_path):
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}",
                   origin=f"https://github.com/{owner}/fw/blob/main/src/f{i}.c", repo=f"{owner}/fw", path=f"src/f{i}.c")
            for i, owner in enumerate(["octo-dev"] * 4 + ["acme"] * 16)]
    project = make_project(tmp_path / "repo", sources={"acme-fw": source()}, records={"acme-fw": recs},
                           adapters={"tiny-lora": adapter(["acme-fw"])})
    gh.create_repo(GH_REPO, files={str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*")
                                   if p.is_file()})
    gh.set_permission(GH_REPO, "writer", "write")
    hub.create_repo(HUB_REPO)
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def hub_answers(hub, num: int) -> list[str]:
    return [e["data"]["latest"]["raw"] for e in hub.repo(HUB_REPO).discussions[num].events
            if e["type"] == "comment" and e["author"]["name"] == hub.user]


def steps(hub, num: int) -> list[str]:
    return [text.split(" -->")[0].removeprefix("<!-- kiki-bot:hub:") for text in hub_answers(hub, num)]


def mirrors(gh) -> list:
    return [i for i in gh.repos[GH_REPO].issues.values() if i.pull is None and i.user == "kiki-bot[bot]"]


def webhook(num: int, scope: str = "discussion.comment", action: str = "create", pr: bool = False) -> dict:
    """A Hub webhook delivery (version 3) as the Hub docs show it: ids only, no usernames, no text."""
    web = f"https://huggingface.co/{HUB_REPO}"
    return {"event": {"action": action, "scope": scope},
            "repo": {"type": "model", "name": HUB_REPO, "id": "621ffdc0", "private": False,
                     "url": {"web": web, "api": f"https://huggingface.co/api/models/{HUB_REPO}"}, "owner": {"id": "6"}},
            "discussion": {"id": "6399f585", "num": num, "title": "x", "status": "open", "isPullRequest": pr,
                           "author": {"id": "61d2f90c"}, "url": {"web": f"{web}/discussions/{num}"}},
            "comment": {"id": "6399f585caa", "author": {"id": "61d2f90c"}, "content": "x", "hidden": False,
                        "url": {"web": f"{web}/discussions/{num}#6399f585caa"}},
            "webhook": {"id": "6390e855", "version": 3}}


def test_a_hub_discussion_becomes_a_removal_issue_answered_on_the_hub_at_each_step(env, gh, hub, cli):
    num = hub.open_discussion(HUB_REPO, "Please remove my code", body("acme/fw"), "hf-rightsholder",
                              created_at=OPENED)
    hub.open_discussion(HUB_REPO, "Great adapter!", "Thanks for sharing.", "fan")  # not a request: left alone
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    [issue] = mirrors(gh)
    assert "removal-request" in issue.labels and "**hf&#8203;-rightsholder**" not in issue.body
    assert "Filed on the Hugging Face Hub by **hf-rightsholder**" in issue.body
    assert "acme/fw" in issue.body and labels(gh, issue.number) == {"removal-request", "awaiting-approval"}
    [triage] = bot_comments(gh, issue.number)
    assert "| 1 | `acme/fw` | `https://github.com/acme/fw` | 16 |" in triage.body
    assert "**2026-03-31 10:00** (UTC)" in triage.body  # the deadline runs from the Hub discussion's opening
    assert steps(hub, num) == ["triaged"]
    assert f"/issues/{issue.number} (request R-{issue.number})" in hub_answers(hub, num)[0]
    assert "kiki-bot:request:" not in hub_answers(hub, num)[0]  # the stored request stays on GitHub

    before = len(hub.requests), [c.body for c in gh.comments(GH_REPO, issue.number)]
    assert cli("hub", "sync", "-C", env).code == 0  # idempotent: nothing new to say
    assert len(mirrors(gh)) == 1 and len(hub_answers(hub, num)) == 1
    assert [c.body for c in gh.comments(GH_REPO, issue.number)] == before[1]

    # A maintainer approves on GitHub: the purge job answers on the Hub at once.
    res = handle(cli, env, "issue_comment", comment_event(issue.number, "/kiki approve", "writer",
                                                          issue_user="kiki-bot[bot]"))
    assert res.code == 0, res.err
    assert [e.event for e in ledgerfile.read(env / "compliance" / "removals.jsonl")] == ["requested", "approved", "purged"]
    assert steps(hub, num) == ["triaged", "approved", "purged"]
    assert "The 16 records it matched were removed" in hub_answers(hub, num)[2]
    assert cli("hub", "sync", "-C", env).code == 0
    assert steps(hub, num) == ["triaged", "approved", "purged"]  # once each
    assert hub.repo(HUB_REPO).discussions[num].status == "open"

    # The review PR of a retrain merged (its `released` entry is on the default branch) but `publish` has not
    # run: the published weights still hold the records, so the Hub hears nothing of a release yet.
    ledgerfile.append_once(env / "compliance" / "removals.jsonl", "released",
                           {"id": f"R-{issue.number}", "issue": issue.number}, "kiki-bot[bot]",
                           OPENED + dt.timedelta(days=3), adapter="tiny-lora", version="0.1.0",
                           train_sha256="0" * 64, adapter_sha256="0" * 64)
    assert cli("hub", "sync", "-C", env).code == 0
    assert steps(hub, num) == ["triaged", "approved", "purged"]
    assert hub.repo(HUB_REPO).discussions[num].status == "open"


def test_a_declined_request_is_answered_and_its_discussion_closed(env, gh, hub, cli):
    num = hub.open_discussion(HUB_REPO, "Removal request", body("acme/fw"), "hf-rightsholder")
    assert cli("hub", "sync", "-C", env).code == 0
    [issue] = mirrors(gh)
    res = handle(cli, env, "issue_comment", comment_event(issue.number, "/kiki reject not <b>ours</b> @x", "writer",
                                                          issue_user="kiki-bot[bot]"))
    assert res.code == 0, res.err
    assert steps(hub, num) == ["triaged", "closed"]
    assert "Reason: not &lt;b>ours&lt;/b> @&#8203;x." in hub_answers(hub, num)[1]
    assert hub.repo(HUB_REPO).discussions[num].status == "closed"


def test_an_invalid_request_is_answered_and_a_corrected_form_is_triaged(env, gh, hub, cli):
    num = hub.open_discussion(HUB_REPO, "Opt-out of training", "please remove everything of mine", "hf-user")
    assert cli("hub", "sync", "-C", env).code == 0
    [issue] = mirrors(gh)
    assert labels(gh, issue.number) == {"removal-request", "invalid"}
    [step] = steps(hub, num)
    assert step.startswith("invalid:") and "Please post the corrected form" in hub_answers(hub, num)[0]
    assert cli("hub", "sync", "-C", env).code == 0
    assert len(hub_answers(hub, num)) == 1  # the same text is answered once

    hub.post_comment(HUB_REPO, num, "someone-else", body("acme/fw"))  # only the author's form counts
    assert cli("hub", "sync", "-C", env).code == 0
    assert len(hub_answers(hub, num)) == 1
    hub.post_comment(HUB_REPO, num, "hf-user", body("octo-dev"))
    path = env.parent / "hook.json"
    path.write_text(json.dumps(webhook(num)))
    res = cli("handle", "--hub-event", path, "-C", env)
    assert res.code == 0, res.err
    assert steps(hub, num)[1] == "triaged" and labels(gh, issue.number) == {"removal-request", "awaiting-approval"}
    assert "\nocto-dev\n" in gh.issue(GH_REPO, issue.number).body  # the mirror holds the corrected form
    assert "| 1 | `octo-dev` | `https://github.com/octo-dev` | 4 |" in bot_comments(gh, issue.number)[0].body


def test_a_request_longer_than_github_takes_is_answered_on_the_hub_and_the_others_are_filed(env, gh, hub, cli):
    """GitHub refuses an issue body over 65,536 characters: such a request cannot be mirrored whole, and a cut
    one would be decided on part of it. It is answered on the Hub, once, and the sync goes on with the others."""
    long = hub.open_discussion(HUB_REPO, "Removal request", body("acme/fw", details="y" * 70_000), "hf-long")
    short = hub.open_discussion(HUB_REPO, "Removal request", body("octo-dev"), "hf-user")
    res = cli("hub", "sync", "-C", env)
    assert res.code == 0, res.err
    [issue] = mirrors(gh)
    assert "\nocto-dev\n" in issue.body and steps(hub, short) == ["triaged"]
    [step] = steps(hub, long)
    assert step.startswith("too-long:") and "more than the 65,536 GitHub takes" in hub_answers(hub, long)[0]
    assert cli("hub", "sync", "-C", env).code == 0
    assert len(hub_answers(hub, long)) == 1 and len(mirrors(gh)) == 1  # said once, nothing filed

    hub.post_comment(HUB_REPO, long, "hf-long", body("acme/fw"))  # the shorter form it asked for: filed
    assert cli("hub", "sync", "-C", env).code == 0
    assert len(mirrors(gh)) == 2 and steps(hub, long)[-1] == "triaged"


@pytest.mark.parametrize("payload", [
    "<img src=x onerror=alert(1)> @everyone [click](https://evil.example/x) #1 GH-2",
    "````\n</code></pre><script>alert(1)</script>\n````\n${{ secrets.HF_TOKEN }} {{ 7*7 }} <!-- hidden -->",
])
def test_hub_text_is_attacker_text(env, gh, hub, cli, payload):
    from rendering import live

    harmless = hub.open_discussion(HUB_REPO, "Removal request", body("acme/fw", details="plain words"), "hf-user")
    hostile = hub.open_discussion(HUB_REPO, f"Removal {payload}", body("acme/fw", details=payload), "hf-user")
    assert cli("hub", "sync", "-C", env).code == 0
    plain, evil = sorted(mirrors(gh), key=lambda i: i.title)  # "… discussion 1)", "… discussion 2)"
    assert evil.title == plain.title.replace("discussion 1", "discussion 2")
    assert live(evil.body, plain.body.replace("/discussions/1", "/discussions/2").replace("lora#1", "lora#2")) == []
    for ours, theirs in zip(hub_answers(hub, hostile), hub_answers(hub, harmless), strict=True):
        assert live(ours, theirs.replace(f"/issues/{plain.number}", f"/issues/{evil.number}")
                    .replace(f"R-{plain.number}", f"R-{evil.number}")) == []


def test_webhook_payloads_that_are_not_a_discussion_do_nothing(env, gh, hub, cli):
    num = hub.open_discussion(HUB_REPO, "Removal request", body("acme/fw"), "hf-user")
    path = env.parent / "hook.json"
    for payload in (webhook(num, pr=True), webhook(num, scope="repo.content"), webhook(num, action="delete")):
        path.write_text(json.dumps(payload))
        res = cli("handle", "--hub-event", path, "-C", env)
        assert res.code == 0 and "nothing for kiki-bot to do" in res.err
    assert mirrors(gh) == []
    bad = webhook(num) | {"webhook": {"id": "x", "version": 2}}
    path.write_text(json.dumps(bad))
    res = cli("handle", "--hub-event", path, "-C", env)
    assert res.code == 2 and "not a Hugging Face webhook payload (version 3): `webhook.version`" in res.err
    assert "Traceback" not in res.err


def test_dry_run_plans_the_mirror_and_does_nothing(env, gh, hub, cli):
    hub.open_discussion(HUB_REPO, "Removal request", body("acme/fw"), "hf-user")
    res = cli("hub", "sync", "--dry-run", "--json", "-C", env)
    assert res.code == 0, res.err
    assert [p["action"] for p in res.json()["planned"]] == ["open_issue"]
    assert mirrors(gh) == [] and hub_answers(hub, 1) == []


def test_a_purge_by_the_gated_job_is_answered_on_the_hub_too(env, gh, hub, cli):
    """`kiki-bot removal purge` (the gated job) takes the step after an approval: the discussion hears it."""
    num = hub.open_discussion(HUB_REPO, "Please remove my code", body("acme/fw"), "hf-rightsholder")
    assert cli("hub", "sync", "-C", env).code == 0
    [issue] = mirrors(gh)
    [triage] = bot_comments(gh, issue.number)
    triaged = Triaged.decode(STORED.search(triage.body).group(1))
    path, ref = env / "compliance" / "removals.jsonl", {"id": triaged.id, "issue": issue.number}
    ledgerfile.append_once(path, "requested", ref, "writer", triaged.opened_at, selectors=triaged.selectors,
                           body_sha256=triaged.body_sha256, deadline=triaged.deadline, adapters=triaged.adapters)
    ledgerfile.append_once(path, "approved", ref, "writer", triaged.opened_at + dt.timedelta(days=1))
    res = cli("removal", "purge", triaged.id, "--actor", "writer", "-C", env)
    assert res.code == 0, res.err
    assert steps(hub, num) == ["triaged", "approved", "purged"]
