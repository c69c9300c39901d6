"""The deadline run against the emulators: one retrain per need however often it runs, retries after a
failure, warnings once, and the missed-deadline fallback on the Hub."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import tomli_w
import yaml
from conftest import REPO
from factory import KIKI, adapter, make_project, mark_published, source

from kiki_bot.repo import ledgerfile, skeleton

GH_REPO = "test-lab/models"
OPENED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
DEADLINE = OPENED + dt.timedelta(days=30)


def at(delta: dt.timedelta) -> str:
    return (OPENED + delta).isoformat()


@pytest.fixture
def env(gh, hub, monkeypatch, tmp_path, cli):
    kiki = json.loads(json.dumps(KIKI))
    kiki["policy"].update(review_buffer_days=0.5, missed_deadline_fallback="gate")
    ad = adapter(["acme-fw"])
    ad["training"]["valid_fraction"] = 0.3
    project = make_project(tmp_path / "repo", kiki=kiki, sources={"acme-fw": source()}, adapters={"tiny-lora": ad})
    assert cli("card", "render", "-C", project, "--version", "0.1.0", "--date", "2026-02-01").code == 0
    mark_published(project, "tiny-lora", "2026-02-02T09:00:00Z")
    card = project / "cards" / "tiny-lora" / "card.json"
    doc = json.loads(card.read_text())
    doc["run"]["wall_time_s"] = 3600.0  # the last run took an hour
    card.write_text(json.dumps(doc))
    path = project / "compliance" / "removals.jsonl"
    rid = {"id": "R-1", "issue": 1}
    ledgerfile.append_once(path, "requested", rid, "octo-dev", OPENED, selectors=["record:acme-fw#3"], body_sha256="a" * 64,
                           deadline=DEADLINE, adapters=["tiny-lora"])
    ledgerfile.append_once(path, "approved", rid, "maint", OPENED + dt.timedelta(days=1))
    ledgerfile.append_once(path, "purged", rid, "maint", OPENED + dt.timedelta(days=1),
                           records=[["acme-fw", 3, "b" * 64]], adapters=["tiny-lora"])
    files = {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}
    files.update({path: text.encode() for path, text in skeleton.caller_workflows(("a" * 40, "a pin")).items()})  # what init writes
    gh.create_repo(GH_REPO, files=files)
    gh.open_issue(GH_REPO, "Removal", "body", labels=["removal-request", "purged"])
    hub.create_repo("test-lab/tiny-lora")
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def release_runs(gh):
    return [d for d in gh.dispatches(GH_REPO) if d.event == "workflow_dispatch"]


def test_plan_waits_until_the_latest_safe_start(env, cli):
    doc = cli("schedule", "plan", "--now", at(dt.timedelta(days=2)), "--json", "-C", env).json()["tiny-lora"]
    assert doc["action"] == "wait" and doc["pending"] == ["R-1"]
    assert doc["earliest_deadline"] == "2026-03-31T10:00:00Z"
    # latest safe start = deadline - (1 h run + 0.5 day review) - 48 h margin
    assert doc["retrain_at"] == "2026-03-28T21:00:00Z"
    assert doc["release"] == "tiny-lora/v0.1.1"


def test_retrain_starts_once_and_is_retried_after_a_failure(env, gh, cli):
    when = at(dt.timedelta(days=27, hours=12))
    assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    [run] = release_runs(gh)
    assert run.payload == {"tag": "tiny-lora/v0.1.1"} and run.ref == "tiny-lora/v0.1.1"
    assert "tiny-lora/v0.1.1" in gh.repo(GH_REPO).tags
    for _ in range(3):  # the cron fires again: the run in flight covers R-1
        assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    assert len(release_runs(gh)) == 1
    run.status, run.conclusion = "completed", "failure"
    assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    assert len(release_runs(gh)) == 2


def shipped() -> dict[str, str]:
    """The deadlines job's permissions, as kiki-bot ships them (the caller `init` writes grants the same)."""
    return yaml.safe_load((REPO / ".github" / "workflows" / "deadlines.yml").read_text())["jobs"]["deadlines"][
        "permissions"]


