"""Escaping for everything the bot writes into Markdown: issue comments, PR bodies, cards.

Text from outside (issue bodies, data, config) must never become HTML, a link, an image, a mention that
pings, an issue reference or template syntax. There is one function per Markdown context, because what is
safe in one is not in another (a `|` inside a code span still splits a table row; `\\_` inside a code span
shows the backslash): `md` (inline text), `code` (a code span), `cell` (a table cell), `link_text` (the
text of a link), `code_block` (a fenced block) and `html_text` (text inside an HTML element such as
`<summary>`). Every template and every comment the bot writes uses these; tests/test_rendering.py renders
them all with GitHub's cmark-gfm.
"""

from __future__ import annotations

import re

from markupsafe import Markup

_MD_SPECIALS = set("\\`*_[]#!|~<")
ZWSP = "&#8203;"
# A zero-width space after `@`, and between `#` or `GH-` and a digit, keeps the text readable and stops
# GitHub from turning it into a mention or an issue reference (`#1`, `owner/repo#1`, `GH-1`).
# `<` and `&` as references (no tag, autolink or entity can start); `>` and `"` mean nothing mid-line.
_ENTITIES = {"&": "&amp;", "<": "&lt;"}
_ISSUE_REF = re.compile(r"(?i)(\\#|\bgh-)(?=[0-9])")
# At the start of a line these open a block: a list item (`- `, `+ `, `1. `, `1) `), a rule, an underline or a
# block quote (`>`).
_BLOCK_START = re.compile(r"(?:[0-9]{1,9}(?P<p>[.)])|(?P<b>[-+]))(?=[ \t]|$)|(?P<r>[-=])[-= \t]*$|(?P<q>>)")
_WWW = re.compile(r"(?i)(www)\.")


def _one_line(value: object) -> str:
    return str(value).replace("\r", "").replace("\n", " ")


def _escaped(text: str) -> str:
    """Markdown and HTML specials made literal (backslash or character reference)."""
    return "".join(_ENTITIES.get(ch) or ("\\" + ch if ch in _MD_SPECIALS else ch) for ch in text)


def _refs(text: str) -> str:
    return "".join(f"&#{ord(c)};" for c in text)


def md(value: object) -> str:
    """Inline Markdown text that renders as the literal characters, with links and mentions defused.

    One line, safe mid-line, at the start of a line and in a table cell (`|` is escaped).
    """
    if isinstance(value, Markup):
        return str(value)
    text = _escaped(_one_line(value)).replace("@", "@" + ZWSP)
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(lead) + len(body) :]
    # Edge whitespace as character references: four leading spaces (or a tab) open a code block, two trailing
    # make a line break, and any at an edge stops the template's own `**…**` around the value from closing.
    if start := _BLOCK_START.match(body):
        at = start.start(start.lastgroup or 0)
        body = f"{body[:at]}\\{body[at:]}"
    text = _ISSUE_REF.sub(r"\1" + ZWSP, _refs(lead) + body + _refs(trail))
    # GitHub autolinks bare URLs and www. hosts: break the pattern without changing what a reader sees.
    return _WWW.sub(r"\1" + ZWSP + ".", text.replace("://", ":" + ZWSP + "//"))


# In the provider's own prose: what the writer put in backticks, URLs and e-mail addresses.
_VERBATIM = re.compile(r"`([^`\n]+)`|https?://[^\s<>\"'`]*[^\s<>\"'`.,;:!?)]"
                       r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_TOKEN, _TOKENS = 0xE000, 4096  # private-use characters stand in for the verbatim parts while the rest is escaped


def prose(value: object) -> str:
    """The provider's own prose (descriptions, selections, measures) as inline text, like `md`, except that
    backtick spans, URLs and e-mail addresses become code spans: they copy exactly as written, with no
    zero-width space or escape inside, and link nothing."""
    if isinstance(value, Markup):
        return str(value)
    text = _one_line(value)
    parts = [m.group(1) or m.group(0) for m in _VERBATIM.finditer(text)]
    if not parts or len(parts) > _TOKENS or any(_TOKEN <= ord(c) < _TOKEN + _TOKENS for c in text):
        return md(text)
    count = iter(range(len(parts)))
    marked = _VERBATIM.sub(lambda _: chr(_TOKEN + next(count)), text)
    return re.sub(f"[{chr(_TOKEN)}-{chr(_TOKEN + _TOKENS - 1)}]",
                  lambda t: code(parts[ord(t.group()) - _TOKEN], limit=len(text)), md(marked))


def code(value: object, limit: int = 300, *, table: bool = False) -> str:
    """An inline code span: never a link, image, mention or HTML; long values are cut and say so.

    The fence is longer than any run of backticks inside, padded with a space when the content starts or
    ends with a backtick (or a space, which the span would strip). In a table (`table=True`) `|` is escaped
    even inside the span, since GitHub splits the row before it parses code spans.
    """
    text = _one_line(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    longest = max(map(len, re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = "`" in (text[:1], text[-1:]) or not text or (text[:1] == text[-1:] == " " and text.strip(" "))
    pad = " " if pad else ""
    if table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(value: object, *, as_code: bool = False) -> str:
    """One table cell's content: inline text (`md`, which escapes `|`), or a code span with `|` escaped."""
    return code(value, table=True) if as_code else md(value)


def link_text(value: object) -> str:
    """The text between `[` and `]` of a link the bot makes: brackets cannot close it early, and nothing in it
    becomes markup. GitHub links nothing inside a link (no autolink, mention or issue reference), so unlike
    `md` it needs no zero-width spaces and a URL shown as its own link text reads as written."""
    return str(value) if isinstance(value, Markup) else _escaped(_one_line(value))


def code_block(text: str, info: str = "") -> str:
    """A fenced code block shown verbatim, with a fence longer than any backtick run inside, so no line of
    the text can close it."""
    body = text.replace("\r", "")
    fence = "`" * max(3, 1 + max(map(len, re.findall("`+", body)), default=0))
    return f"{fence}{info}\n{body}\n{fence}"


def html_text(value: object) -> str:
    """Text inside an HTML element (`<summary>`): HTML-escaped, with mentions and issue references defused
    as in `md` (Markdown is not parsed there, so no backslashes)."""
    text = re.sub(r"(?i)(#|\bgh-)(?=[0-9])", "\\1\u200b", _one_line(value).replace("@", "@\u200b"))
    return str(Markup.escape(text))
