"""Escaping for everything the bot writes into Markdown: issue comments, PR bodies, cards.

Text from outside (issue bodies, data, config) must never become HTML, a link, an image, a
mention that pings, or template syntax. `md` keeps text readable; `code` shows text verbatim.
"""

from __future__ import annotations

from markupsafe import Markup

_MD_SPECIALS = set("\\`*_[]#!|~<>")
ZWSP = "&#8203;"
# A zero-width space after `@` keeps the text readable and stops GitHub from turning it into a mention.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "@": "@" + ZWSP, '"': "&quot;"}


def md(value: object) -> str:
    """Inline Markdown text that renders as the literal characters, with links and mentions defused."""
    if isinstance(value, Markup):
        return str(value)
    out = []
    for ch in str(value).replace("\r", "").replace("\n", " "):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _MD_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    # GitHub autolinks bare URLs and www. hosts: break the pattern without changing what a reader sees.
    return text.replace("://", ":" + ZWSP + "//").replace("www.", "www" + ZWSP + ".")


def code(value: object, limit: int = 300) -> str:
    """An inline code span: never a link, image, mention or HTML; long values are cut and say so."""
    text = str(value).replace("\r", "").replace("\n", " ")
    if len(text) > limit:
        text = text[:limit] + "…"
    run, longest = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
