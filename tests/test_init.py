"""`kiki-bot init`: a model repository that passes `card check` at once, never overwritten by surprise,
labels created through the GitHub API (emulated), and the removal-request form exactly as DESIGN.md says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, REPO

from kiki_bot.core.issueform import RemovalRequest, parse_removal_request
from kiki_bot.repo import skeleton

GH_REPO = "test-lab/models"
PIN = "4f8c1e0b9d2a7c6e5f4a3b2c1d0e9f8a7b6c5d4e"  # a kiki-bot commit, as `init --ref` takes it
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


# What only the user can fill in: (file, key, the placeholder `init` writes when no repository is known).
PLACEHOLDERS = [
    ("kiki.toml", "provider.name", "Example Lab"),
    ("kiki.toml", "provider.contact", "https://github.com/example-org/models/issues"),
    ("kiki.toml", "provider.website", "https://example.org"),
    ("kiki.toml", "provider.copyright_policy_url", "https://example.org/copyright-policy"),
    ("kiki.toml", "provider.private_contact", "privacy@example.org"),
    ("kiki.toml", "hub.namespace", "example-org"),
    ("adapters/example-lora.toml", "description", "Example LoRA adapter written by `kiki-bot init`: replace it with your own."),
    ("adapters/example-lora.toml", "hub_repo", "example-org/example-lora"),
    ("adapters/example-lora.toml", "intended_use", "Describe what the adapter is for and who should use it."),
    ("adapters/example-lora.toml", "limitations", "Describe what the adapter must not be used for and where it fails."),
    ("adapters/example-lora.toml", "illegal_content_measures",
     "Describe the measures taken to keep illegal content out of the training data."),
]


def fill_in(repo: Path) -> None:
    """What the user does in an editor after `init`: their own identity, contact and adapter texts."""
    own = {"Example Lab": "Octo Lab SAS", "https://example.org": "https://octo.example",
           "https://example.org/copyright-policy": "https://octo.example/copyright",
           "privacy@example.org": "privacy@octo.example", "example-org": "octo-org",
           "https://github.com/example-org/models/issues": "https://github.com/octo-org/models/issues",
           "example-org/example-lora": "octo-org/example-lora"}
    for rel, key, value in PLACEHOLDERS:
        path = repo / rel
        text = path.read_text()
        words = own.get(value, f"Our own words for {key}.")
        path.write_text(text.replace(f"= {json.dumps(value)}", f"= {json.dumps(words)}", 1))


def test_init_writes_a_draft_whose_placeholders_card_check_names(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models")
    res = cli("init", "--ref", PIN, repo)
    assert res.code == 0, res.err
    files = snapshot(repo)
    assert sorted(set(files) - {".gitignore", ".gitattributes"}) == WRITTEN
    assert files[".gitignore"] == b".kiki/\n"
    for name in WRITTEN:
        assert f"wrote {repo / name}" in res.err
    for step in ("hub-publish", "HF_TOKEN", "self-hosted, macOS, ARM64", "git tag example-lora/v0.1.0"):
        assert step in res.err
    card = json.loads(files["cards/example-lora/card.json"])
    assert card["header"]["version"] == "0.1.0" and card["published_at"] is None  # a draft
    assert cli("ledger", "verify", "-C", repo).code == 0
    assert cli("card", "render", "-C", repo).code == 0 and snapshot(repo) == files  # already what the data says

    check = cli("card", "check", "-C", repo)
    assert check.code == 1
    named = [line.strip() for line in check.err.splitlines() if "not filled in" in line]
    assert len(named) == len(PLACEHOLDERS), check.err
    for (rel, key, value), line in zip(PLACEHOLDERS, named, strict=True):
        assert line.startswith(f"{rel}: key `{key}`: not filled in") and json.dumps(value) in line, line
    assert json.loads(cli("card", "check", "--json", "-C", repo).out)["example-lora"]["placeholders"] != []

    fill_in(repo)
    assert cli("card", "render", "-C", repo).code == 0
    check = cli("card", "check", "-C", repo)
    assert check.code == 0, check.err


def test_init_fills_in_what_it_knows(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models", origin="git@github.com:octo-org/models.git")
    assert cli("init", "--ref", PIN, repo, "--private-contact", "privacy@octo.example").code == 0
    files = snapshot(repo)
    config = tomllib.loads(files["kiki.toml"].decode())
    assert config["hub"]["namespace"] == "octo-org"  # from the origin remote
    assert config["provider"]["private_contact"] == "privacy@octo.example"
    assert config["provider"]["contact"] == "https://github.com/octo-org/models/issues"
    assert "privacy@octo.example" in files[".github/ISSUE_TEMPLATE/removal-request.yml"].decode()
    check = cli("card", "check", "-C", repo)
    named = {line.strip().split(":")[0] + line.split("`")[1] for line in check.err.splitlines() if "not filled in" in line}
    assert named == {rel + key for rel, key, _ in PLACEHOLDERS
                     if key not in ("provider.contact", "provider.private_contact", "hub.namespace", "hub_repo")}


def test_the_refresh_caller_watches_the_default_branch(tmp_path, cli, no_github):
    """A push trigger cannot say "the default branch", so init writes its name: origin's HEAD, else the branch
    checked out, else main (also for a name a branch filter would read as a pattern)."""
    def watched(root: Path) -> list[str]:
        assert cli("init", root, "--ref", PIN).code == 0
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
    assert cli("init", "--ref", PIN, "-C", repo, "--repository", GH_REPO).code == 0
    (repo / "kiki.toml").write_text((repo / "kiki.toml").read_text().replace("Example Lab", "My Lab"))
    before = snapshot(repo)
    res = cli("init", "--ref", PIN, repo, "--repository", GH_REPO)
    assert res.code == 2
    assert "exist already; rerun with --force" in res.err and str(repo / "kiki.toml") in res.err
    assert snapshot(repo) == before
    assert cli("init", "--ref", PIN, repo, "--repository", GH_REPO, "--force").code == 0
    assert "Example Lab" in (repo / "kiki.toml").read_text()
    assert (repo / ".gitignore").read_text() == ".kiki/\n"  # added once


def test_one_existing_file_is_enough_to_refuse(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models")
    mine = repo / ".github" / "workflows" / "kiki-release.yml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own\n")
    res = cli("init", "--ref", PIN, repo)
    assert res.code == 2 and str(mine) in res.err and "1 file(s)" in res.err
    assert snapshot(repo) == {".github/workflows/kiki-release.yml": b"# my own\n"}


def test_bad_options_are_refused_before_anything_is_written(tmp_path, cli, no_github, monkeypatch):
    repo = git_repo(tmp_path / "models")
    res = cli("init", "--ref", PIN, repo, "--repository", "not a repo")
    assert res.code == 2 and "--repository" in res.err and "owner/name" in res.err
    res = cli("init", "--ref", PIN, repo, "--private-contact", "a@b.eu\nEvil: yes")
    assert res.code == 2 and "private_contact" in res.err
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_some_token")
    res = cli("init", "--ref", PIN, repo)
    assert res.code == 2 and "needed to create the labels" in res.err
    assert snapshot(repo) == {}


def test_init_creates_the_labels_once(tmp_path, cli, gh, monkeypatch):
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    gh.create_repo(GH_REPO)
    gh.open_issue(GH_REPO, "an old one", labels=["invalid"])  # a label that exists already is left alone
    repo = git_repo(tmp_path / "models", origin=f"https://github.com/{GH_REPO}.git")
    res = cli("init", "--ref", PIN, repo)
    assert res.code == 0, res.err
    labels = gh.repo(GH_REPO).labels
    assert set(BOT_LABELS) <= set(labels)
    assert labels["removal-request"].color == skeleton.LABELS["removal-request"][0]
    assert labels["invalid"].color == "ededed"
    posts = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/labels")]
    assert len(posts) == len(BOT_LABELS)
    assert cli("init", "--ref", PIN, repo, "--force").code == 0  # again: every label exists, nothing fails
    assert set(gh.repo(GH_REPO).labels) == set(labels)


def test_labels_on_a_missing_repository_name_the_problem(tmp_path, cli, gh, monkeypatch):
    monkeypatch.setenv("KIKI_GITHUB_THROTTLE", "0")
    res = cli("init", "--ref", PIN, git_repo(tmp_path / "models"), "--repository", "nobody/nothing")
    assert res.code == 2 and "nobody/nothing" in res.err and "404" in res.err


def test_the_issue_form_is_design_section_3(tmp_path):
    form = yaml.safe_load(skeleton.issue_form("privacy@lab.example"))
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
    assert list(skeleton.LABELS) == BOT_LABELS


def test_a_filled_in_form_parses_as_a_removal_request():
    """What GitHub renders from the form is what the bot's parser reads."""
    form = yaml.safe_load(skeleton.issue_form("privacy@lab.example"))
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
    'python -c "import tomllib, pathlib; from kiki_bot.repo import skeleton; '
    "c = tomllib.loads(pathlib.Path('examples/devstral-cpp-lora/kiki.toml').read_text())['provider']['private_contact']; "
    'pathlib.Path(skeleton.FORM).write_text(skeleton.issue_form(c))"'
)


