"""A model repository whose kiki.toml is in a folder of the GitHub repository (the workflows' and the action's
`project-dir`): every file the bot commits or reads through the GitHub API is at that folder's path in the
repository, not at the repository's root, so the purge PR rewrites the data and the ledger the release reads."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from factory import adapter, make_project, record, source
from test_release_flow import tiny_base, tiny_project  # noqa: F401  (tiny_base: a fixture)
from test_removal_flow import GH_REPO, body, comment_event, handle, issue_event

from kiki_bot.repo import ledgerfile

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
    events = [e.event for e in ledgerfile.read(nested / "compliance" / "removals.jsonl")]
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


def test_release_and_publish_from_the_cli_use_the_default_branch_and_the_projects_folder(
        gh, hub, gh_client, cli, monkeypatch, tmp_path, tiny_base):  # noqa: F811
    """`kiki-bot release` and `kiki-bot publish` run with no event naming the default branch: they ask GitHub
    (here `trunk`, not `main`); the review PR links the loss curve where the branch holds it, in the folder."""
    top = tmp_path / "checkout"
    project = tiny_project(top / FOLDER, tiny_base)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    gh.create_repo(GH_REPO, default_branch="trunk",
                   files={p.relative_to(top).as_posix(): p.read_bytes() for p in project.rglob("*") if p.is_file()})
    for name, value in (("KIKI_GITHUB_THROTTLE", "0"), ("KIKI_RUNS_DIR", str(tmp_path / "runs")),
                        ("GITHUB_REPOSITORY", GH_REPO)):
        monkeypatch.setenv(name, value)
    tag, branch = "tiny-lora/v0.1.0", "kiki/release/tiny-lora/0.1.0"
    res = cli("release", tag, "-C", project)
    assert res.code == 0, res.err
    [pr] = gh.pulls(GH_REPO)
    assert pr.pull.base == "trunk"
    [path] = re.findall(rf"https://github\.com/{GH_REPO}/blob/{re.escape(branch)}/([^)\s]+loss-curve\.svg)", pr.body)
    assert path == f"{FOLDER}/cards/tiny-lora/loss-curve.svg" and path in gh.files(GH_REPO, branch)
    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    for name, data in gh.files(GH_REPO, "trunk").items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_bytes(data)
    res = cli("publish", tag, "-C", project)
    assert res.code == 0, res.err
    card = json.loads(gh.files(GH_REPO, "trunk")[f"{FOLDER}/cards/tiny-lora/card.json"])
    assert card["published_at"] is not None  # recorded on the default branch, where the next release reads it
