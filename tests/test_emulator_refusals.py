"""What the GitHub emulator refuses because GitHub does, driven by the real PyGithub: an emulator that took
what GitHub refuses would let the bot pass tests it fails on github.com. Each carries GitHub's status and body."""

from __future__ import annotations

import pytest
from github import Github, GithubException

from kiki_bot.demo.emulators import GitHubEmulator

LONG = "x" * 65_537  # one character over GitHub's 65,536


def _error(exc: pytest.ExceptionInfo[GithubException]) -> tuple[int, list[dict]]:
    return exc.value.status, exc.value.data["errors"]


def test_bodies_over_65536_characters_are_refused_and_nothing_is_kept(gh: GitHubEmulator,
                                                                       gh_client: Github) -> None:
    gh.create_repo("o/r")
    gh.push("o/r", "topic", {"a": b"1"})
    repo = gh_client.get_repo("o/r")
    with pytest.raises(GithubException) as issue:
        repo.create_issue("Removal request", body=LONG)
    assert _error(issue) == (422, [{"resource": "Issue", "code": "custom", "field": "body",
                                    "message": "body is too long (maximum is 65536 characters)"}])
    assert gh.repo("o/r").issues == {}
    opened = repo.create_issue("Removal request", body=LONG[:-1])  # exactly the limit: taken
    with pytest.raises(GithubException) as edit:
        opened.edit(body=LONG)
    assert edit.value.status == 422 and gh.issue("o/r", opened.number).body == LONG[:-1]

    with pytest.raises(GithubException) as comment:
        opened.create_comment(LONG)
    assert _error(comment) == (422, [{"resource": "IssueComment", "code": "unprocessable", "field": "data",
                                      "message": "Body is too long (maximum is 65536 characters)"}])
    kept = opened.create_comment("short")
    with pytest.raises(GithubException) as comment_edit:
        kept.edit(LONG)
    assert comment_edit.value.status == 422 and [c.body for c in gh.comments("o/r", opened.number)] == ["short"]

    with pytest.raises(GithubException) as pull:
        repo.create_pull(base="main", head="topic", title="Purge", body=LONG)
    assert _error(pull) == (422, [{"resource": "PullRequest", "code": "custom", "field": "body",
                                   "message": "body is too long (maximum is 65536 characters)"}])
    made = repo.create_pull(base="main", head="topic", title="Purge", body="short")
    with pytest.raises(GithubException) as pull_edit:
        made.edit(body=LONG)
    assert pull_edit.value.status == 422 and gh.issue("o/r", made.number).body == "short"


def test_release_notes_over_125000_characters_are_refused_and_no_tag_is_made(gh: GitHubEmulator,
                                                                            gh_client: Github) -> None:
    gh.create_repo("o/r")
    repo = gh_client.get_repo("o/r")
    with pytest.raises(GithubException) as notes:
        repo.create_git_release("adapter/v1.0.0", "adapter 1.0.0", "n" * 125_001)
    assert _error(notes) == (422, [{"resource": "Release", "code": "custom", "field": "body",
                                    "message": "body is too long (maximum is 125000 characters)"}])
    assert gh.releases("o/r") == [] and gh.repo("o/r").tags == {}
    assert repo.create_git_release("adapter/v1.0.0", "adapter 1.0.0", "n" * 125_000).body == "n" * 125_000


def test_a_pull_request_needs_a_title(gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r")
    gh.push("o/r", "topic", {"a": b"1"})
    with pytest.raises(GithubException) as untitled:
        gh_client.get_repo("o/r").create_pull(base="main", head="topic", title="")
    assert _error(untitled) == (422, [{"resource": "PullRequest", "code": "missing_field", "field": "title"}])
    assert gh.pulls("o/r") == []


def test_a_pull_request_with_nothing_to_merge_or_already_open_is_refused_in_githubs_words(
        gh: GitHubEmulator, gh_client: Github) -> None:
    gh.create_repo("o/r")
    gh.push("o/r", "topic", {"a": b"1"})
    repo = gh_client.get_repo("o/r")
    repo.create_git_ref("refs/heads/same", gh.repo("o/r").branches["main"])
    for head in ("main", "same"):  # the base itself, then a branch whose commits the base holds already
        with pytest.raises(GithubException) as nothing:
            repo.create_pull(base="main", head=head, title="Purge")
        assert _error(nothing) == (422, [{"resource": "PullRequest", "code": "custom",
                                          "message": f"No commits between main and {head}"}])
    repo.create_pull(base="main", head="topic", title="Purge")
    with pytest.raises(GithubException) as again:
        repo.create_pull(base="main", head="o:topic", title="Purge again")
    assert _error(again) == (422, [{"resource": "PullRequest", "code": "custom",
                                    "message": "A pull request already exists for o:topic."}])
    assert len(gh.pulls("o/r")) == 1


def test_label_names_over_50_and_descriptions_over_100_characters_are_refused(gh: GitHubEmulator,
                                                                              gh_client: Github) -> None:
    gh.create_repo("o/r")
    repo = gh_client.get_repo("o/r")
    with pytest.raises(GithubException) as name:
        repo.create_label("n" * 51, "ededed")
    assert _error(name) == (422, [{"resource": "Label", "code": "custom", "field": "name",
                                   "message": "name is too long (maximum is 50 characters)"}])
    with pytest.raises(GithubException) as description:
        repo.create_label("removal-request", "ededed", "d" * 101)
    assert _error(description) == (422, [{"resource": "Label", "code": "custom", "field": "description",
                                          "message": "description is too long (maximum is 100 characters)"}])
    issue = repo.get_issue(gh.open_issue("o/r", "t"))
    with pytest.raises(GithubException) as on_the_fly:  # named on an issue, a label is made with the same limit
        issue.add_to_labels("released on @" + "b" * 40)
    assert _error(on_the_fly) == (422, [{"value": "released on @" + "b" * 40, "resource": "Label", "field": "name",
                                         "code": "invalid"}])
    assert gh.repo("o/r").labels == {} and gh.issue("o/r", issue.number).labels == []
    repo.create_label("n" * 50, "ededed", "d" * 100)  # at the limits: taken


def test_a_secondary_rate_limit_can_come_without_rate_limit_headers(gh: GitHubEmulator,
                                                                     gh_client: Github) -> None:
    """GitHub's docs: a secondary limit is a 403 or 429 whose message says so; with neither Retry-After nor
    x-ratelimit-remaining 0, the client waits a minute, longer each time. `rate_headers=False` answers that, once."""
    gh.create_repo("o/r")
    gh.refuse_next(403, path="/issues", rate_headers=False)
    with pytest.raises(GithubException) as limited:
        gh_client.get_repo("o/r").create_issue("Removal request")
    assert limited.value.status == 403
    assert limited.value.data["message"].startswith("You have exceeded a secondary rate limit")
    assert not {k.lower() for k in limited.value.headers} & {"retry-after", "x-ratelimit-remaining",
                                                             "x-ratelimit-reset", "x-ratelimit-limit"}
    assert gh.repo("o/r").issues == {}
    assert gh_client.get_repo("o/r").create_issue("Removal request").number == 1  # once: then served again
