"""Routing a GitHub event to the moment it belongs to, like a bot's webhook router.

Kept free of heavy imports: an event that concerns no moment is answered in milliseconds, and each
behaviour module is imported only when its event arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiki_bot.core.errors import BadInput

REMOVAL_LABEL = "removal-request"
Handler = Callable[[Any, dict], dict[str, str]]


def load(path: Path | None) -> dict:
    if path is None:
        raise BadInput("GITHUB_EVENT_PATH", "no event file given (--event-path or GITHUB_EVENT_PATH)")
    try:
        payload = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise BadInput(str(path), "event file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(str(path), f"not a JSON event payload ({exc})") from None
    if not isinstance(payload, dict):
        raise BadInput(str(path), "expected a JSON object")
    return payload


def _field(payload: dict, *keys: str) -> Any:
    value: Any = payload
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def on_tag_push(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.release import release

    return release(ctx, payload["ref"])


def on_review_merged(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.publish import publish

    adapter, version = payload["pull_request"]["head"]["ref"].removeprefix("kiki/release/").rsplit("/", 1)
    return publish(ctx, f"{adapter}/v{version}")


def on_removal_issue(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.removal import on_issue

    return on_issue(ctx, payload)


def on_removal_comment(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.removal import on_comment

    return on_comment(ctx, payload)


def on_default_branch_push(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.removal import refresh

    return refresh(ctx)


def on_deadline_run(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.deadlines import run

    return run(ctx)


def on_dispatched_release(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.release import release

    return release(ctx, payload["inputs"]["tag"])


def on_pr_review(ctx, payload: dict) -> dict[str, str]:
    from kiki_bot.review import on_pull_request

    return on_pull_request(ctx, payload)


def _labels(payload: dict) -> set[str]:
    return {label.get("name") for label in _field(payload, "issue", "labels") or [] if isinstance(label, dict)}


REQUIRED: dict[str, tuple[str, ...]] = {
    "on_tag_push": ("ref",),
    "on_review_merged": ("pull_request.head.ref",),
    "on_removal_issue": ("issue.number", "issue.created_at", "issue.user.login"),
    "on_removal_comment": ("issue.number", "issue.user.login", "comment.id", "comment.body", "comment.user.login",
                           "comment.created_at"),
    "on_dispatched_release": ("inputs.tag",),
}


def check_fields(handler: Handler, payload: dict, where: str) -> None:
    """The fields a handler reads must be there: a malformed event is bad input, not a traceback."""
    for path in REQUIRED.get(handler.__name__, ()):
        if _field(payload, *path.split(".")) in (None, ""):
            raise BadInput(where, f"event field `{path}` is missing (expected a GitHub webhook payload)")


def route(name: str, payload: dict, bot_login: str) -> Handler | None:
    """The handler for this event, or None when kiki-bot has nothing to do with it."""
    sender = _field(payload, "sender") or {}
    if name == "workflow_dispatch" and sender.get("login") == bot_login and _field(payload, "inputs", "tag"):
        return on_dispatched_release  # the deadline run's own dispatch: its token's tag pushes start nothing
    if sender.get("type") == "Bot" or sender.get("login") == bot_login:
        return None  # never react to bots, ourselves included: no loops
    action = payload.get("action")
    if name == "push":
        ref = payload.get("ref") or ""
        if ref.startswith("refs/tags/") and "/v" in ref and not payload.get("deleted"):
            return on_tag_push
        if ref == f"refs/heads/{_field(payload, 'repository', 'default_branch')}":  # bot PRs follow it
            return on_default_branch_push
        return None
    if name == "schedule":
        return on_deadline_run
    if name == "workflow_dispatch":
        return on_dispatched_release if _field(payload, "inputs", "tag") else on_deadline_run
    if name == "issues" and action in ("opened", "labeled"):  # never `edited`: the triaged body counts
        if action == "labeled" and _field(payload, "label", "name") != REMOVAL_LABEL:
            return None
        return on_removal_issue if REMOVAL_LABEL in _labels(payload) else None
    if name == "issue_comment" and action == "created":
        body = _field(payload, "comment", "body") or ""
        is_pr = _field(payload, "issue", "pull_request") is not None
        if not is_pr and REMOVAL_LABEL in _labels(payload) and body.lstrip().lower().startswith("/kiki"):
            return on_removal_comment
        return None
    if name == "pull_request":
        head = _field(payload, "pull_request", "head", "ref") or ""
        if action == "closed" and _field(payload, "pull_request", "merged") and head.startswith("kiki/release/"):
            return on_review_merged
        if action in ("opened", "synchronize", "reopened"):  # release branches too: hand edits get checked
            return on_pr_review
        return None
    return None
