"""A card's version history (issue 15, points 4-6): versions imported from a hand-written card, every earlier
version linked with its Hub revision and placement date, published versions never rewritten (a purge since is
*pending retrain*), and the versions built before a removal listed, with the `superseded` policy applied on
the Hub through huggingface_hub."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from conftest import EXAMPLE
from factory import adapter, edit_toml, make_project, mark_published, record, snapshot, write_jsonl
from rendering import page
from test_removal_flow import GH_REPO, body, comment_event, env, handle, issue_event  # noqa: F401

from kiki_bot.repo import ledgerfile, manifests, trainset
from kiki_bot.repo.project import Project

HAND_WRITTEN = EXAMPLE / "history" / "README-v0.4.3.md"
HUB_REPO = "test-lab/tiny-lora"


def card_of(root, adapter: str = "tiny-lora") -> dict:
    return json.loads((root / "cards" / adapter / "card.json").read_text())


def readme_of(root, adapter: str = "tiny-lora") -> str:
    return (root / "cards" / adapter / "README.md").read_text()


def value(readme: str, label: str) -> str:
    line = next(line for line in readme.splitlines() if line.startswith(f"**{label}**"))
    return line.removeprefix(f"**{label}**").strip()


def links(markdown: str) -> list[str]:
    return [dict(attrs)["href"] for tag, attrs in page(markdown).elements if tag == "a"]


# ---------------------------------------------------------------- point 4: import and links
def test_the_example_starts_from_its_hand_written_history(tmp_path, cli):
    repo = tmp_path / "example"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".kiki", "cards"))
    res = cli("card", "import", HAND_WRITTEN, "-C", repo, "--date", "2026-06-01")
    assert res.code == 0, res.err
    # What the import makes is exactly the example's committed card, and a second import changes nothing.
    committed = EXAMPLE / "cards" / "devstral-cpp-lora"
    for name in ("card.json", "README.md", "CHANGELOG.md"):
        assert (repo / "cards" / "devstral-cpp-lora" / name).read_bytes() == (committed / name).read_bytes(), name
    before = snapshot(repo)
    assert cli("card", "import", HAND_WRITTEN, "-C", repo, "--date", "2026-06-01").code == 0
    assert snapshot(repo) == before

    card = card_of(repo, "devstral-cpp-lora")
    history = card["header"]["previous_versions"]
    assert [(v["version"], v["placed_on_market"], v["imported"]) for v in history] == [
        ("0.4.0", "2026-01-12", True), ("0.4.1", "2026-02-16", True), ("0.4.2", "2026-03-30", True),
        ("0.4.3", "2026-05-06", True)]
    assert history[-1]["sections"]["Latest date of data acquisition/collection for model training"] == "10/2025"
    assert [e["version"] for e in card["changelog"]] == ["0.4.4", "0.4.3", "0.4.2", "0.4.1", "0.4.0"]
    assert card["header"]["version"] == "0.4.4" and card["published_at"] is None

    readme = readme_of(repo, "devstral-cpp-lora")
    version_line = value(readme, "Version of the Summary:")
    assert links(version_line) == [f"https://huggingface.co/Ailiance-fr/devstral-cpp-lora/blob/v0.4.{n}/README.md"
                                   for n in range(4)]
    assert value(readme, "Date of placement of the model on the Union market:") == (
        "Ailiance-fr/devstral-cpp-lora v0.4.4: 2026-06-01; v0.4.3: 2026-05-06; v0.4.2: 2026-03-30; "
        "v0.4.1: 2026-02-16; v0.4.0: 2026-01-12 (each version's release date)")
    changelog = (repo / "cards" / "devstral-cpp-lora" / "CHANGELOG.md").read_text()
    assert "## [0.4.0] - 2026-01-12" in changelog and "LoRA rank 16 on the q/k/v/o projections" in changelog
    assert "v0.4.3 and earlier were written by hand" in changelog
    # v0.4.0 already had these sources: the first generated version counts them, it does not say they were added
    first = changelog.split("## [0.4.4]")[1].split("## [0.4.3]")[0]
    assert "Source esp-idf" not in first and "esp-idf 600 records (125,340 tokens)" in first, first
    assert cli("card", "check", "-C", repo).code == 0


@pytest.mark.parametrize("text, where, words", [
    ("# A card\n\nNo history here.\n", "", "no changelog table"),
    ("| Version | Date | Changes |\n|---|---|---|\n| v0.4 | 2026-01-12 | x |\n", ":3", "not a semantic version"),
    ("| Version | Date | Changes |\n|---|---|---|\n| 0.4.0 | 12 Jan | x |\n", ":3", "date '12 Jan'"),
    ("| Version | Date | Changes |\n|---|---|---|\n| 0.4.0 | 2026-01-12 | x |\n| v0.4.0 | 2026-01-13 | y |\n", ":4",
     "listed twice (first on line 3)"),
    ("**Version of the Summary:** v0.5.0\n\n| Version | Date | Changes |\n|---|---|---|\n| 0.4.0 | 2026-01-12 | x |\n",
     "", "says '0.5.0' but the newest changelog row is 0.4.0"),
])
def test_a_card_that_cannot_be_imported_is_bad_input_naming_file_and_line(tmp_path, cli, text, where, words):
    root = make_project(tmp_path / "repo")
    hand = tmp_path / "README.md"
    hand.write_text(text)
    before = snapshot(root)
    res = cli("card", "import", hand, "-C", root)
    assert res.code == 2 and f"{hand}{where}: " in res.err and words in res.err, res.err
    assert "Traceback" not in res.err and snapshot(root) == before


def test_import_is_refused_once_kiki_bot_has_published(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    assert cli("card", "render", "-C", root, "--version", "0.5.0", "--date", "2026-06-01").code == 0
    mark_published(root, "tiny-lora")
    before = snapshot(root)
    res = cli("card", "import", HAND_WRITTEN, "-C", root)
    assert res.code == 2 and "kiki-bot has published v0.5.0 of tiny-lora already" in res.err, res.err
    assert snapshot(root) == before


def test_each_card_links_the_hub_revision_and_placement_of_every_earlier_version(tmp_path, cli):
    root = make_project(tmp_path / "repo")
    for version, day in (("0.1.0", "2026-05-06"), ("0.2.0", "2026-06-01")):
        assert cli("card", "render", "-C", root, "--version", version, "--date", day).code == 0
        mark_published(root, "tiny-lora", f"{day}T12:00:00Z")
    assert cli("card", "render", "-C", root, "--version", "0.3.0", "--date", "2026-07-01").code == 0
    card = card_of(root)
    [v1, v2] = card["header"]["previous_versions"]
    assert (v1["revision"], v1["placed_on_market"]) == ("v0.1.0", "2026-05-06")
    assert v1["published_at"] == "2026-05-06T12:00:00Z"
    assert (v2["revision"], v2["placed_on_market"], v2["imported"]) == ("v0.2.0", "2026-06-01", False)
    assert v2["fingerprint"]["sources"] == {"acme-fw": [20, 210]} and v2["ledger_seq"] == 0
    readme = readme_of(root)
    assert links(value(readme, "Version of the Summary:")) == [
        f"https://huggingface.co/{HUB_REPO}/blob/v{v}/README.md" for v in ("0.1.0", "0.2.0")]
    assert value(readme, "Date of placement of the model on the Union market:") == (
        f"{HUB_REPO} v0.3.0: 2026-07-01; v0.2.0: 2026-06-01; v0.1.0: 2026-05-06 (each version's release date)")


# ---------------------------------------------------------------- point 5: published versions are immutable
def _purge(cli, root, *lines: str) -> str:
    request = root.parent / "request.md"
    request.write_text(body(*lines))
    rid = cli("removal", "file", "--body", request, "--json", "-C", root).json()["request"]
    assert cli("removal", "purge", rid, "-C", root).code == 0
    return rid


def test_a_published_version_is_never_rewritten_and_a_purge_since_is_pending_retrain(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    root = make_project(tmp_path / "repo")
    assert cli("card", "render", "-C", root, "--version", "0.1.0", "--date", "2026-05-06").code == 0
    mark_published(root, "tiny-lora")
    published = {p: p.read_bytes() for p in (root / "cards" / "tiny-lora").iterdir()}
    rid = _purge(cli, root, "record:acme-fw#3")

    assert cli("card", "render", "-C", root).code == 0
    assert {p: p.read_bytes() for p in (root / "cards" / "tiny-lora").iterdir()} == published
    res = cli("card", "check", "-C", root, "--json")
    assert res.code == 0, res.out
    [notice] = res.json()["tiny-lora"]["pending_retrain"]
    assert notice == (f"v0.1.0: pending retrain: 1 record(s) removed since it was published ({rid}); the next "
                      "release trains without them")
    assert f"notice: {notice}" in cli("card", "check", "-C", root).err

    # Data changed in a way no removal explains: drift, a failure.
    path = root / "data" / "acme-fw" / "part-000.jsonl"
    path.write_text(path.read_text() + json.dumps(record("acme-fw", 99, "int g(void);")) + "\n")
    manifests.refresh(path.parent)
    res = cli("card", "check", "-C", root)
    assert res.code == 1
    assert "v0.1.0 is published and its card is never rewritten, but the data changed in a way no removal explains" \
        in res.err
    assert "source acme-fw: 20 records (210 tokens) in published v0.1.0, 20 (207) now, and the ledger records 1 " \
           "removed since" in res.err


def test_a_published_version_is_compared_with_the_training_set_it_records(tmp_path, cli):
    ad = adapter(["acme-fw"])
    ad["training"]["valid_fraction"] = 0.3
    root = make_project(tmp_path / "repo", adapters={"tiny-lora": ad})
    project = Project(root)
    recorded = trainset.assemble(project, project.adapter("tiny-lora"), tmp_path / "set",
                                trainset.rule(project, [])).train_sha256
    facts = tmp_path / "run.json"
    facts.write_text(json.dumps({"train_sha256": recorded}))
    assert cli("card", "render", "-C", root, "--version", "0.1.0", "--date", "2026-05-06", "--run", facts).code == 0
    mark_published(root, "tiny-lora")
    assert cli("card", "check", "-C", root).code == 0
    # One character of one record: the same counts, bytes and token estimate, another training set.
    recs = [record("acme-fw", i, f"int f{i}(void) {{ return {i if i != 7 else 8}; }}") for i in range(20)]
    write_jsonl(root / "data" / "acme-fw" / "part-000.jsonl", recs)
    manifests.refresh(root / "data" / "acme-fw")
    res = cli("card", "check", "-C", root)
    assert res.code == 1 and f"{recorded} recorded by published v0.1.0 (train_sha256)" in res.err, res.err


# ---------------------------------------------------------------- point 6: versions built before a removal
def _publish(cli, root, hf_api, version: str, day: str, weights: bytes) -> None:
    """What a release and the merge of its review PR leave: the card of `version` naming the weights staged
    as a Hub pull request of the release's title; then `publish` merges it, tags, releases and records it."""
    facts = root.parent / f"run-{version}.json"
    facts.write_text(json.dumps({"adapter_sha256": hashlib.sha256(weights).hexdigest()}))
    assert cli("card", "render", "-C", root, "--version", version, "--date", day, "--run", facts).code == 0
    hf_api.create_repo(HUB_REPO, exist_ok=True)
    hf_api.upload_file(path_or_fileobj=weights, path_in_repo="adapters.safetensors", repo_id=HUB_REPO,
                       commit_message=f"tiny-lora v{version}", create_pr=True)
    res = cli("publish", f"tiny-lora/v{version}", "-C", root)
    assert res.code == 0, res.err


