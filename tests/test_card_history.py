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
from rendering import page, visible
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
    res = cli("card", "import", HAND_WRITTEN, "-C", repo, "--date", "2026-12-01")
    assert res.code == 0, res.err
    # What the import makes is exactly the example's committed card, and a second import changes nothing.
    committed = EXAMPLE / "cards" / "devstral-cpp-lora"
    for name in ("card.json", "README.md", "CHANGELOG.md"):
        assert (repo / "cards" / "devstral-cpp-lora" / name).read_bytes() == (committed / name).read_bytes(), name
    before = snapshot(repo)
    assert cli("card", "import", HAND_WRITTEN, "-C", repo, "--date", "2026-12-01").code == 0
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
        "Ailiance-fr/devstral-cpp-lora v0.4.4: 2026-12-01; v0.4.3: 2026-05-06; v0.4.2: 2026-03-30; "
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
    assert cli("card", "render", "-C", root, "--version", "0.5.0", "--date", "2026-12-01").code == 0
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
    from huggingface_hub import CommitOperationAdd

    hf_api.create_repo(HUB_REPO, exist_ok=True)
    staged = [CommitOperationAdd("README.md", readme_of(root).encode()), CommitOperationAdd("adapters.safetensors", weights)]
    hf_api.create_commit(HUB_REPO, staged, commit_message=f"tiny-lora v{version}", create_pr=True)
    res = cli("publish", f"tiny-lora/v{version}", "-C", root)
    assert res.code == 0, res.err


def _flagged_revision_says_it(hf_api, first: str, first_readme: str, number: int) -> None:
    """`flag`: whoever downloads `revision="v0.1.0"` reads the removal atop its README; the weights are the same
    bytes, the tag's commit sits on top of the original one, which still serves the original card by its hash."""
    from pathlib import Path

    from huggingface_hub import ModelCard, hf_hub_download, snapshot_download

    folder = Path(snapshot_download(HUB_REPO, revision="v0.1.0"))
    readme = (folder / "README.md").read_text()
    assert (folder / "adapters.safetensors").read_bytes() == b"weights trained with acme-fw#3"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["README.md", "adapters.safetensors"]
    assert open(hf_hub_download(HUB_REPO, "README.md", revision="v0.1.0")).read() == readme
    front = first_readme[:first_readme.index("\n---\n", 4) + 5]
    assert readme.startswith(front) and readme.endswith(first_readme[len(front):])
    ModelCard(readme).validate()  # the Hub's card validator reads the same front matter
    assert page(readme[len(front):]).elements[0][0] == "blockquote"
    top = visible(readme[len(front):])[:300]
    assert top.startswith("Superseded. Version 0.1.0 was trained on records since removed")
    assert f"(removal request R-{number})" in top and "Use version 0.1.1 instead, trained without them." in top
    assert links(readme[len(front):])[:2] == [f"https://github.com/test-lab/models/issues/{number}",
                                              f"https://huggingface.co/{HUB_REPO}/tree/v0.1.1"]
    log = hf_api.list_repo_commits(HUB_REPO, revision="v0.1.0")
    assert log[1].commit_id == first
    assert open(hf_hub_download(HUB_REPO, "README.md", revision=first)).read() == first_readme
    assert [b.name for b in hf_api.list_repo_refs(HUB_REPO).branches] == ["main"]


def _remove_after_publishing(env, gh, hf_api, cli, policy: str) -> tuple[str, str, int, bytes]:
    """v0.1.0 published with acme-fw#3, whose removal is then approved, purged and recorded as released in
    v0.1.1: the commit v0.1.0's tag names, its README, the removal issue and v0.1.1's weights."""
    edit_toml(env / "kiki.toml", "[policy]\n", f'[policy]\nsuperseded = "{policy}"\n')
    _publish(cli, env, hf_api, "0.1.0", "2026-05-06", b"weights trained with acme-fw#3")
    first, first_readme = hf_api.list_repo_refs(HUB_REPO).tags[0].target_commit, readme_of(env)
    number = gh.open_issue(GH_REPO, "Removal", body("record:acme-fw#3"), user="octo-dev", labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(number, body("record:acme-fw#3"))).code == 0
    assert handle(cli, env, "issue_comment", comment_event(number, "/kiki approve", "maint")).code == 0
    assert cli("removal", "purge", f"R-{number}", "-C", env, "--actor", "maint").code == 0
    weights = b"weights trained without acme-fw#3"
    path = env / "compliance" / "removals.jsonl"
    ledgerfile.append_once(path, "released", {"id": f"R-{number}", "issue": number}, "kiki-bot[bot]",
                           ledgerfile.read(path)[-1].at, adapter="tiny-lora", version="0.1.1", train_sha256="0" * 64,
                           adapter_sha256=hashlib.sha256(weights).hexdigest())
    return first, first_readme, number, weights


