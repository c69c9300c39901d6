"""`--dry-run` on every command with side effects (DESIGN.md section 4): the plan as JSON lines on stdout
(or inside the one --json document), exit 0, and not one byte changed, here or on GitHub and the Hub."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLE
from test_cli import LEAVES, commands, reprs
from test_release_flow import GH_REPO, tiny_base, tiny_project, writes  # noqa: F401  (tiny_base: a fixture)
from test_removal_flow import body, issue_event

from kiki_bot.repo import ledgerfile, skeleton


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes but the provenance index's: a cache (git-ignored, under .kiki/) that any command
    reading the data brings up to date, `card check` included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("index.sqlite")}


@pytest.fixture
def repo(gh, hub, cli, monkeypatch, tmp_path, tiny_base):  # noqa: F811
    """A project with a committed card v0.1.0, known to the GitHub emulator, and one private request filed."""
    project = tiny_project(tmp_path / "repo", tiny_base)
    files = {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}
    files.update({path: text.encode() for path, text in skeleton.caller_workflows(("a" * 40, "a pin")).items()})  # what init writes
    gh.create_repo(GH_REPO, files=files)
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("KIKI_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.chdir(project)
    assert cli("card", "render", "--version", "0.1.0", "--date", "2026-05-06").code == 0
    (tmp_path / "request.md").write_text(body("acme/fw"))
    (tmp_path / "issue.json").write_text(json.dumps(issue_event(1, body("acme/fw"))))
    gh.open_issue(GH_REPO, "Remove acme/fw", body=body("acme/fw"), labels=["removal-request"])
    return project


def file_and_purge(cli, tmp_path) -> str:
    request = cli("removal", "file", "--body", tmp_path / "request.md", "--json").json()["request"]
    assert cli("removal", "purge", request).code == 0
    return request


# Each command with side effects: how to get the project into a state where it has something to do, the
# command, and the actions its plan must contain.
def setup_nothing(cli, tmp_path, repo) -> list[str]:
    return []


def setup_init(cli, tmp_path, repo) -> list[str]:
    target = tmp_path / "new"
    target.mkdir()
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    return [str(target), "--repository", GH_REPO, "--ref", "a" * 40]


def setup_stale_manifest(cli, tmp_path, repo) -> list[str]:
    with open(repo / "data" / "acme-fw" / "part-000.jsonl", "a") as fh:
        fh.write(json.dumps({"text": "one more", "_provenance": {
            "source": "acme-fw", "license": "MIT", "record_idx": 99, "access_date": "2025-10-02"}}) + "\n")
    return []


def setup_unchecked_host(cli, tmp_path, repo) -> list[str]:
    """Records from a local port where nothing listens: the check asks no remote host, and records its refusal."""
    for path in (repo / "data" / "acme-fw").glob("*.jsonl"):
        path.write_text(path.read_text().replace("https://github.com/", "http://127.0.0.1:9/"))
    return []


def setup_filed(cli, tmp_path, repo) -> list[str]:
    return [cli("removal", "file", "--body", tmp_path / "request.md", "--json").json()["request"]]


def setup_overdue(cli, tmp_path, repo) -> list[str]:
    file_and_purge(cli, tmp_path)
    return ["--now", (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).isoformat()]


def setup_discussion(cli, tmp_path, repo) -> list[str]:
    from emulator_fixtures import HUB

    HUB.create_repo("test-lab/tiny-lora")
    HUB.open_discussion("test-lab/tiny-lora", "Removal request", body("acme/fw"), "hf-user")
    return []


CASES = {
    ("init",): (setup_init, [], {"write_files", "create_labels"}),
    ("card", "render"): (setup_nothing, ["--version", "0.2.0"], {"write_files"}),
    ("card", "import"): (setup_nothing, [str(EXAMPLE / "history" / "README-v0.4.3.md")], {"write_files"}),
    ("data", "manifest"): (setup_stale_manifest, [], {"write_files"}),
    ("data", "check-optouts"): (setup_unchecked_host, ["acme-fw"], {"write_files"}),
    ("removal", "file"): (setup_nothing, ["--body", "{tmp}/request.md"], {"ledger_append"}),
    ("removal", "purge"): (setup_filed, [], {"ledger_append", "purge"}),
    ("schedule", "run"): (setup_overdue, [], {"ledger_append", "hub_fallback"}),
    ("hub", "sync"): (setup_discussion, [], {"open_issue"}),
    ("release",): (setup_nothing, ["tiny-lora/v0.2.0"], {"train", "hub_stage", "pull_request"}),
    ("publish",): (setup_nothing, ["tiny-lora/v0.1.0"], {"hub_publish", "release"}),
    ("handle",): (setup_nothing, ["--event-name", "issues", "--event-path", "{tmp}/issue.json"],
                  {"comment", "label"}),
}


def test_every_command_with_side_effects_has_a_dry_run_case():
    with_dry_run = {p for p in LEAVES if any("--dry-run" in param.opts for param in commands()[p].params)}
    assert with_dry_run == {*CASES, ("export", "peft")}  # export's needs a trained adapter: test_peft_export


@pytest.mark.parametrize("as_json", [False, True], ids=["lines", "json"])
@pytest.mark.parametrize("path", sorted(CASES), ids=" ".join)
def test_a_dry_run_prints_its_plan_and_changes_nothing(cli, repo, gh, hub, tmp_path, path, as_json):
    setup, args, expected = CASES[path]
    args = [*setup(cli, tmp_path, repo), *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    before, gh_writes, hub_writes = snapshot(tmp_path), len(writes(gh)), len(writes(hub))
    res = cli(*path, *args, "--dry-run", *(["--json"] if as_json else []))
    assert res.code == 0, res.err
    planned = json.loads(res.out)["planned"] if as_json else [json.loads(line) for line in res.out.splitlines()]
    assert all(isinstance(p, dict) and "action" in p for p in planned)
    assert expected <= {p["action"] for p in planned}, planned
    assert not reprs(res.out + res.err)
    assert snapshot(tmp_path) == before
    assert (len(writes(gh)), len(writes(hub))) == (gh_writes, hub_writes)


def test_the_overdue_dry_run_is_the_real_runs_plan(cli, repo, hub, tmp_path):
    """The real run after a dry run does what the dry run printed (and fails: the deadline passed)."""
    hub.create_repo("test-lab/tiny-lora")
    args = setup_overdue(cli, tmp_path, repo)
    plan = [json.loads(line) for line in cli("schedule", "run", *args, "--dry-run").out.splitlines()]
    assert cli("schedule", "run", *args).code == 1
    entries = ledgerfile.read(repo / "compliance" / "removals.jsonl")
    [missed] = [p for p in plan if p["action"] == "ledger_append"]
    assert entries[-1].event == missed["event"] == "deadline_missed"


def test_the_publish_dry_run_names_the_staged_hub_pr_it_would_merge(cli, repo, hub, hf_api):
    """A dry run reads what is there (through Effects, like the real run): the plan is the real run's."""
    from huggingface_hub import CommitOperationAdd

    hf_api.create_repo("test-lab/tiny-lora", exist_ok=True)
    staged = hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd("adapters.safetensors", b"w")],
                                  commit_message="tiny-lora v0.1.0", create_pr=True).pr_num
    res = cli("publish", "tiny-lora/v0.1.0", "--dry-run")
    assert res.code == 0, res.err
    [merge] = [p for p in map(json.loads, res.out.splitlines()) if p["action"] == "hub_publish"]
    assert merge["pr"] == staged
