"""Routing a GitHub event to the moment it belongs to, like a bot's webhook router.

Kept free of heavy imports: an event that concerns no moment is answered in milliseconds, and each
behaviour module is imported only when its event arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiki_bot.errors import BadInput

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


def route(name: str, payload: dict, bot_login: str) -> Handler | None:
    """The handler for this event, or None when kiki-bot has nothing to do with it."""
    sender = _field(payload, "sender") or {}
    if sender.get("type") == "Bot" or sender.get("login") == bot_login:
        return None  # never react to bots, ourselves included: no loops
    action = payload.get("action")
    if name == "push":
        ref = payload.get("ref") or ""
        if ref.startswith("refs/tags/") and "/v" in ref and not payload.get("deleted"):
            return on_tag_push
        return None
    if name == "pull_request":
        head = _field(payload, "pull_request", "head", "ref") or ""
        if action == "closed" and _field(payload, "pull_request", "merged") and head.startswith("kiki/release/"):
            return on_review_merged
        return None
    return None