@pytest.mark.parametrize("policy", ["flag", "gate", "delete"])
def test_versions_built_before_a_removal_are_listed_and_the_policy_applied_on_the_hub(
        env, gh, hub, hf_api, cli, policy):  # noqa: F811
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RevisionNotFoundError

    first, first_readme, number, weights = _remove_after_publishing(env, gh, hf_api, cli, policy)
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
    if policy == "flag":  # what publish does to the tag, said on the card and in the changelog
        moved = (f"its tag `v0.1.0` is moved to a commit on top of it whose README opens with a notice of the removal "
                 "(the weights unchanged; the original commit stays reachable by its hash)")
        assert moved in line and moved in changelog
    assert ("## [0.1.0] - 2026-05-06 [YANKED]" in changelog) == (policy == "delete")
    old_link = f"https://huggingface.co/{HUB_REPO}/blob/v0.1.0/README.md"
    assert (old_link in links(value(readme, "Version of the Summary:"))) == (policy != "delete")
    said = {"flag": ("flagged in the changelog, and its Hub tag moved to a commit that adds a notice of the removal "
                     "atop its README (the weights unchanged), so a download of that revision says so; the original "
                     "commit stays reachable by its hash"),
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
    if policy == "flag":
        _flagged_revision_says_it(hf_api, first, first_readme, number)
    refs = hf_api.list_repo_refs(HUB_REPO)
    assert hf_api.repo_info(HUB_REPO).gated == ("manual" if policy == "gate" else False)
    new = hf_hub_download(HUB_REPO, "adapters.safetensors", revision="v0.1.1")
    assert open(new, "rb").read() == weights
    # Publishing again changes nothing on the Hub.
    assert cli("publish", "tiny-lora/v0.1.1", "-C", env).code == 0
    assert len(hf_api.list_repo_commits(HUB_REPO)) == commits
    assert hf_api.list_repo_refs(HUB_REPO) == refs


def test_flagging_a_revision_finishes_a_stopped_run_and_a_later_notice_replaces_the_earlier(hub, hf_api):
    from huggingface_hub import CommitOperationAdd, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    from kiki_bot.core.cardhistory import flag_readme
    from kiki_bot.shells.hub import Hub
    from kiki_bot.shells.settings import Settings

    card = "---\nlicense: mit\n---\n# tiny-lora\n\nThe card.\n"
    hf_api.create_repo(HUB_REPO)
    ops = [CommitOperationAdd("README.md", card.encode()), CommitOperationAdd("adapters.safetensors", b"old")]
    original = hf_api.create_commit(HUB_REPO, ops, commit_message="v0.1.0").oid
    hf_api.create_tag(HUB_REPO, tag="v0.1.0")
    # A run stopped between deleting the tag and re-creating it leaves only its branch.
    branch = "kiki-bot-flag-v0.1.0"
    hf_api.create_branch(HUB_REPO, branch=branch, revision="v0.1.0")
    flagged = flag_readme(card, "> Superseded by 0.1.1.")
    head = hf_api.create_commit(HUB_REPO, [CommitOperationAdd("README.md", flagged.encode())], commit_message="flag",
                                revision=branch).oid
    hf_api.delete_tag(HUB_REPO, tag="v0.1.0")
    shell = Hub(Settings())
    shell.flag_revision(HUB_REPO, "v0.1.0", "> Superseded by 0.1.1.")
    refs = hf_api.list_repo_refs(HUB_REPO)
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v0.1.0", head)]
    assert [b.name for b in refs.branches] == ["main"]
    shell.flag_revision(HUB_REPO, "v0.1.0", "> Superseded by 0.1.1.")
    assert hf_api.list_repo_refs(HUB_REPO) == refs
    # A later removal supersedes it again: one notice, the new one, on top of the same original commit.
    shell.flag_revision(HUB_REPO, "v0.1.0", "> Superseded by 0.1.2.")
    text = open(hf_hub_download(HUB_REPO, "README.md", revision="v0.1.0")).read()
    assert text == flag_readme(card, "> Superseded by 0.1.2.") and "0.1.1" not in text
    assert text.startswith("---\nlicense: mit\n---\n") and text.endswith("# tiny-lora\n\nThe card.\n")
    assert open(hf_hub_download(HUB_REPO, "adapters.safetensors", revision="v0.1.0"), "rb").read() == b"old"
    assert open(hf_hub_download(HUB_REPO, "README.md", revision=original)).read() == card
    # What the Hub refuses, the emulator refuses: a branch twice, deleting `main`.
    with pytest.raises(HfHubHTTPError) as twice:
        hf_api.create_branch(HUB_REPO, branch="main")
    with pytest.raises(HfHubHTTPError) as main:
        hf_api.delete_branch(HUB_REPO, branch="main")
    assert (twice.value.response.status_code, main.value.response.status_code) == (409, 403)


def test_flag_says_so_when_the_hub_has_no_tag_of_the_superseded_version(env, gh, hub, hf_api, cli):  # noqa: F811
    _, _, number, weights = _remove_after_publishing(env, gh, hf_api, cli, "flag")
    hf_api.delete_tag(HUB_REPO, tag="v0.1.0")
    _publish(cli, env, hf_api, "0.1.1", "2026-06-01", weights)
    notice = [c.body for c in gh.comments(GH_REPO, number) if "is published" in c.body]
    assert notice and ("Version **0.1.0** was built before the removal and may contain them: flagged in the "
                       "changelog; the Hub has no tag `v0.1.0` whose README could say so.") in notice[0]
    assert [t.name for t in hf_api.list_repo_refs(HUB_REPO).tags] == ["v0.1.1"]