def test_the_deadline_run_starts_a_retrain_under_the_permissions_kiki_bot_ships(env, gh, cli, monkeypatch):
    """With the job's own token (private repository: reads need their scope too) the run tags, dispatches the
    release caller `init` writes on that tag (the tag alone starts nothing), and records a missed deadline."""
    gh.repo(GH_REPO).private = True
    monkeypatch.setenv("GITHUB_TOKEN", gh.mint_token(shipped()))
    assert cli("schedule", "run", "--now", at(dt.timedelta(days=27, hours=12)), "-C", env).code == 0
    [run] = release_runs(gh)
    assert (run.name, run.ref, run.payload, run.actor) == (
        "kiki-release.yml", "tiny-lora/v0.1.1", {"tag": "tiny-lora/v0.1.1"}, "github-actions[bot]")
    assert [d for d in gh.dispatches(GH_REPO) if d.event == "push"] == []
    res = cli("schedule", "run", "--now", at(dt.timedelta(days=31)), "-C", env)
    assert res.code == 1 and "deadline 2026-03-31 10:00 UTC passed" in res.err
    assert [p.title for p in gh.pulls(GH_REPO)] == ["Record missed removal deadlines of tiny-lora"]
    assert "deadline-missed" in gh.issue(GH_REPO, 1).labels and len(release_runs(gh)) == 1


@pytest.mark.parametrize(("scope", "level", "missing"), [
    ("actions", "none", "`actions: write`"),
    ("contents", "read", "`contents: write`"),
    ("pull-requests", "none", "`pull-requests: read`"),
    ("issues", "read", "`issues: write`"),
])
def test_with_fewer_permissions_the_deadline_run_says_which_one_is_missing(env, gh, cli, monkeypatch, scope, level,
                                                                            missing):
    """GitHub's 403 becomes one line naming the permission; once it is granted, the next run starts the retrain
    (a tag left without a run, its dispatch refused, is no retrain in flight)."""
    gh.repo(GH_REPO).private = True
    monkeypatch.setenv("GITHUB_TOKEN", gh.mint_token(shipped() | {scope: level}))
    res = cli("schedule", "run", "--now", at(dt.timedelta(days=27, hours=12)), "-C", env)
    assert res.code == 2 and res.out == "" and "Traceback" not in res.err
    assert res.err == (f"error: GitHub refused the request: 403 Resource not accessible by integration: the token "
                       f"lacks {missing}; grant it in the workflow job's `permissions:`\n")
    assert len(release_runs(gh)) == (scope == "issues")  # the warning on the issue comes after the dispatch
    monkeypatch.setenv("GITHUB_TOKEN", gh.mint_token(shipped()))  # granted: the next run starts the retrain
    assert cli("schedule", "run", "--now", at(dt.timedelta(days=27, hours=12)), "-C", env).code == 0
    assert [run.payload for run in release_runs(gh)] == [{"tag": "tiny-lora/v0.1.1"}]


def test_warns_once_when_a_deadline_is_near(env, gh, cli):
    when = at(dt.timedelta(days=24))
    for _ in range(2):
        assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    warnings = [c for c in gh.comments(GH_REPO, 1) if "at risk" in c.body]
    assert len(warnings) == 1 and "2026-03-31 10:00 UTC" in warnings[0].body
    assert "deadline-at-risk" in gh.issue(GH_REPO, 1).labels
    assert release_runs(gh) == []