def test_this_repository_has_the_same_form():
    contact = tomllib.loads((EXAMPLE / "kiki.toml").read_text())["provider"]["private_contact"]
    assert (REPO / skeleton.FORM).read_text() == skeleton.issue_form(contact), (
        f"regenerate: {REGENERATE_FORM}"
    )


# ---------------------------------------------------------------- the pin: the commit of the kiki-bot that runs
def dist_info(site: Path, direct_url: dict | None) -> Path:
    """A kiki-bot distribution's metadata as pip writes it (PEP 610 `direct_url.json` for a URL install)."""
    info = site / "kiki_bot-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kiki-bot\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return site


def committed_checkout(path: Path) -> str:
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    git_repo(path)
    (path / "pyproject.toml").write_text("[project]\nname = 'kiki-bot'\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "kiki-bot"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def init_with(site: Path, repo: Path) -> subprocess.CompletedProcess:
    """`kiki-bot init` in a process whose installed kiki-bot metadata is the one under `site`."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY")}
    env["PYTHONPATH"] = str(site)  # ahead of site-packages: importlib.metadata finds this kiki-bot first
    return subprocess.run([sys.executable, "-m", "kiki_bot", "init", str(repo), "--repository", GH_REPO],
                          capture_output=True, text=True, env=env, timeout=120)


def pins(repo: Path) -> set[str]:
    return {job["uses"].rsplit("@", 1)[1] for path in (repo / ".github" / "workflows").glob("kiki-*.yml")
            for job in yaml.safe_load(path.read_text())["jobs"].values()}


def test_a_vcs_install_pins_its_commit(tmp_path):
    sha = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
    site = dist_info(tmp_path / "site", {"url": "https://github.com/kiki-bot/kiki-bot",
                                          "vcs_info": {"vcs": "git", "commit_id": sha, "requested_revision": "main"}})
    res = init_with(site, git_repo(tmp_path / "models"))
    assert res.returncode == 0, res.stderr
    assert pins(tmp_path / "models") == {sha}
    release = (tmp_path / "models" / ".github/workflows/kiki-release.yml").read_text()
    assert f"@{sha} # kiki-bot 0.1.0, the commit `kiki-bot init` ran from" in release
    assert "# v0.1.0" not in release and "5a54fa9" not in release


def test_a_checkout_install_pins_its_head_only_when_clean(tmp_path):
    checkout = tmp_path / "kiki-bot"
    head = committed_checkout(checkout)
    site = dist_info(tmp_path / "site", {"url": checkout.as_uri(), "dir_info": {"editable": True}})
    assert init_with(site, git_repo(tmp_path / "clean")).returncode == 0
    assert pins(tmp_path / "clean") == {head}
    (checkout / "pyproject.toml").write_text("[project]\nname = 'kiki-bot'\nversion = '9'\n")  # not committed
    res = init_with(site, git_repo(tmp_path / "dirty"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "uncommitted changes" in res.stderr and "--ref" in res.stderr
    assert snapshot(tmp_path / "dirty") == {}


@pytest.mark.parametrize("direct_url,why", [
    (None, "not installed from git or from a checkout"),
    ({"url": "https://example.org/kiki_bot-0.1.0.whl", "archive_info": {}}, "not from git"),
])
def test_without_a_commit_init_says_how_to_get_one(tmp_path, direct_url, why):
    res = init_with(dist_info(tmp_path / "site", direct_url), git_repo(tmp_path / "models"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert why in res.stderr and "pip install 'kiki-bot @ git+https://github.com/kiki-bot/kiki-bot@" in res.stderr
    assert "--ref" in res.stderr and snapshot(tmp_path / "models") == {}


def test_ref_pins_that_commit_and_must_be_a_full_sha(tmp_path, cli, no_github):
    repo = git_repo(tmp_path / "models")
    for bad in ("v0.1.0", "5a54fa9", "g" * 40):
        res = cli("init", repo, "--ref", bad)
        assert res.code == 2 and "--ref" in res.err and "40-hex" in res.err, res.err
    assert snapshot(repo) == {}
    assert cli("init", repo, "--ref", PIN.upper()).code == 0
    assert pins(repo) == {PIN}
    assert "# the kiki-bot commit given to `kiki-bot init --ref`" in (repo / ".github/workflows/kiki-release.yml").read_text()


# ---------------------------------------------------------------- byte-exact under autocrlf
def test_a_crlf_checkout_keeps_data_manifests_and_ledger_byte_exact(tmp_path, cli, no_github):
    import datetime as dt

    from kiki_bot.repo import ledgerfile

    repo = git_repo(tmp_path / "models")
    assert cli("init", "--ref", PIN, repo, "--repository", GH_REPO).code == 0
    at = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    path = repo / "compliance" / "removals.jsonl"
    ledgerfile.append_once(path, "requested", {"id": "R-1", "issue": 1}, "octo-dev", at,
                           selectors=["record:example-source#1"], body_sha256="a" * 64, deadline=at + dt.timedelta(days=30),
                           adapters=["example-lora"])
    ledgerfile.append_once(path, "rejected", {"id": "R-1", "issue": 1}, "maint", at, reason="Not ours.\nSee the licence.")
    assert cli("card", "render", "-C", repo).code == 0
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "init"], check=True)
    clone = tmp_path / "crlf"
    subprocess.run([*git, "-c", "core.autocrlf=true", "clone", "-q", str(repo), str(clone)], check=True)
    assert b"\r\n" in (clone / "kiki.toml").read_bytes()  # autocrlf is really on for the rest
    for rel in ("compliance/removals.jsonl", "data/example-source/part-000.jsonl", "data/example-source/MANIFEST.json",
                "cards/example-lora/card.json"):
        assert (clone / rel).read_bytes() == (repo / rel).read_bytes(), rel
    res = cli("ledger", "verify", "-C", clone)
    assert res.code == 0, res.err
    check = cli("card", "check", "-C", clone)
    assert [line for line in check.err.splitlines() if "not filled in" not in line][1:-1] == [], check.err
