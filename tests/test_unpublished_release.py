"""A `released` ledger entry reaches the default branch with the review PR, before `publish` has run. Until that
version is published (card.json's `published_at`), the request is still pending for that adapter: the deadline
run keeps it, and another adapter's publish does not call the request complete or close its issue."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from factory import adapter, make_project, mark_published, source

from kiki_bot.repo import ledgerfile

GH_REPO = "test-lab/models"
OPENED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
DEADLINE = OPENED + dt.timedelta(days=30)
ADAPTERS = ("tiny-a", "tiny-b")
WEIGHTS = {name: f"weights of {name} v0.1.1".encode() for name in ADAPTERS}  # staged at each Hub repo's main


@pytest.fixture
def merged(gh, hub, monkeypatch, tmp_path, cli):
    """R-1 purged from both adapters' data; v0.1.0 of each published before; the review PRs of both v0.1.1
    merged (draft cards, `released` entries), neither published yet."""
    ads = {}
    for name in ADAPTERS:
        ads[name] = adapter(["acme-fw"], hub_repo=f"test-lab/{name}")
        ads[name]["training"]["valid_fraction"] = 0.3
    project = make_project(tmp_path / "repo", sources={"acme-fw": source()}, adapters=ads)
    for name in ADAPTERS:
        assert cli("card", "render", name, "-C", project, "--version", "0.1.0", "--date", "2026-02-01").code == 0
        mark_published(project, name, "2026-02-02T09:00:00Z")
    path = project / "compliance" / "removals.jsonl"
    rid = {"id": "R-1", "issue": 1}
    ledgerfile.append_once(path, "requested", rid, "octo-dev", OPENED, selectors=["record:acme-fw#3"], body_sha256="a" * 64,
                           deadline=DEADLINE, adapters=list(ADAPTERS))
    ledgerfile.append_once(path, "approved", rid, "maint", OPENED + dt.timedelta(days=1))
    ledgerfile.append_once(path, "purged", rid, "maint", OPENED + dt.timedelta(days=1),
                           records=[["acme-fw", 3, "b" * 64]], adapters=list(ADAPTERS))
    for name in ADAPTERS:  # what each merged review PR brought: the entry, and the card of v0.1.1 (a draft)
        ledgerfile.append_once(path, "released", rid, "kiki-bot[bot]", OPENED + dt.timedelta(days=2), adapter=name,
                               version="0.1.1", train_sha256="c" * 64, adapter_sha256=hashlib.sha256(WEIGHTS[name]).hexdigest())
        assert cli("card", "render", name, "-C", project, "--version", "0.1.1", "--date", "2026-03-03").code == 0
    gh.create_repo(GH_REPO, files={str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*")
                                   if p.is_file()})
    gh.open_issue(GH_REPO, "Removal", "body", labels=["removal-request", "purged"])
    for name in ADAPTERS:
        hub.create_repo(f"test-lab/{name}", files={"adapters.safetensors": WEIGHTS[name]})
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def test_publishing_one_adapter_does_not_close_a_request_another_has_not_published(merged, gh, cli):
    res = cli("publish", "tiny-a/v0.1.1", "-C", merged)
    assert res.code == 0, res.err
    [notice] = [c for c in gh.comments(GH_REPO, 1) if "is published" in c.body]
    assert "Still to be released without them: tiny-b." in notice.body and "complete" not in notice.body
    assert gh.issue(GH_REPO, 1).state == "open"  # tiny-b's published v0.1.0 still holds the records


def test_the_deadline_run_keeps_a_request_until_its_release_is_published(merged, cli):
    after = (DEADLINE + dt.timedelta(hours=1)).isoformat()
    plan = cli("schedule", "plan", "--now", after, "--json", "-C", merged).json()
    assert {name: (p["action"], p["pending"]) for name, p in plan.items()} == {
        "tiny-a": ("overdue", ["R-1"]), "tiny-b": ("overdue", ["R-1"])}
    mark_published(merged, "tiny-a", "2026-03-04T09:00:00Z")  # publish ran for tiny-a v0.1.1
    plan = cli("schedule", "plan", "--now", after, "--json", "-C", merged).json()
    assert list(plan) == ["tiny-b"] and plan["tiny-b"]["pending"] == ["R-1"]