@pytest.mark.parametrize("fallback", ["gate", "private"])
def test_missed_deadline_applies_the_fallback_and_fails(env, gh, hub, cli, fallback):
    kiki = json.loads(json.dumps(KIKI))
    kiki["policy"].update(review_buffer_days=0.5, missed_deadline_fallback=fallback)
    (env / "kiki.toml").write_text(tomli_w.dumps(kiki))
    when = at(dt.timedelta(days=31))
    for _ in range(2):
        res = cli("schedule", "run", "--now", when, "-C", env)
        assert res.code == 1 and "R-1 (tiny-lora): deadline 2026-03-31 10:00 UTC passed" in res.err
    repo = hub.repo("test-lab/tiny-lora")
    assert (repo.gated, repo.private) == (("manual", False) if fallback == "gate" else (False, True))
    missed = [e for e in ledgerfile.read(env / "compliance" / "removals.jsonl") if e.event == "deadline_missed"]
    assert len(missed) == 1 and missed[0].fallback == fallback and missed[0].at == DEADLINE
    assert "deadline-missed" in gh.issue(GH_REPO, 1).labels
    assert [p.title for p in gh.pulls(GH_REPO)] == ["Record missed removal deadlines of tiny-lora"]
    assert len(release_runs(gh)) == 1  # and the overdue retrain was started, once


def test_schedule_event_routes_to_the_deadline_run(env, gh, cli, tmp_path, monkeypatch):
    from conftest import REPO

    event = json.loads((REPO / "tests" / "fixtures" / "github-events" / "workflow_dispatch.payload.json")
                       .read_text())
    event["inputs"] = {}
    event["repository"].update(full_name=GH_REPO, default_branch="main")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    import time_machine

    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    with time_machine.travel(OPENED + dt.timedelta(days=2), tick=False):  # the cron's own clock
        res = cli("handle", "--event-name", "workflow_dispatch", "--event-path", path, "-C", env)
    assert res.code == 0, res.err
    assert "\ntiny-lora:wait\n" in (tmp_path / "out").read_text() and release_runs(gh) == []
    with time_machine.travel(OPENED + dt.timedelta(days=29), tick=False):
        res = cli("handle", "--event-name", "workflow_dispatch", "--event-path", path, "-C", env)
    assert res.code == 0 and len(release_runs(gh)) == 1


def test_a_purge_merged_after_the_retrain_was_tagged_gets_a_new_tag_not_the_refused_one_again(env, gh, cli):
    """The deadline run tags v0.1.1 and dispatches its release; a purge merges before the release reads the
    ledger, so the release is refused (the default branch's ledger has entries the tag lacks; tags are never
    moved). Dispatching that tag again would be refused again, every run until the deadline passed: the next
    run tags the next version at the default branch's head instead, once."""
    when = at(dt.timedelta(days=27, hours=12))
    assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    [first] = release_runs(gh)
    stale = gh.repo(GH_REPO).tags["tiny-lora/v0.1.1"]
    path = env / "compliance" / "removals.jsonl"
    rid = {"id": "R-2", "issue": 2}
    ledgerfile.append_once(path, "requested", rid, "octo-dev", OPENED + dt.timedelta(days=20),
                           selectors=["record:acme-fw#4"], body_sha256="d" * 64,
                           deadline=DEADLINE + dt.timedelta(days=20), adapters=["tiny-lora"])
    ledgerfile.append_once(path, "approved", rid, "maint", OPENED + dt.timedelta(days=21))
    ledgerfile.append_once(path, "purged", rid, "maint", OPENED + dt.timedelta(days=21),
                           records=[["acme-fw", 4, "e" * 64]], adapters=["tiny-lora"])
    head = gh.push(GH_REPO, "main", {"compliance/removals.jsonl": path.read_bytes()}, "Purge R-2", author="maint")
    first.status, first.conclusion = "completed", "failure"  # refused: the ledger moved after the tag
    for _ in range(2):
        assert cli("schedule", "run", "--now", when, "-C", env).code == 0
    assert [(r.ref, r.payload) for r in release_runs(gh)] == [
        ("tiny-lora/v0.1.1", {"tag": "tiny-lora/v0.1.1"}), ("tiny-lora/v0.1.2", {"tag": "tiny-lora/v0.1.2"})]
    assert gh.repo(GH_REPO).tags["tiny-lora/v0.1.2"] == head and gh.repo(GH_REPO).tags["tiny-lora/v0.1.1"] == stale
