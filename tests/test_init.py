"""`kiki-bot init`: a model repository that passes `card check` at once, never overwritten by surprise,
labels created through the GitHub API (emulated), and the removal-request form exactly as DESIGN.md says."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, REPO

from kiki_bot import scaffold
from kiki_bot.issueform import RemovalRequest, parse_removal_request

GH_REPO = "test-lab/models"
WRITTEN = sorted(
    [
        "kiki.toml",
        "adapters/example-lora.toml",
        "sources/example-source.toml",
        "data/example-source/part-000.jsonl",
        "data/example-source/MANIFEST.json",
        "cards/example-lora/README.md",
        "cards/example-lora/CHANGELOG.md",
        "cards/example-lora/card.json",
        ".github/ISSUE_TEMPLATE/removal-request.yml",
        *(
            f".github/workflows/kiki-{m}.yml"
            for m in ("release", "publish", "removal-triage", "removal-purge", "removal-refresh", "deadlines",
                      "card-review")
        ),
    ]
)
# DESIGN.md section 3, in order.
FORM_LABELS = [
    "Content to remove",
    "Your relationship to the content",
    "Reason",
    "Additional details",
    "Confirmation",
]
RELATIONSHIP = ["I am the author or rightsholder", "I act on behalf of the rightsholder", "Other"]
REASON = [
    "Text and data mining opt-out (DSM Directive Art. 4(3))",
    "Copyright",
    "Personal data (GDPR Art. 17)",
    "Other",
]
CONFIRMATION = "I confirm that the information in this request is accurate"
BOT_LABELS = [
    "removal-request",
    "awaiting-approval",
    "invalid",
    "purged",
    "retrain-scheduled",
    "deadline-at-risk",
    "deadline-missed",
]


@pytest.fixture
def no_github(monkeypatch):
    """No token and no repository from the environment (as on a developer's machine)."""
    for name in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)


