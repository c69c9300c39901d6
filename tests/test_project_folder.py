"""A model repository whose kiki.toml is in a folder of the GitHub repository (the workflows' and the action's
`project-dir`): every file the bot commits or reads through the GitHub API is at that folder's path in the
repository, not at the repository's root, so the purge PR rewrites the data and the ledger the release reads."""

from __future__ import annotations

import subprocess

import pytest
from factory import adapter, make_project, record, source
from test_removal_flow import GH_REPO, body, comment_event, handle, issue_event

from kiki_bot.core import ledger

FOLDER = "ml"


@pytest.fixture
def nested(gh, hub, monkeypatch, tmp_path):
    """A git checkout whose model repository lives in ml/, pushed as it is to the emulator."""
    top = tmp_path / "checkout"
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i}; }}") for i in range(12)]
    ad = adapter(["acme-fw"])
    ad["training"]["valid_fraction"] = 0.3
    project = make_project(top / FOLDER, sources={"acme-fw": source()}, records={"acme-fw": recs},
                           adapters={"tiny-lora": ad})
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    files = {p.relative_to(top).as_posix(): p.read_bytes() for p in project.rglob("*") if p.is_file()}
    gh.create_repo(GH_REPO, files={"README.md": b"monorepo\n", **files})
    gh.set_permission(GH_REPO, "writer", "write")
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", GH_REPO)
    return project


def test_a_purge_commits_the_projects_own_files_when_it_is_a_folder_of_the_repository(nested, gh, cli):
    text = body("record:acme-fw#3")
    number = gh.open_issue(GH_REPO, "Removal", text, user="octo-dev", labels=["removal-request"])
    assert handle(cli, nested, "issues", issue_event(number, text)).code == 0
    res = handle(cli, nested, "issue_comment", comment_event(number, "/kiki approve", "writer"))
    assert res.code == 0, res.err
    events = [e.event for e in ledger.read(nested / "compliance" / "removals.jsonl")]
    assert events == ["requested", "approved", "purged"]
    main, branch = gh.files(GH_REPO), gh.files(GH_REPO, f"kiki/removal/R-{number}")
    changed = {path for path, data in branch.items() if main.get(path) != data}
    assert changed == {f"{FOLDER}/compliance/removals.jsonl", f"{FOLDER}/data/acme-fw/part-000.jsonl",
                       f"{FOLDER}/data/acme-fw/MANIFEST.json"}
    for path in changed:  # the purge PR holds exactly what the purge wrote, where the checkout has it
        assert branch[path] == (nested / path.removeprefix(f"{FOLDER}/")).read_bytes()
    # A redelivery reads the ledger back from the PR at the same place: nothing more is written.
    again = handle(cli, nested, "issue_comment", comment_event(number, "/kiki approve", "writer"))
    assert again.code == 0, again.err
    assert gh.files(GH_REPO, f"kiki/removal/R-{number}") == branch
