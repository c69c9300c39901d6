"""Routing, table-driven: which route each GitHub event takes (real webhook payloads from octokit's examples),
that every route's target exists, and that a route's fields are checked before its moment runs."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from pathlib import Path

import pytest

from kiki_bot import events
from kiki_bot.core.errors import BadInput

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github-events"
BOT = "kiki-bot[bot]"
REMOVAL = {"name": events.REMOVAL_LABEL}


def payload(name: str, **changes) -> dict:
    """An octokit example payload with dotted-path `changes` (`issue__labels=[...]` sets issue.labels)."""
    doc = copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return doc


TAG_REF = "refs/tags/example-lora/v0.2.0"
CASES = [
    # (id, event name, payload, target or None)
    ("tag pushed", "push", payload("push.payload", ref=TAG_REF, deleted=False), "kiki_bot.release:release"),
    ("tag deleted", "push", payload("push.payload", ref=TAG_REF, deleted=True), None),
    ("tag without a version", "push", payload("push.payload", ref="refs/tags/latest", deleted=False), None),
    ("default branch pushed", "push", payload("push.payload", ref="refs/heads/main",
                                              repository__default_branch="main"), "kiki_bot.removal:refresh"),
    ("other branch pushed", "push", payload("push.with-new-branch.payload", ref="refs/heads/feature"), None),
    ("schedule", "schedule", {"schedule": "0 */6 * * *"}, "kiki_bot.deadlines:run"),
    ("dispatch with a tag", "workflow_dispatch", payload("workflow_dispatch.payload", inputs={"tag": "a/v1.0.0"}),
     "kiki_bot.release:release"),
    ("dispatch without a tag", "workflow_dispatch", payload("workflow_dispatch.payload"), "kiki_bot.deadlines:run"),
    ("the bot's own dispatch of a tag", "workflow_dispatch",
     payload("workflow_dispatch.payload", inputs={"tag": "a/v1.0.0"}, sender={"login": BOT, "type": "Bot"}),
     "kiki_bot.release:release"),
    ("the bot's own dispatch without a tag", "workflow_dispatch",
     payload("workflow_dispatch.payload", sender={"login": BOT, "type": "Bot"}), None),
    ("another bot's dispatch of a tag", "workflow_dispatch",
     payload("workflow_dispatch.payload", inputs={"tag": "a/v1.0.0"}, sender={"login": "x[bot]", "type": "Bot"}),
     None),
    ("the bot's own tag push", "push", payload("push.payload", ref=TAG_REF, deleted=False, sender={"login": BOT, "type": "Bot"}),
     None),
    ("removal issue opened", "issues", payload("issues.opened.payload", issue__labels=[REMOVAL]),
     "kiki_bot.removal:on_issue"),
    ("other issue opened", "issues", payload("issues.opened.payload"), None),
    ("removal label added", "issues", payload("issues.labeled.payload", issue__labels=[REMOVAL], label=REMOVAL),
     "kiki_bot.removal:on_issue"),
    ("other label added to a removal issue", "issues",
     payload("issues.labeled.payload", issue__labels=[REMOVAL, {"name": "bug"}], label={"name": "bug"}), None),
    ("removal issue edited", "issues", payload("issues.edited.payload", issue__labels=[REMOVAL]), None),
    ("/kiki comment on a removal issue", "issue_comment",
     payload("issue_comment.created.payload", issue__labels=[REMOVAL], comment__body="  /KIKI approve"),
     "kiki_bot.removal:on_comment"),
    ("other comment on a removal issue", "issue_comment",
     payload("issue_comment.created.payload", issue__labels=[REMOVAL], comment__body="thanks"), None),
    ("/kiki comment on a pull request", "issue_comment",
     payload("issue_comment.created.payload", issue__labels=[REMOVAL], comment__body="/kiki approve",
             issue__pull_request={"url": "x"}), None),
    ("review PR merged", "pull_request",
     payload("pull_request.closed.payload", pull_request__merged=True,
             pull_request__head__ref="kiki/release/example-lora/0.2.0"), "kiki_bot.publish:publish"),
    ("review PR closed unmerged", "pull_request",
     payload("pull_request.closed.payload", pull_request__merged=False,
             pull_request__head__ref="kiki/release/example-lora/0.2.0"), None),
    ("other PR merged", "pull_request", payload("pull_request.closed.payload", pull_request__merged=True), None),
    ("PR opened", "pull_request", payload("pull_request.opened.payload"), "kiki_bot.review:on_pull_request"),
    ("PR synchronised", "pull_request", payload("pull_request.synchronize.payload"),
     "kiki_bot.review:on_pull_request"),
    ("release published", "release", payload("release.published.payload"), None),
    ("repository dispatch", "repository_dispatch", payload("repository_dispatch.payload"), None),
    ("ping", "ping", {"zen": "Keep it logically awesome."}, None),
]


@pytest.mark.parametrize(("name", "doc", "target"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_event_takes_its_route(name, doc, target):
    taken = events.route(name, doc, BOT)
    assert (taken and taken.target) == target


def test_every_target_is_a_moment_taking_the_context_and_the_route_arguments():
    def positional(name: str) -> int:
        module, function = name.split(":")
        target = getattr(importlib.import_module(module), function)
        return len([p for p in inspect.signature(target).parameters.values() if p.default is p.empty])

    for r in events.ROUTES:
        assert positional(r.target) == 1 + len(r.args), r.target
        assert r.then is None or positional(r.then) == 2, r.then  # the context and the target's outputs


def test_a_merged_review_pr_publishes_the_tag_it_was_opened_for():
    doc = payload("pull_request.closed.payload", pull_request__merged=True,
                  pull_request__head__ref="kiki/release/example-lora/0.2.0-rc.1")
    taken = events.route("pull_request", doc, BOT)
    assert [a(doc) for a in taken.args] == ["example-lora/v0.2.0-rc.1"]


@pytest.mark.parametrize(("name", "doc", "missing"), [
    ("issues", payload("issues.opened.payload", issue__labels=[REMOVAL], issue__created_at=None),
     "issue.created_at"),
    ("issue_comment", payload("issue_comment.created.payload", issue__labels=[REMOVAL], comment__body="/kiki x",
                              comment__id=""), "comment.id"),
    ("workflow_dispatch", payload("workflow_dispatch.payload", inputs={"tag": "a/v1.0.0"},
                                  sender={"login": BOT, "type": "Bot"}, ref=None), None),
], ids=["issue without created_at", "comment without id", "dispatch reads only inputs.tag"])
def test_the_fields_a_route_reads_are_checked_before_its_moment(name, doc, missing):
    taken = events.route(name, doc, BOT)
    if missing is None:
        events.check_fields(taken, doc, "event.json")
        return
    with pytest.raises(BadInput, match=f"`{missing}` is missing"):
        events.check_fields(taken, doc, "event.json")


def test_a_malformed_review_branch_is_bad_input_not_a_traceback(tmp_path, cli, project):
    """kiki/release/<no version>: the tag is refused with the expected form (it raised ValueError before)."""
    event = tmp_path / "merged.json"
    event.write_text(json.dumps(payload("pull_request.closed.payload", pull_request__merged=True,
                                        pull_request__head__ref="kiki/release/example-lora")))
    res = cli("handle", "--event-name", "pull_request", "--event-path", event, "--dry-run", "-C", project)
    assert res.code == 2, res.err
    assert "is not `<adapter>/v<major>.<minor>.<patch>`" in res.err