def git_repo(path: Path, origin: str | None = None) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """The repository's files, without git's and kiki-bot's caches (.kiki/ is git-ignored)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in (".git", ".kiki")
    }


def test_init_then_card_check_passes(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models", origin="git@github.com:octo-org/models.git")
    res = cli("init", repo, "--private-contact", "privacy@octo.example")
    assert res.code == 0, res.err
    files = snapshot(repo)
    assert sorted(set(files) - {".gitignore"}) == WRITTEN
    assert files[".gitignore"] == b".kiki/\n"
    for name in WRITTEN:
        assert f"wrote {repo / name}" in res.err
    for step in ("hub-publish", "HF_TOKEN", "self-hosted, macOS, ARM64", "git tag example-lora/v0.1.0"):
        assert step in res.err
    config = tomllib.loads(files["kiki.toml"].decode())
    assert config["hub"]["namespace"] == "octo-org"  # from the origin remote
    assert config["provider"]["private_contact"] == "privacy@octo.example"
    assert config["provider"]["contact"] == "https://github.com/octo-org/models/issues"
    assert "privacy@octo.example" in files[".github/ISSUE_TEMPLATE/removal-request.yml"].decode()

    check = cli("card", "check", "-C", repo)
    assert check.code == 0, check.err
    assert cli("ledger", "verify", "-C", repo).code == 0
    assert (
        cli("card", "render", "-C", repo).code == 0 and snapshot(repo) == files
    )  # already what the data says
    card = (repo / "cards/example-lora/card.json").read_text()
    assert '"version": "0.1.0"' in card


def test_the_refresh_caller_watches_the_default_branch(tmp_path, cli, no_github):
    """A push trigger cannot say "the default branch", so init writes its name: origin's HEAD, else the branch
    checked out, else main (also for a name a branch filter would read as a pattern)."""
    def watched(root: Path) -> list[str]:
        assert cli("init", root).code == 0
        return yaml.safe_load((root / ".github/workflows/kiki-removal-refresh.yml").read_text())[True]["push"][
            "branches"]

    cloned = git_repo(tmp_path / "cloned", origin="https://github.com/octo-org/models.git")
    subprocess.run(["git", "-C", cloned, "symbolic-ref", "HEAD", "refs/heads/topic"], check=True)
    subprocess.run(["git", "-C", cloned, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/develop"],
                   check=True)
    trunk = git_repo(tmp_path / "trunk")
    subprocess.run(["git", "-C", trunk, "symbolic-ref", "HEAD", "refs/heads/trunk"], check=True)
    odd = git_repo(tmp_path / "odd")
    subprocess.run(["git", "-C", odd, "symbolic-ref", "HEAD", "refs/heads/v1+x"], check=True)
    (tmp_path / "plain").mkdir()
    assert [watched(tmp_path / name) for name in ("cloned", "trunk", "odd", "plain")] == [
        ["develop"], ["trunk"], ["main"], ["main"]]


def test_init_refuses_to_overwrite_without_force(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models")
    assert cli("init", "-C", repo, "--repository", GH_REPO).code == 0
    (repo / "kiki.toml").write_text((repo / "kiki.toml").read_text().replace("Example Lab", "My Lab"))
    before = snapshot(repo)
    res = cli("init", repo, "--repository", GH_REPO)
    assert res.code == 2
    assert "exist already; rerun with --force" in res.err and str(repo / "kiki.toml") in res.err
    assert snapshot(repo) == before
    assert cli("init", repo, "--repository", GH_REPO, "--force").code == 0
    assert "Example Lab" in (repo / "kiki.toml").read_text()
    assert (repo / ".gitignore").read_text() == ".kiki/\n"  # added once


def test_one_existing_file_is_enough_to_refuse(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models")
    mine = repo / ".github" / "workflows" / "kiki-release.yml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own\n")
    res = cli("init", repo)
    assert res.code == 2 and str(mine) in res.err and "1 file(s)" in res.err
    assert snapshot(repo) == {".github/workflows/kiki-release.yml": b"# my own\n"}


def test_bad_options_are_refused_before_anything_is_written(tmp_path, cli, no_github, monkeypatch):
    repo = git_repo(tmp_path / "models")
    res = cli("init", repo, "--repository", "not a repo")
    assert res.code == 2 and "--repository" in res.err and "owner/name" in res.err
    res = cli("init", repo, "--private-contact", "a@b.eu\nEvil: yes")
    assert res.code == 2 and "private_contact" in res.err
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_some_token")
    res = cli("init", repo)
    assert res.code == 2 and "needed to create the labels" in res.err
    assert snapshot(repo) == {}


def test_init_creates_the_labels_once(tmp_path, cli, gh, monkeypatch):
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    gh.create_repo(GH_REPO)
    gh.open_issue(GH_REPO, "an old one", labels=["invalid"])  # a label that exists already is left alone
    repo = git_repo(tmp_path / "models", origin=f"https://github.com/{GH_REPO}.git")
    res = cli("init", repo)
    assert res.code == 0, res.err
    labels = gh.repo(GH_REPO).labels
    assert set(BOT_LABELS) <= set(labels)
    assert labels["removal-request"].color == scaffold.LABELS["removal-request"][0]
    assert labels["invalid"].color == "ededed"
    posts = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/labels")]
    assert len(posts) == len(BOT_LABELS)
    assert cli("init", repo, "--force").code == 0  # again: every label exists, nothing fails
    assert set(gh.repo(GH_REPO).labels) == set(labels)


def test_labels_on_a_missing_repository_name_the_problem(tmp_path, cli, gh, monkeypatch):
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    res = cli("init", git_repo(tmp_path / "models"), "--repository", "nobody/nothing")
    assert res.code == 2 and "nobody/nothing" in res.err and "404" in res.err


def test_the_issue_form_is_design_section_3(tmp_path):
    form = yaml.safe_load(scaffold.issue_form("privacy@lab.example"))
    assert form["labels"] == ["removal-request"]
    preamble, *fields = form["body"]
    assert preamble["type"] == "markdown"
    assert "Do not paste personal data" in preamble["attributes"]["value"]
    assert "privacy@lab.example" in preamble["attributes"]["value"]
    assert [f["attributes"]["label"] for f in fields] == FORM_LABELS
    assert [f["type"] for f in fields] == ["textarea", "dropdown", "dropdown", "textarea", "checkboxes"]
    assert [f["validations"]["required"] for f in fields[:4]] == [True, True, True, False]
    assert fields[1]["attributes"]["options"] == RELATIONSHIP
    assert fields[2]["attributes"]["options"] == REASON
    assert fields[4]["attributes"]["options"] == [{"label": CONFIRMATION, "required": True}]
    assert list(scaffold.LABELS) == BOT_LABELS


def test_a_filled_in_form_parses_as_a_removal_request():
    """What GitHub renders from the form is what the bot's parser reads."""
    form = yaml.safe_load(scaffold.issue_form("privacy@lab.example"))
    answers = [
        "acme/fw\nhttps://github.com/acme/fw/blob/main/src/f1.c",
        RELATIONSHIP[0],
        REASON[0],
        "_No response_",
        f"- [X] {CONFIRMATION}",
    ]
    body = "\n\n".join(
        f"### {f['attributes']['label']}\n\n{a}" for f, a in zip(form["body"][1:], answers, strict=True)
    )
    request = parse_removal_request(body)
    assert isinstance(request, RemovalRequest), request
    assert [s.raw for s in request.selectors] == answers[0].splitlines()
    assert (request.relationship, request.reason, request.details) == (RELATIONSHIP[0], REASON[0], None)


REGENERATE_FORM = (
    'python -c "import tomllib, pathlib; from kiki_bot import scaffold; '
    "c = tomllib.loads(pathlib.Path('examples/devstral-cpp-lora/kiki.toml').read_text())['provider']['private_contact']; "
    'pathlib.Path(scaffold.FORM).write_text(scaffold.issue_form(c))"'
)


def test_this_repository_has_the_same_form():
    contact = tomllib.loads((EXAMPLE / "kiki.toml").read_text())["provider"]["private_contact"]
    assert (REPO / scaffold.FORM).read_text() == scaffold.issue_form(contact), (
        f"regenerate: {REGENERATE_FORM}"
    )
