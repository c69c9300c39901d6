"""The emulators, driven over HTTP by the real PyGithub and huggingface_hub (fixtures: emulator_fixtures)."""

from __future__ import annotations

import json
import urllib.request
import warnings
from pathlib import Path

import pytest
from github import Auth, Github, GithubException, UnknownObjectException
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from kiki_bot.demo.emulators import GitHubEmulator, HubEmulator, Server, serve
from kiki_bot.demo.emulators.hub import validate_card

CARD = "---\nlicense: apache-2.0\nlanguage: [en]\nbase_model: org/base\n---\n# Adapter\n"
WEIGHTS = bytes(range(256)) * 300  # 75 KB of binary: still uploaded "regular", base64 inside the commit

# --- GitHub ----------------------------------------------------------------------------------------


def test_branch_files_pull_merge_and_release(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r", files={"README.md": b"hello\n", "data/a.jsonl": b"{}\n"})
    repo = gh_client.get_repo("o/r")
    repo.create_git_ref("refs/heads/cards", repo.get_branch("main").commit.sha)

    repo.create_file("cards/a/README.md", "Add card", "card v1\n", branch="cards")
    readme = repo.get_contents("README.md", ref="cards")
    repo.update_file("README.md", "Edit", "hello 2\n", readme.sha, branch="cards")
    with pytest.raises(GithubException) as stale:
        repo.update_file("README.md", "Edit again", "x", readme.sha, branch="cards")
    with pytest.raises(GithubException) as missing_sha:
        repo.create_file("README.md", "Overwrite", "x", branch="cards")
    assert (stale.value.status, missing_sha.value.status) == (409, 422)
    assert [entry.path for entry in repo.get_contents("cards", ref="cards")] == ["cards/a"]
    with pytest.raises(UnknownObjectException):
        repo.get_contents("cards/a/missing.md", ref="cards")

    pull = repo.create_pull(base="main", head="cards", title="Cards", body="Regenerated")
    assert [p.number for p in repo.get_pulls(state="open", head="o:cards", base="main")] == [pull.number]
    assert [f.filename for f in pull.get_files()] == ["README.md", "cards/a/README.md"]
    pull.create_issue_comment("Card drift: none")
    pull.edit(body="Regenerated v2")
    assert pull.merge(merge_method="squash").merged
    merged = repo.get_pull(pull.number)
    assert (merged.merged, merged.state, merged.body) == (True, "closed", "Regenerated v2")
    assert repo.get_contents("cards/a/README.md").decoded_content == b"card v1\n"
    assert gh.files("o/r")["README.md"] == b"hello 2\n"
    assert repo.get_pulls(state="open").totalCount == 0

    repo.create_git_release("adapter/v1.0.0", "adapter 1.0.0", "Notes")
    assert repo.get_release("adapter/v1.0.0").body == "Notes"
    assert repo.get_git_ref("tags/adapter/v1.0.0").object.sha == repo.get_branch("main").commit.sha
    assert [r.tag_name for r in gh.releases("o/r")] == ["adapter/v1.0.0"]

    main_readme = repo.get_contents("README.md")
    repo.delete_file("README.md", "Remove", main_readme.sha)
    assert "README.md" not in gh.files("o/r")


def test_merges_are_three_way_and_refuse_conflicts(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r", files={"a": b"1", "b": b"1"})
    gh.push("o/r", "left", {"a": b"left"})
    gh.push("o/r", "right", {"b": b"right"})
    gh.push("o/r", "clash", {"a": b"clash"})
    repo = gh_client.get_repo("o/r")
    for head in ("left", "right"):
        repo.create_pull(base="main", head=head, title=head).merge()
    assert gh.files("o/r") == {"a": b"left", "b": b"right"}
    clash = repo.get_pull(gh.open_pull("o/r", "clash", title="Human edit", user="alice"))
    assert (clash.user.login, clash.head.ref, clash.base.ref) == ("alice", "clash", "main")
    with pytest.raises(GithubException) as conflict:
        clash.merge()
    assert conflict.value.status == 405
    assert [(p.number, p.state) for p in gh.pulls("o/r")] == [(1, "closed"), (2, "closed"), (3, "open")]
    with pytest.raises(GithubException) as empty:
        repo.create_pull(base="main", head="left", title="again")
    assert "No commits between main and left" in str(empty.value)

    ref = repo.get_git_ref("heads/clash")
    assert ref.object.sha == gh.repo("o/r").branches["clash"]  # read: a lazy ref would write to /git/ref/
    ref.edit(repo.get_branch("main").commit.sha, force=True)
    assert gh.files("o/r", "clash") == gh.files("o/r")
    ref.delete()
    assert "clash" not in gh.repo("o/r").branches


def test_issues_and_comments(gh: GitHubEmulator, gh_client: Github, gh_server: Server) -> None:
    gh.create_repo("o/r")
    number = gh.open_issue("o/r", "Remove my data", "selector: x", user="alice", labels=["removal-request"])
    gh.open_issue("o/r", "Unrelated", user="bob")
    gh.add_comment("o/r", number, "please hurry", user="alice")
    repo = gh_client.get_repo("o/r")

    issue = repo.get_issue(number)
    comment = issue.create_comment("Understood: 2 records.")
    comment.edit("Understood: 3 records.")
    assert [c.body for c in issue.get_comments()] == ["please hurry", "Understood: 3 records."]
    fetched = issue.get_comment(comment.id)
    assert (fetched.body, fetched.user.login, fetched.user.type) == (
        "Understood: 3 records.",
        "kiki-bot[bot]",
        "Bot",
    )
    assert issue.user.login == "alice" and issue.html_url.endswith(f"/o/r/issues/{number}")

    assert [i.number for i in repo.get_issues(state="open", labels=["removal-request"])] == [number]
    issue.edit(state="closed", body="done")
    assert (gh.issue("o/r", number).state, gh.issue("o/r", number).body) == ("closed", "done")
    assert [i.title for i in repo.get_issues(state="open")] == ["Unrelated"]
    assert gh.comments("o/r", number)[-1].user == "kiki-bot[bot]"
    assert {request.token for request in gh.requests} == {"ghs_emulator_token"}

    gh.tokens["alice-token"] = "alice"
    as_alice = Github(
        base_url=gh_server.url,
        auth=Auth.Token("alice-token"),
        seconds_between_requests=None,
        seconds_between_writes=None,
        retry=None,
        lazy=True,
    )
    assert as_alice.get_repo("o/r").get_issue(number).create_comment("thanks").user.login == "alice"


def test_comments_are_deleted_and_branches_compared(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r", files={"a.txt": b"a\n"})
    number = gh.open_issue("o/r", "x")
    repo = gh_client.get_repo("o/r")
    comment = repo.get_issue(number).create_comment("twice")
    comment.delete()
    assert gh.comments("o/r", number) == []
    with pytest.raises(UnknownObjectException):
        comment.delete()
    gh.push("o/r", "topic", {"b.txt": b"b\n"})
    assert (repo.compare("main", "main").status, repo.compare("main", "topic").status) == ("identical", "ahead")
    assert repo.compare("main", "topic").ahead_by == 1 and repo.compare("topic", "main").status == "behind"
    gh.push("o/r", "main", {"c.txt": b"c\n"})
    diverged = repo.compare("main", "topic")
    assert (diverged.status, diverged.ahead_by, diverged.behind_by) == ("diverged", 1, 1)
    with pytest.raises(UnknownObjectException):
        repo.compare("main", "nowhere").status  # noqa: B018 (lazy objects fetch on access)


def test_issue_lists_are_paginated(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r")
    for n in range(35):
        gh.open_issue("o/r", f"issue {n}")
    assert len(list(gh_client.get_repo("o/r").get_issues())) == 35
    assert [r.query.get("page") for r in gh.requests] == [None, "2"]


def test_labels(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r")
    repo = gh_client.get_repo("o/r")
    repo.create_label("bug", "ff0000")
    with pytest.raises(GithubException) as duplicate:
        repo.create_label("bug", "00ff00")
    assert duplicate.value.status == 422

    issue = repo.get_issue(gh.open_issue("o/r", "t"))
    issue.add_to_labels("removal-request", "bug")
    assert sorted(label.name for label in repo.get_labels()) == ["bug", "removal-request"]
    issue.remove_from_labels("bug")
    assert [label.name for label in issue.get_labels()] == ["removal-request"]
    with pytest.raises(GithubException) as absent:  # GitHub: 404 "Label does not exist"
        issue.remove_from_labels("bug")
    assert absent.value.status == 404


@pytest.mark.parametrize(
    ("role", "permission"),
    [
        ("admin", "admin"),
        ("maintain", "write"),
        ("write", "write"),
        ("triage", "read"),
        ("read", "read"),
        ("none", "none"),
    ],
)
def test_collaborator_permission(gh: GitHubEmulator, gh_client: Github, role: str, permission: str) -> None:
    gh.create_repo("o/r")
    gh.set_permission("o/r", "alice", role)
    repo = gh_client.get_repo("o/r")
    assert repo.get_collaborator_permission("alice") == permission
    assert repo.get_collaborator_role_name("alice") == role
    assert repo.get_collaborator_permission("stranger") == "none"


def test_dispatches_are_recorded(gh: GitHubEmulator, gh_client: Github) -> None:
    retrain = b"on:\n  workflow_dispatch:\n    inputs:\n      adapter: {required: true, type: string}\n"
    gh.create_repo("o/r", files={".github/workflows/retrain.yml": retrain})
    repo = gh_client.get_repo("o/r")
    assert repo.create_repository_dispatch("kiki-retrain", {"adapter": "a"}) is True
    assert repo.get_workflow("retrain.yml").create_dispatch("main", {"adapter": "a"}) is True
    assert repo.get_workflow("missing.yml").create_dispatch("main") is False
    assert [(d.event, d.name, d.payload, d.ref) for d in gh.dispatches("o/r")] == [
        ("repository_dispatch", "kiki-retrain", {"adapter": "a"}, None),
        ("workflow_dispatch", "retrain.yml", {"adapter": "a"}, "main"),
    ]
    assert gh_client.get_user().login == "kiki-bot[bot]"


def _client(server: Server, token: str) -> Github:
    return Github(base_url=server.url, auth=Auth.Token(token), seconds_between_requests=None,
                  seconds_between_writes=None, retry=None, lazy=True)


def _refused(call) -> tuple[dict, str]:
    """GitHub's 403 for a token outside its job's permissions: (the body, what it says would do)."""
    with pytest.raises(GithubException) as refused:
        call()
    assert refused.value.status == 403, refused.value
    return refused.value.data, refused.value.headers["x-accepted-github-permissions"]


def test_a_job_token_may_do_only_what_its_permissions_grant(gh: GitHubEmulator, gh_server: Server) -> None:
    gh.create_repo("o/r", files={"a.txt": b"a\n", ".github/workflows/w.yml": b"on: workflow_dispatch\n"},
                   private=True)
    issue = gh.open_issue("o/r", "a request")
    gh.push("o/r", "topic", {"b.txt": b"b\n"})
    pull = gh.open_pull("o/r", "topic")
    triage = _client(gh_server, gh.mint_token({"contents": "read", "issues": "write"})).get_repo("o/r")
    assert triage.get_contents("a.txt").decoded_content == b"a\n"
    assert triage.get_issue(issue).create_comment("understood").user.login == "github-actions[bot]"
    assert triage.get_collaborator_permission("o") == "admin"  # metadata: every token reads it
    body, accepted = _refused(lambda: triage.create_git_ref("refs/tags/x/v1", gh.repo("o/r").branches["main"]))
    assert body == {"message": "Resource not accessible by integration", "status": "403",
                    "documentation_url": "https://docs.github.com/rest/authentication/permissions-required-for-github-apps"}
    assert accepted == "contents=write"
    assert _refused(lambda: triage.create_pull(base="main", head="topic", title="t"))[1] == "pull_requests=write"
    assert _refused(lambda: triage.get_workflow("w.yml").create_dispatch("main", throw=True))[1] == "actions=write"
    assert _refused(lambda: triage.get_pull(pull).title)[1] == "pull_requests=read"
    # A pull request's comments take either permission, an issue's only `issues`.
    review = _client(gh_server, gh.mint_token({"pull-requests": "write"})).get_repo("o/r")
    assert review.get_issue(pull).create_comment("cards differ").body == "cards differ"
    assert _refused(lambda: review.get_issue(issue).create_comment("x"))[1] == "issues=write"
    nothing = _client(gh_server, gh.mint_token({})).get_repo("o/r")
    assert _refused(lambda: nothing.get_contents("a.txt"))[1] == "contents=read"
    # Any token reads a public repository; a token from outside a job has full scope.
    gh.repo("o/r").private = False
    assert nothing.get_contents("a.txt").decoded_content == b"a\n"
    assert _refused(lambda: nothing.get_issue(issue).create_comment("x"))[1] == "issues=write"
    full = _client(gh_server, "ghs_emulator_token").get_repo("o/r")
    full.create_git_ref("refs/tags/x/v1", gh.repo("o/r").branches["main"])
    with pytest.raises(ValueError, match="not a job permission: pull_requests: write"):
        gh.mint_token({"pull_requests": "write"})


def test_workflow_dispatch_needs_the_trigger_and_the_declared_inputs(gh: GitHubEmulator, gh_client: Github) -> None:
    release = b"on:\n  push: {tags: ['*/v*']}\n  workflow_dispatch:\n    inputs:\n      tag: {required: true}\n"
    gh.create_repo("o/r", files={".github/workflows/release.yml": release,
                                 ".github/workflows/push-only.yml": b"on:\n  push:\n    tags: ['*/v*']\n"})
    repo = gh_client.get_repo("o/r")

    def refusal(workflow: str, inputs: dict) -> str:
        with pytest.raises(GithubException) as refused:
            repo.get_workflow(workflow).create_dispatch("main", inputs, throw=True)
        assert refused.value.status == 422
        return refused.value.data["message"]

    assert refusal("push-only.yml", {}) == "Workflow does not have 'workflow_dispatch' trigger"
    assert refusal("release.yml", {}) == "Required input 'tag' not provided"
    assert refusal("release.yml", {"tag": "a/v1", "x": "1"}) == 'Unexpected inputs provided: ["x"]'
    assert repo.get_workflow("release.yml").create_dispatch("main", {"tag": "a/v1"}, throw=True) is True
    assert [(d.event, d.name, d.payload, d.actor) for d in gh.dispatches("o/r")] == [
        ("workflow_dispatch", "release.yml", {"tag": "a/v1"}, "kiki-bot[bot]")]


def test_what_the_actions_token_pushes_starts_no_workflow(gh: GitHubEmulator, gh_server: Server) -> None:
    workflows = {".github/workflows/release.yml": b"on:\n  push:\n    tags: ['*/v*']\n",
                 ".github/workflows/main.yml": b"on:\n  push:\n    branches: [main]\n",
                 ".github/workflows/any.yml": b"on: [push]\n"}
    gh.create_repo("o/r", files=workflows)
    head = gh.repo("o/r").branches["main"]
    gh.tokens["alice-token"] = "alice"
    person = _client(gh_server, "alice-token").get_repo("o/r")
    job = _client(gh_server, gh.mint_token({"contents": "write"})).get_repo("o/r")
    default = _client(gh_server, "ghs_emulator_token").get_repo("o/r")
    for repo, tag in ((job, "a/v1"), (default, "a/v2"), (person, "a/v3"), (person, "a/b/v4")):
        repo.create_git_ref(f"refs/tags/{tag}", head)
    job.create_file("x.txt", "job", b"x", branch="main")
    gh.push("o/r", "main", {"y.txt": b"y"}, author="alice")  # a person's git push
    gh.push("o/r", "topic", {"z.txt": b"z"}, author="alice")
    started = [(d.event, d.name, d.ref, d.actor) for d in gh.dispatches("o/r")]
    assert sorted(started) == sorted([
        ("push", "release.yml", "refs/tags/a/v3", "alice"), ("push", "any.yml", "refs/tags/a/v3", "alice"),
        ("push", "any.yml", "refs/tags/a/b/v4", "alice"),  # `*` does not match `/`
        ("push", "main.yml", "refs/heads/main", "alice"), ("push", "any.yml", "refs/heads/main", "alice"),
        ("push", "any.yml", "refs/heads/topic", "alice"),
    ])
    [run] = default.get_workflow("release.yml").get_runs()
    assert (run.event, run.head_branch) == ("push", "a/v3")


def test_server_serves_until_stopped() -> None:
    with (
        serve(GitHubEmulator(bot_login="someone")) as server,
        urllib.request.urlopen(f"{server.url}/user") as answer,
    ):
        assert json.load(answer)["login"] == "someone"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/user", timeout=5)


# --- Hugging Face Hub ------------------------------------------------------------------------------


def test_create_repo_is_idempotent(hub: HubEmulator, hf_api: HfApi) -> None:
    assert hf_api.create_repo("org/m").repo_id == "org/m"
    assert hf_api.create_repo("org/m", exist_ok=True).repo_id == "org/m"
    with pytest.raises(HfHubHTTPError):
        hf_api.create_repo("org/m")
    assert hf_api.create_repo("org/d", repo_type="dataset", private=True).repo_type == "dataset"
    assert hf_api.dataset_info("org/d").private is True
    assert [path for path in hub.repo("org/m").files()] == [".gitattributes"]
    with pytest.raises(RepositoryNotFoundError):
        hf_api.model_info("org/nothing")


def test_commit_as_pull_request_then_merge_and_download(
    hub: HubEmulator, hf_api: HfApi, tmp_path: Path
) -> None:
    hf_api.create_repo("org/m")

    def files() -> list[CommitOperationAdd]:
        return [
            CommitOperationAdd("README.md", CARD.encode()),
            CommitOperationAdd("adapters.safetensors", WEIGHTS),
        ]

    staged = hf_api.create_commit("org/m", files(), commit_message="Stage v1", create_pr=True)
    assert (staged.pr_num, staged.pr_revision) == (1, "refs/pr/1")
    assert "adapters.safetensors" not in hf_api.list_repo_files("org/m")
    assert "adapters.safetensors" in hf_api.list_repo_files("org/m", revision="refs/pr/1")
    assert hf_api.get_discussion_details("org/m", 1).status == "open"

    hf_api.merge_pull_request("org/m", 1, comment="Published")
    details = hf_api.get_discussion_details("org/m", 1)
    assert (details.status, details.merge_commit_oid) == ("merged", hf_api.model_info("org/m").sha)
    assert Path(hf_hub_download("org/m", "adapters.safetensors", cache_dir=tmp_path)).read_bytes() == WEIGHTS
    snapshot = Path(snapshot_download("org/m", cache_dir=tmp_path))
    assert sorted(p.name for p in snapshot.iterdir()) == [
        ".gitattributes",
        "README.md",
        "adapters.safetensors",
    ]
    card = ModelCard.load("org/m")
    assert (card.data.license, card.data.base_model) == ("apache-2.0", "org/base")
    assert hf_api.model_info("org/m").card_data.language == ["en"]
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/m", "missing.txt", cache_dir=tmp_path)

    commits_before = len(hub.repo("org/m").log())
    unchanged = hf_api.create_commit("org/m", files(), commit_message="Same again")  # preupload oids match
    assert (
        unchanged.oid == hub.repo("org/m").resolve("main") and len(hub.repo("org/m").log()) == commits_before
    )
    hf_api.create_commit("org/m", [CommitOperationDelete("adapters.safetensors")], commit_message="Drop")
    assert sorted(hub.repo("org/m").files()) == [".gitattributes", "README.md"]


def test_commits_to_an_open_pull_request(hub: HubEmulator, hf_api: HfApi) -> None:
    hf_api.create_repo("org/m")
    pull = hf_api.create_pull_request("org/m", title="Staged release")
    assert pull.status == "draft"
    hf_api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="org/m", revision=pull.git_reference
    )
    assert any(r.path.endswith("/commit/refs%2Fpr%2F1") for r in hub.requests)
    details = hf_api.get_discussion_details("org/m", pull.num)
    assert details.status == "open" and [e.type for e in details.events] == ["comment", "commit"]
    assert hub.repo("org/m").files("refs/pr/1")["x.txt"] == b"x"


def test_tags_and_refs(hub: HubEmulator, hf_api: HfApi) -> None:
    hf_api.create_repo("org/m")
    hf_api.create_commit("org/m", [CommitOperationAdd("a.txt", b"a")], commit_message="a", create_pr=True)
    hf_api.create_tag("org/m", tag="adapter-v1.0.0", tag_message="Release")
    with pytest.raises(HfHubHTTPError):
        hf_api.create_tag("org/m", tag="adapter-v1.0.0")
    hf_api.create_tag("org/m", tag="adapter-v1.0.0", exist_ok=True)
    refs = hf_api.list_repo_refs("org/m", include_pull_requests=True)
    main = hub.repo("org/m").resolve("main")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", main)]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("adapter-v1.0.0", main)]
    assert [p.ref for p in refs.pull_requests] == ["refs/pr/1"]
    with pytest.raises(RevisionNotFoundError):
        hf_api.create_tag("org/m", tag="other", revision="nope")


def test_repo_settings_gate_and_hide_downloads(hub: HubEmulator, hf_api: HfApi, tmp_path: Path) -> None:
    hub.create_repo("org/m", files={"README.md": CARD.encode()})
    hf_api.update_repo_settings("org/m", gated="manual")
    assert hf_api.model_info("org/m").gated == "manual"
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/m", "README.md", cache_dir=tmp_path, token=False)
    hf_api.update_repo_settings("org/m", gated=False, private=True)
    info = hf_api.model_info("org/m")
    assert (info.gated, info.private) == (False, True)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/m", "README.md", cache_dir=tmp_path, token=False)
    assert hf_hub_download("org/m", "README.md", cache_dir=tmp_path)  # the owner's token still works


def test_super_squash_drops_old_revisions(hub: HubEmulator, hf_api: HfApi) -> None:
    hf_api.create_repo("org/m")
    first = hf_api.upload_file(path_or_fileobj=b"1", path_in_repo="data.txt", repo_id="org/m").oid
    hub.repo("org/m").push({"data.txt": b"2"}, "Second", author="alice")
    assert [c.title for c in hf_api.list_repo_commits("org/m")] == [
        "Second",
        "Upload data.txt with huggingface_hub",
        "initial commit",
    ]
    assert hf_api.model_info("org/m", revision=first).sha == first
    hf_api.super_squash_history("org/m", commit_message="Purge removed records")
    with pytest.raises(RevisionNotFoundError):
        hf_api.model_info("org/m", revision=first)
    assert [c.title for c in hf_api.list_repo_commits("org/m")] == ["Purge removed records"]
    assert hub.repo("org/m").files()["data.txt"] == b"2"


def test_discussions(hub: HubEmulator, hf_api: HfApi) -> None:
    hub.create_repo("org/m")
    discussion = hf_api.create_discussion("org/m", title="Removal request", description="Please remove x")
    hub.tokens["hf_alice"] = "alice"
    comment = hf_api.comment_discussion(
        "org/m", discussion.num, "Scheduled for the next release", token="hf_alice"
    )
    assert comment.author == "alice"
    hf_api.change_discussion_status("org/m", discussion.num, "closed", comment="Done")
    closed = list(hf_api.get_repo_discussions("org/m", discussion_status="closed"))
    assert [(d.num, d.title, d.is_pull_request) for d in closed] == [(1, "Removal request", False)]
    assert list(hf_api.get_repo_discussions("org/m", discussion_status="open")) == []
    assert hub.repo("org/m").discussions[1].comments == [
        "Please remove x",
        "Scheduled for the next release",
        "Done",
    ]
    assert hf_api.whoami()["name"] == "kiki-bot"


def test_dataset_repos(hub: HubEmulator, hf_api: HfApi, tmp_path: Path) -> None:
    hf_api.create_repo("org/d", repo_type="dataset")
    hf_api.upload_file(
        path_or_fileobj=b"{}\n", path_in_repo="data/a.jsonl", repo_id="org/d", repo_type="dataset"
    )
    path = hf_hub_download("org/d", "data/a.jsonl", repo_type="dataset", cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"{}\n"
    tree = hf_api.list_repo_tree("org/d", repo_type="dataset")
    assert sorted(entry.path for entry in tree) == [".gitattributes", "data"]


def test_readme_metadata_is_validated(hub: HubEmulator, hf_api: HfApi) -> None:
    hf_api.create_repo("org/m")
    bad = CARD.replace("apache-2.0", "apache2")
    with pytest.raises(ValueError, match="license"):
        hf_api.upload_file(path_or_fileobj=bad.encode(), path_in_repo="README.md", repo_id="org/m")
    with pytest.raises(ValueError, match="license"):
        ModelCard(bad).validate()
    ModelCard(CARD).validate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hf_api.upload_file(path_or_fileobj=b"# no metadata\n", path_in_repo="README.md", repo_id="org/m")
    assert any("missing yaml metadata" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ("- a list", "must be a mapping"),
        ("license: [mit, nope]", "'nope'"),
        ("language: english", "'english'"),
        ("datasets: [squad]", "'squad'"),
        ("base_model: {name: x}", "base_model"),
        (
            "model-index: [{name: m, results: [{task: {type: t}, dataset: {name: d}, metrics: []}]}]",
            "dataset",
        ),
        ("license: [mit", "Invalid YAML"),
    ],
)
def test_validate_card_rejects(metadata: str, complaint: str) -> None:
    errors, _ = validate_card(f"---\n{metadata}\n---\n")
    assert errors and complaint in " ".join(errors)


def test_validate_card_accepts_a_full_card() -> None:
    metadata = (
        "license: llama3.1\nlanguage: [en, fr, multilingual]\ndatasets: [org/data]\nbase_model: org/base\n"
        "model-index:\n- name: m\n  results:\n  - task: {type: text-generation}\n"
        "    dataset: {type: org/data, name: Data}\n    metrics: [{type: accuracy, value: 0.5}]\n"
    )
    assert validate_card(f"---\n{metadata}---\n# Card\n") == ([], [])
