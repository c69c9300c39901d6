"""Removal requests that arrive as Community discussions on the Hugging Face Hub. Pure: what the bot reads in a
discussion, the GitHub issue it mirrors it to, and the answers it posts back at each step.

A discussion's title and messages are attacker text, exactly like an issue's: the mirror holds them inside a
fenced code block (never live Markdown), names the Hub author escaped, and every answer on the Hub is bot text
with the same escaping as on GitHub (kiki_bot.escape).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kiki_bot.core.errors import BadInput
from kiki_bot.core.escape import code_block, md

FORM_HEADING = re.compile(r"(?im)^ {0,3}###[ \t]+content[ \t]+to[ \t]+remove[ \t]*$")
# A title that says it is a removal request, though its text is not the form: mirrored, so triage answers
# field by field (and the requester learns where the form is) instead of the discussion going unheard.
_TITLE = re.compile(r"(?i)\b(removal|remove|opt[- ]?out|take[- ]?down|gdpr|art(icle)?\.? ?17)\b")
_MIRROR = re.compile(r"<!-- kiki-bot:hub-discussion:([A-Za-z0-9+/=]+) -->")
_KEY = re.compile(r"(model|dataset):([\w.-]+/[\w.-]+)#([0-9]+)")


@dataclass(frozen=True)
class Message:
    author: str
    text: str


@dataclass(frozen=True)
class Thread:
    """A Hub discussion as the bot reads it (not a pull request); `messages` are its comments, oldest first."""

    repo_type: str
    repo_id: str
    num: int
    title: str
    author: str
    status: str
    created_at: dt.datetime
    url: str
    messages: tuple[Message, ...]

    @property
    def key(self) -> tuple[str, str, int]:
        return self.repo_type, self.repo_id, self.num


def is_request(thread: Thread) -> bool:
    """The form's text in a message of the discussion's author, or a title that says it is a removal request."""
    text = request_text(thread)
    return bool(text and (FORM_HEADING.search(text) or _TITLE.search(thread.title)))


def request_text(thread: Thread) -> str:
    """The request as the author wrote it: their newest message holding the form (a corrected one replaces an
    invalid one until triage accepts it), else the opening message."""
    own = [m.text for m in thread.messages if m.author == thread.author]
    with_form = [t for t in own if FORM_HEADING.search(t)]
    return with_form[-1] if with_form else (own[0] if own else "")


def marker(key: tuple[str, str, int]) -> str:
    """The hidden marker of a mirror (base64, like every marker the bot hides in what it writes)."""
    return f"<!-- kiki-bot:hub-discussion:{base64.b64encode(f'{key[0]}:{key[1]}#{key[2]}'.encode()).decode()} -->"


def mirrored(body: str | None) -> tuple[str, str, int] | None:
    """The Hub discussion a mirrored issue's body names (only trust it in issues the bot opened)."""
    m = _MIRROR.search(body or "")
    try:
        key = _KEY.fullmatch(base64.b64decode(m.group(1)).decode()) if m else None
    except ValueError:
        return None
    return (key.group(1), key.group(2), int(key.group(3))) if key else None


def issue_title(thread: Thread) -> str:
    """Bot words only: the discussion's own title stays on the Hub."""
    return f"Removal request from the Hugging Face Hub ({thread.repo_id}, discussion {thread.num})"


def issue_body(thread: Thread) -> str:
    """The mirror: who asked where, then the request verbatim in a code block, which triage reads as the form."""
    return (f"{marker(thread.key)}\nFiled on the Hugging Face Hub by **{md(thread.author)}** in discussion "
            f"{thread.num} of {md(thread.repo_id)} ({thread.url}) on {thread.created_at:%Y-%m-%d %H:%M} UTC. "
            f"kiki-bot answers there at each step. The request as written there:\n\n"
            f"{code_block(request_text(thread))}\n")


Step = Literal["triaged", "invalid", "approved", "purged", "released", "closed"]


def answer_marker(step: str) -> str:
    return f"<!-- kiki-bot:hub:{step} -->"


def answered(thread: Thread, bot: str) -> set[str]:
    """The steps the bot has answered in this discussion (a marker in anyone else's message counts for nothing)."""
    found = set()
    for m in thread.messages:
        if m.author == bot and (hit := re.match(r"<!-- kiki-bot:hub:([^ ]+) -->", m.text)):
            found.add(hit.group(1))
    return found


def answer(step: str, text: str) -> str:
    return f"{answer_marker(step)}\n{text}"


# ---------------------------------------------------------------- Hugging Face webhooks
class _Scope(BaseModel):
    action: str
    scope: str


class _Repo(BaseModel):
    type: Literal["model", "dataset", "space"]
    name: str


class _Discussion(BaseModel):
    num: int
    isPullRequest: bool  # noqa: N815 (the Hub's name)


class _Webhook(BaseModel):
    version: Literal[3]


class HubWebhook(BaseModel):
    """The fields of a Hub webhook payload (version 3) the bot reads; the Hub sends more."""

    model_config = ConfigDict(extra="ignore")

    event: _Scope
    repo: _Repo
    discussion: _Discussion | None = None
    webhook: _Webhook


def webhook_discussion(payload: object, where: str) -> tuple[str, str, int] | None:
    """(repo type, repo id, discussion number) for a discussion created or commented; None for anything else."""
    try:
        hook = HubWebhook.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadInput(where, f"not a Hugging Face webhook payload (version 3): `{key}`: {first['msg']}") from None
    if hook.event.scope not in ("discussion", "discussion.comment") or hook.event.action not in ("create", "update"):
        return None
    if hook.discussion is None or hook.discussion.isPullRequest or hook.repo.type == "space":
        return None
    return hook.repo.type, hook.repo.name, hook.discussion.num
