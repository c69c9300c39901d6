""""Published" means `publish` ran (DESIGN.md section 7, invariant 5): `init` and `card render` write drafts
that the first release replaces, and only published versions count for tags, triage, links and the changelog."""

from __future__ import annotations

import json
import subprocess

from factory import make_project, mark_published

from kiki_bot import removal
from kiki_bot.repo.project import Project

CARD = ("cards", "tiny-lora")


def card(root) -> dict:
    return json.loads(root.joinpath(*CARD, "card.json").read_text())


def render(cli, root, *args: str):
    return cli("card", "render", "-C", root, *args)


def test_the_first_release_after_init_is_not_refused(tmp_path, cli, monkeypatch):
    for name in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "models"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert cli("init", repo, "--repository", "octo-org/models", "--ref", "a" * 40).code == 0
    assert json.loads((repo / "cards/example-lora/card.json").read_text())["published_at"] is None
    res = cli("release", "example-lora/v0.1.0", "--dry-run", "-C", repo)
    # The tag is accepted; what stops this dry run is the missing local base model, as the README says.
    assert res.code == 2 and "not newer" not in res.err and "base_model.local_path" in res.err


def test_drafts_are_not_published_versions(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    assert render(cli, root, "--version", "0.1.0", "--date", "2026-05-06").code == 0
    assert card(root)["published_at"] is None
    assert removal.published_versions(Project(root), {"tiny-lora": 20}) == {"tiny-lora": []}
    mark_published(root, "tiny-lora")
    assert render(cli, root).code == 0 and card(root)["published_at"] == "2026-05-06T12:00:00Z"  # kept
    assert removal.published_versions(Project(root), {"tiny-lora": 20}) == {"tiny-lora": ["v0.1.0"]}

    # A draft 0.2.0, then 0.3.0 rendered over it: 0.2.0 never shipped, so nothing links or lists it.
    assert render(cli, root, "--version", "0.2.0", "--date", "2026-06-01").code == 0
    assert render(cli, root, "--version", "0.3.0", "--date", "2026-07-01").code == 0
    doc = card(root)
    assert [v["version"] for v in doc["header"]["previous_versions"]] == ["0.1.0"]
    assert doc["header"]["previous_versions"][0]["published_at"] == "2026-05-06T12:00:00Z"
    assert [e["version"] for e in doc["changelog"]] == ["0.3.0", "0.1.0"]
    assert doc["previous"]["version"] == "0.1.0" and doc["published_at"] is None
    readme = root.joinpath(*CARD, "README.md").read_text()
    assert "v0.1.0 of 2026-05-06" in readme and "v0.2.0" not in readme
    assert "[0.2.0]" not in root.joinpath(*CARD, "CHANGELOG.md").read_text()
    assert removal.published_versions(Project(root), {"tiny-lora": 20}) == {"tiny-lora": ["v0.1.0"]}


def test_a_version_is_semver_and_newer_than_the_last_published(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    for bad in ("banana", "1.2", "v0.1.0", "0.1.0.1", "01.2.3"):
        res = render(cli, root, "--version", bad)
        assert res.code == 2 and "not a semantic version" in res.err and repr(bad) in res.err, (bad, res.err)
    assert not root.joinpath(*CARD).exists()
    assert render(cli, root, "--version", "0.2.0", "--date", "2026-05-06").code == 0
    assert render(cli, root, "--version", "0.1.0", "--date", "2026-05-06").code == 0  # drafts: no order yet
    mark_published(root, "tiny-lora")
    before = card(root)
    for older in ("0.0.9", "0.1.0-rc.1"):
        res = render(cli, root, "--version", older)
        assert res.code == 2 and "not newer than the last published version v0.1.0" in res.err, res.err
    assert card(root) == before
    assert render(cli, root, "--version", "0.1.0").code == 0 and card(root) == before  # the published one itself


def test_only_a_training_run_says_retrained(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    assert render(cli, root, "--version", "0.1.0", "--date", "2026-05-06").code == 0
    mark_published(root, "tiny-lora")
    assert render(cli, root, "--version", "0.1.1", "--date", "2026-05-07").code == 0
    [entry, _] = card(root)["changelog"]
    assert entry["changed"] == ["No change to the training data or parameters since v0.1.0."]
    assert "Retrained" not in root.joinpath(*CARD, "CHANGELOG.md").read_text()
    facts = tmp_path / "run.json"
    facts.write_text(json.dumps({"iterations": 10, "trained_tokens": 640}))
    assert render(cli, root, "--version", "0.1.1", "--date", "2026-05-07", "--run", facts).code == 0
    assert card(root)["changelog"][0]["changed"] == ["Retrained; the training data is unchanged."]
