"""Removal requests at GitHub's limits: GitHub refuses a comment over 65,536 characters, and triage answers a
request in one comment that lists and stores every identifier (what a later approval acts on)."""

from __future__ import annotations

from test_removal_flow import GH_REPO, body, bot_comments, handle, issue_event, labels
from test_removal_flow import env  # noqa: F401 (a fixture)

LONG = [f"https://github.com/acme/fw/blob/main/src/{'d' * 250}{i}/f{i}.c" for i in range(200)]


def test_a_request_whose_answer_github_would_refuse_is_invalid_and_records_nothing(env, gh, cli):  # noqa: F811
    text = body(*LONG)  # 200 identifiers: as many as a request may name, and under GitHub's limit for the issue
    assert len(text) < 65_536
    number = gh.open_issue(GH_REPO, "Removal", text, labels=["removal-request"])
    res = handle(cli, env, "issues", issue_event(number, text))
    assert res.code == 0, res.err
    [comment] = bot_comments(gh, number)
    assert "**Content to remove**: kiki-bot's answer, which lists and stores each identifier, would be" in \
        comment.body
    assert "more than the 65,536 GitHub takes in a comment: split it into several requests" in comment.body
    assert labels(gh, number) == {"removal-request", "invalid"}
    assert "kiki-bot:request:" not in comment.body and not (env / "compliance" / "removals.jsonl").exists()

    shorter = body(*LONG[:40])  # one of the requests it was split into: triaged as usual
    other = gh.open_issue(GH_REPO, "Removal", shorter, labels=["removal-request"])
    assert handle(cli, env, "issues", issue_event(other, shorter)).code == 0
    assert labels(gh, other) == {"removal-request", "awaiting-approval"}
