"""Which moment a GitHub event belongs to: a declarative route table, like a bot's webhook router.

Each route names its event, the payload actions it takes, a condition, the fields it reads and its target as
"module:function", imported only when the route is taken (as mlx-lm's cli imports a subcommand's module). So
an event that concerns no moment is answered without importing anything but this module, which imports no
third-party library.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiki_bot.core.errors import BadInput
from kiki_bot.core.tags import RELEASE_BRANCH, REMOVAL_LABEL, of_release_branch

PAYLOAD = "."  # an argument that is the whole payload


def field(payload: dict, path: str) -> Any:
    """The value at a dotted path (`issue.user.login`), or None where any step is missing."""
    value: Any = payload
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _labels(payload: dict) -> set[str]:
    return {label.get("name") for label in field(payload, "issue.labels") or [] if isinstance(label, dict)}


# ---------------------------------------------------------------- conditions on the payload
def _tag_pushed(payload: dict) -> bool:
    ref = payload.get("ref") or ""
    return ref.startswith("refs/tags/") and "/v" in ref and not payload.get("deleted")


def _default_branch_pushed(payload: dict) -> bool:
    return payload.get("ref") == f"refs/heads/{field(payload, 'repository.default_branch')}"  # bot PRs follow it


def _names_a_tag(payload: dict) -> bool:
    return bool(field(payload, "inputs.tag"))


def _removal_labelled(payload: dict) -> bool:
    """Opened with the label, or the label just added; never `edited`: the triaged body counts."""
    if payload.get("action") == "labeled" and field(payload, "label.name") != REMOVAL_LABEL:
        return False
    return REMOVAL_LABEL in _labels(payload)


def _kiki_command(payload: dict) -> bool:
    body = field(payload, "comment.body") or ""
    return (field(payload, "issue.pull_request") is None and REMOVAL_LABEL in _labels(payload)
            and body.lstrip().lower().startswith("/kiki"))


def _review_merged(payload: dict) -> bool:
    head = field(payload, "pull_request.head.ref") or ""
    return bool(field(payload, "pull_request.merged")) and head.startswith(RELEASE_BRANCH)


def _merged_tag(payload: dict) -> str:
    return of_release_branch(field(payload, "pull_request.head.ref"))


def _always(_payload: dict) -> bool:
    return True


@dataclass(frozen=True)
class Route:
    event: str
    target: str  # "module:function", called as function(ctx, *args)
    actions: tuple[str, ...] | None = None  # payload `action`s taken; None: any
    when: Callable[[dict], bool] = _always
    args: tuple[str | Callable[[dict], Any], ...] = ()  # field paths (PAYLOAD: all of it), or pure functions
    required: tuple[str, ...] = ()  # further fields the target reads
    then: str | None = None  # "module:function", called as function(ctx, outputs) after the target: the next step

    def takes(self, name: str, payload: dict) -> bool:
        return (name == self.event and (self.actions is None or payload.get("action") in self.actions)
                and self.when(payload))

    def fields(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if isinstance(a, str) and a != PAYLOAD) + self.required

    def call(self, ctx: Any, payload: dict) -> dict[str, str]:
        outputs = _imported(self.target)(ctx, *(a(payload) if callable(a) else payload if a == PAYLOAD
                                                else field(payload, a) for a in self.args))
        return outputs if self.then is None else _imported(self.then)(ctx, outputs)


def _imported(target: str) -> Callable[..., dict[str, str]]:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


# The first route that takes an event wins.
ROUTES: tuple[Route, ...] = (
    Route("push", "kiki_bot.release:release", when=_tag_pushed, args=("ref",)),
    Route("push", "kiki_bot.removal:refresh", when=_default_branch_pushed),
    Route("schedule", "kiki_bot.deadlines:run"),
    Route("workflow_dispatch", "kiki_bot.release:release", when=_names_a_tag, args=("inputs.tag",)),
    Route("workflow_dispatch", "kiki_bot.deadlines:run"),
    Route("issues", "kiki_bot.removal:on_issue", actions=("opened", "labeled"), when=_removal_labelled,
          args=(PAYLOAD,), required=("issue.number", "issue.created_at", "issue.user.login")),
    Route("issue_comment", "kiki_bot.removal:on_comment", actions=("created",), when=_kiki_command,
          args=(PAYLOAD,), required=("issue.number", "issue.user.login", "comment.id", "comment.body",
                                     "comment.user.login", "comment.created_at"),
          then="kiki_bot.hubsync:follow_up"),  # a decision taken: the Hub discussion the issue mirrors hears it
    Route("pull_request", "kiki_bot.publish:publish", actions=("closed",), when=_review_merged,
          args=(_merged_tag,), required=("pull_request.head.ref",)),
    Route("pull_request", "kiki_bot.review:on_pull_request", actions=("opened", "synchronize", "reopened"),
          args=(PAYLOAD,)),  # release branches too: hand edits get checked
)


def route(name: str, payload: dict, bot_login: str) -> Route | None:
    """The route this event takes, or None when kiki-bot has nothing to do with it."""
    sender = field(payload, "sender") or {}
    by_bot = sender.get("type") == "Bot" or sender.get("login") == bot_login
    if by_bot and not (name == "workflow_dispatch" and sender.get("login") == bot_login):
        return None  # never react to bots, ourselves included (no loops) — but to the deadline run's own dispatch
    if by_bot and not _names_a_tag(payload):
        return None  # (its token's tag pushes start nothing, so it dispatches the release on the tag)
    return next((r for r in ROUTES if r.takes(name, payload)), None)


def check_fields(taken: Route, payload: dict, where: str) -> None:
    """The fields a route reads must be there: a malformed event is bad input, not a traceback."""
    for path in taken.fields():
        if field(payload, path) in (None, ""):
            raise BadInput(where, f"event field `{path}` is missing (expected a GitHub webhook payload)")


def handle(name: str, path: Path | None, bot_login: str,
           context: Callable[[str | None, str | None], Any]) -> tuple[dict[str, Any], Any]:
    """Load the event, route it, check its fields, then build the context (`context(repository, default
    branch)`, from the payload) and call the moment: ({"event", "handled", "outputs"}, the context or None).
    Nothing is built for an event no moment wants: that answer costs only this module."""
    payload = load(path)
    taken = route(name, payload, bot_login)
    if taken is None:
        return {"event": name, "handled": False, "outputs": {}}, None
    check_fields(taken, payload, str(path))
    ctx = context(field(payload, "repository.full_name"), field(payload, "repository.default_branch"))
    return {"event": name, "handled": True, "outputs": taken.call(ctx, payload)}, ctx


def handle_hub(path: Path, context: Callable[[str | None, str | None], Any]) -> tuple[dict[str, Any], Any]:
    """`handle` for a Hugging Face webhook payload: a discussion created or commented syncs that discussion."""
    from kiki_bot.core.hubrequests import webhook_discussion

    key = webhook_discussion(load(path), str(path))
    if key is None:
        return {"event": "hub", "handled": False, "outputs": {}}, None
    from kiki_bot import hubsync

    ctx = context(None, None)  # the repository (GITHUB_REPOSITORY) is asked for its default branch
    return {"event": "hub", "handled": True, "outputs": hubsync.sync(ctx, only=key)}, ctx


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
