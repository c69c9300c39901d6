"""Rendering Markdown as GitHub does (cmark-gfm through PyPI `cmarkgfm`) and reading what is live in it.

GitHub renders comments, PR bodies and READMEs with cmark-gfm and the table, autolink, strikethrough and
tagfilter extensions (plus task lists and footnotes), then links @mentions and issue references in the
text that is not inside code or a link. So a document is safe when its HTML has no element the same
document rendered from harmless text lacks (a link, an image, raw HTML, a split table cell), and no text
outside code and the bot's own links reads as a mention or an issue reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

EXTENSIONS = ["table", "autolink", "strikethrough", "tagfilter", "tasklist"]
MENTION = re.compile(r"@[A-Za-z0-9_]")
ISSUE_REF = re.compile(r"#[0-9]|\bgh-[0-9]", re.IGNORECASE)
_VERBATIM = {"code", "pre", "a"}  # GitHub links nothing inside these
_VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col", "embed", "param", "track"}
BOT_MARKER = re.compile(r" kiki-bot:[a-z0-9:_-]+(:[A-Za-z0-9+/=]+)? ")


def to_html(markdown: str) -> str:
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_FOOTNOTES, extensions=EXTENSIONS
    )


@dataclass
class Page(HTMLParser):
    """The parts of rendered HTML that matter: elements in order, text by whether GitHub would link in it."""

    elements: list[tuple[str, tuple]] = field(default_factory=list)
    linkable: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _open: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.elements.append((tag, tuple(sorted(attrs))))
        if tag not in _VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.elements.append((tag, tuple(sorted(attrs))))

    def handle_endtag(self, tag: str) -> None:
        self.elements.append(("/" + tag, ()))
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not _VERBATIM & set(self._open):
            self.linkable.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def page(markdown: str) -> Page:
    p = Page()
    p.feed(to_html(markdown))
    p.close()
    return p


def visible(markdown: str) -> str:
    """All text a reader sees, whitespace collapsed and zero-width spaces dropped."""
    return squash("".join(page(markdown).text))


def squash(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


def live(hostile: str, harmless: str, *, code_spans: bool = False) -> list[str]:
    """What in `hostile` (a document rendered from attacker text) is live, judged against `harmless` (the same
    document rendered from plain words): extra or different elements, mentions, issue references, comments.
    `code_spans`: the document may turn parts of the text into code spans, which are inert (nothing inside
    code is linked), so `<code>` elements do not count."""
    got, want = page(hostile), page(harmless)
    if code_spans:
        for p in (got, want):
            p.elements = [e for e in p.elements if e[0] not in ("code", "/code")]
    problems = []
    if got.elements != want.elements:
        diff = next(
            (i for i, (a, b) in enumerate(zip(got.elements, want.elements, strict=False)) if a != b),
            min(len(got.elements), len(want.elements)),
        )
        problems.append(
            f"elements differ at {diff}: {got.elements[diff : diff + 3]} instead of {want.elements[diff : diff + 3]}"
        )
    if len(got.comments) != len(want.comments):
        problems.append(f"HTML comments {got.comments!r}, expected {len(want.comments)}")
    return problems + live_text(got)


def live_text(got: Page) -> list[str]:
    """Mentions and issue references GitHub would link, and HTML comments other than the bot's markers."""
    problems = []
    text = "".join(got.linkable)
    problems += [f"mention {m.group()!r} in {text[max(0, m.start() - 20) : m.end() + 20]!r}"
                 for m in MENTION.finditer(text)]
    problems += [f"issue reference {m.group()!r} in {text[max(0, m.start() - 20) : m.end() + 20]!r}"
                 for m in ISSUE_REF.finditer(text)]
    if not all(BOT_MARKER.fullmatch(c) for c in got.comments):
        problems.append(f"HTML comments {got.comments!r}")
    return problems


# What the bot's own removal comments and PR bodies are made of: no links, images or raw HTML at all.
PLAIN = {"p", "strong", "em", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}


def inert(markdown: str) -> list[str]:
    """`live` for a document that has no harmless twin: only PLAIN elements, without attributes, every table
    row as wide as its header, and no mention, issue reference or comment other than the bot's markers."""
    got = page(markdown)
    problems = [f"element {tag} {attrs}" for tag, attrs in got.elements
                if tag.lstrip("/") not in PLAIN or attrs]
    widths, row = [], 0
    for tag, _ in got.elements:
        if tag == "tr":
            row = 0
        elif tag in ("td", "th"):
            row += 1
        elif tag == "/tr":
            widths.append(row)
        elif tag == "/table":
            if len(set(widths)) > 1:
                problems.append(f"table rows of {sorted(set(widths))} cells")
            widths = []
    return problems + live_text(got)