@pytest.mark.parametrize("policy", ["flag", "gate", "delete"])
def test_versions_built_before_a_removal_are_listed_and_the_policy_applied_on_the_hub(
        env, gh, hub, hf_api, cli, policy):  # noqa: F811
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RevisionNotFoundError

    edit_toml(env / "kiki.toml", "[policy]\n", f'[policy]\nsuperseded = "{policy}"\n')
    _publish(cli, env, hf_api, "0.1.0", "2026-05-06", b"weights trained with acme-fw#3")
    number = gh.open_issue(GH_REPO, "Removal", body("record:acme-fw#3"), user="octo-dev", labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(number, body("record:acme-fw#3"))).code == 0
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "maint")).code == 0
    assert cli("removal", "purge", f"R-{number}", "-C", env, "--actor", "maint").code == 0
    weights = b"weights trained without acme-fw#3"
    path = env / "compliance" / "removals.jsonl"
    ledgerfile.append_once(path, "released", {"id": f"R-{number}", "issue": number}, "kiki-bot[bot]",
                           ledgerfile.read(path)[-1].at, adapter="tiny-lora", version="0.1.1", train_sha256="0" * 64,
                           adapter_sha256=hashlib.sha256(weights).hexdigest())
    _publish(cli, env, hf_api, "0.1.1", "2026-06-01", weights)

    card = card_of(env)
    assert card["superseded"] == [{"version": "0.1.0", "requests": [f"R-{number}"], "issues": [number],
                                   "issues_url": "https://github.com/test-lab/models/issues", "action": policy}]
    readme, changelog = readme_of(env), (env / "cards" / "tiny-lora" / "CHANGELOG.md").read_text()
    appendix = readme[readme.index("## Appendix G"):]
    line = next(x for x in appendix.splitlines() if x.startswith("- **0.1.0**"))
    assert f"superseded: built before the records of removal request R-{number}" in line
    assert f"https://github.com/test-lab/models/issues/{number}" in links(line)
    assert f"Superseded: built before the records of removal request R-{number}" in changelog
    assert ("## [0.1.0] - 2026-05-06 [YANKED]" in changelog) == (policy == "delete")
    old_link = f"https://huggingface.co/{HUB_REPO}/blob/v0.1.0/README.md"
    assert (old_link in links(value(readme, "Version of the Summary:"))) == (policy != "delete")
    said = {"flag": "flagged in the changelog; its Hub revision still serves it",
            "gate": "the Hub repository is gated, so downloads need the provider's approval",
            "delete": ("its tag is deleted and the Hub's `main` history squashed, so `revision=\"v0.1.0\"` no longer "
                       "resolves; the Hub pull request that staged it still serves its files at `refs/pr/1`, and the "
                       "refs of pull requests opened before the squash may still reach its commit, since the Hub's "
                       "API cannot delete a pull request's ref")}[policy]
    notice = [c.body for c in gh.comments(GH_REPO, number) if "is published" in c.body]
    assert notice and f"Version **0.1.0** was built before the removal and may contain them: {said}." in notice[0]

    commits = len(hf_api.list_repo_commits(HUB_REPO))
    if policy == "delete":
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download(HUB_REPO, "adapters.safetensors", revision="v0.1.0")
        assert commits == 1 and [t.name for t in hf_api.list_repo_refs(HUB_REPO).tags] == ["v0.1.1"]
        # Exactly what the notice says: the merged PR's ref still serves the old weights; only PR refs reach them.
        staged = hf_hub_download(HUB_REPO, "adapters.safetensors", revision="refs/pr/1")
        assert open(staged, "rb").read() == b"weights trained with acme-fw#3"
        repo = hub.repo(HUB_REPO)
        holding = {c.sha for c in repo.history.commits.values()
                   if b"with acme" in repo.content(c.files.get("adapters.safetensors", b""))}
        assert holding and holding <= {c.sha for d in repo.discussions.values() for c in repo.history.ancestry(d.head)}
    else:
        old = hf_hub_download(HUB_REPO, "adapters.safetensors", revision="v0.1.0")
        assert open(old, "rb").read() == b"weights trained with acme-fw#3"
    assert hf_api.repo_info(HUB_REPO).gated == ("manual" if policy == "gate" else False)
    new = hf_hub_download(HUB_REPO, "adapters.safetensors", revision="v0.1.1")
    assert open(new, "rb").read() == weights
    # Publishing again changes nothing on the Hub.
    assert cli("publish", "tiny-lora/v0.1.1", "-C", env).code == 0
    assert len(hf_api.list_repo_commits(HUB_REPO)) == commits
