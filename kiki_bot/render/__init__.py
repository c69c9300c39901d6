"""Rendering the card record to README.md (Hub YAML + PST body), CHANGELOG.md and card.json.

The body is Jinja2 with StrictUndefined, and every `{{ value }}` is Markdown-escaped unless the
template marks it safe; the YAML block comes from `huggingface_hub.ModelCardData`, never from Jinja.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from kiki_bot.core.cardmodel import Card
from kiki_bot.core.errors import BadInput
from kiki_bot.core.escape import cell, code, code_block, html_text, link_text, md, prose

README, CHANGELOG, CARD_JSON = "README.md", "CHANGELOG.md", "card.json"


def templates_dir() -> Path:
    """The templates live inside this package, so a checkout and an installed wheel find them in one place."""
    return Path(__file__).resolve().parent / "templates"


def _url(value: object) -> Markup:
    text = str(value)
    if not text.startswith(("https://", "http://")) or any(c in text for c in " <>()[]\"'`\n"):
        raise BadInput("url", f"refusing to render {text!r} as a link (expected an http(s) URL without spaces, "
                       "quotes, brackets or parentheses)")
    return Markup(text)


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # spelled in English whatever the locale
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _link(value: object) -> Markup | str:
    """A link for an http(s) URL or an e-mail address (`mailto:`), so that copying it gives the address as
    written; anything else as text."""
    text = str(value)
    if text.startswith(("https://", "http://")):
        return _autolink(text)
    if _EMAIL.fullmatch(text):
        return Markup(f"[{link_text(text)}](mailto:{text})")
    return md(text)


def _autolink(value: object) -> Markup:
    """A URL shown as itself, `<URL>`: the raw Markdown holds the address exactly, with no escape in it."""
    return Markup(f"<{_url(value)}>")


def _day(day: dt.date) -> str:
    """The template's DD/MM/YY, with the date spelled out beside it: a two-digit year is ambiguous alone."""
    return f"{day:%d/%m/%y} ({day.day} {MONTHS[day.month - 1]} {day.year})"


def _score(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "not measured"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        finalize=md,
        keep_trailing_newline=True,
        trim_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        dmy=_day,
        yesno=lambda b: Markup("☒ Yes ☐ No" if b else "☐ Yes ☒ No"),
        modalities=lambda ms: ", ".join(m.value.capitalize() for m in ms) or "Not applicable.",
        url=_url,
        autolink=_autolink,
        code=lambda v: Markup(code(v)),
        codes=lambda vs, table=False: Markup(", ".join(code(v, table=table) for v in vs)),
        cell=lambda v, as_code=False: Markup(cell(v, as_code=as_code)),
        link_text=lambda v: Markup(link_text(v)),
        link=_link,
        code_block=lambda v, info="": Markup(code_block(str(v), info)),
        html_text=lambda v: Markup(html_text(v)),
        safe=Markup,
        bytes=_bytes,
        days=lambda d: f"{d:g} days",
        percent=lambda share: f"{share:g} %",
        score=_score,
        repo_id=lambda url: str(url).removeprefix("https://huggingface.co/"),
    )
    return env


@lru_cache(maxsize=1)
def card_environment() -> jinja2.Environment:
    """The card's: its free text is the provider's own, so what it puts in backticks, its URLs and its addresses
    become code spans (`prose`), which copy exactly as written."""
    return environment().overlay(finalize=prose)


def readme(card: Card) -> str:
    """The Hub model card: YAML metadata from ModelCardData, then the PST body."""
    from huggingface_hub import ModelCardData

    meta = dict(card.hub)
    data = ModelCardData(
        license=meta.pop("license"),
        base_model=meta.pop("base_model"),
        library_name=meta.pop("library_name"),
        pipeline_tag=meta.pop("pipeline_tag"),
        language=meta.pop("language"),
        tags=meta.pop("tags"),
        datasets=meta.pop("datasets") or None,
        **meta,
    )
    body = card_environment().get_template("card.md.j2").render(
        card=card, h=card.header, s1=card.section1, s21=card.section21, s22=card.section22, s23=card.section23,
        s24=card.section24_26, s3=card.section3, r=card.section3.removals, c=card.compute)
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def metadata(readme: str) -> dict:
    """The Hub YAML metadata of a README, read the way the Hub library reads it."""
    from huggingface_hub import ModelCard

    return ModelCard(readme).data.to_dict()


def changelog(card: Card) -> str:
    repo = card.section1.model_url.removeprefix("https://huggingface.co/")
    env = environment().overlay()
    env.filters["version_url"] = lambda v: _url(f"https://huggingface.co/{repo}/tree/v{v}")
    return env.get_template("changelog.md.j2").render(card=card)


def card_json(card: Card) -> str:
    return json.dumps(card.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"


def files(card: Card) -> dict[str, str]:
    return {README: readme(card), CHANGELOG: changelog(card), CARD_JSON: card_json(card)}


def load_card(card_dir: Path) -> Card | None:
    path = card_dir / CARD_JSON
    if not path.is_file():
        return None
    from pydantic import ValidationError

    try:
        return Card.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise BadInput.validation(Card, exc.errors(), str(path)) from None


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
