"""DESIGN.md section 7, invariant 6: nothing a requester wrote is live.

Every comment, PR body and card the bot writes is rendered from hostile text with GitHub's own renderer
(tests/rendering.py) and compared with the same document rendered from plain words: no link, image, raw
HTML element or extra table cell appears, and no mention or issue reference outside code. The escaping
functions themselves are checked to show the text exactly as written.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from types import SimpleNamespace

import pytest
from factory import make_project
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rendering import inert, live, page, squash, to_html, visible
from test_removal_flow import GH_REPO, body, comment_event, env, handle, issue_event  # noqa: F401

from kiki_bot import publish, removal, render, review
from kiki_bot.core.errors import BadInput
from kiki_bot.core.escape import cell, code, code_block, html_text, link_text, md
from kiki_bot.core.issueform import parse_removal_request
from kiki_bot.core.carddiff import Change
from kiki_bot.repo import cards
from kiki_bot.repo.project import Project

FRAGMENTS = [
    "<img src=x onerror=alert(1)>", "<img/src=x>", "![i](https://evil.example/i.png)", "[x](https://evil.example)",
    "[x][1]", "[1]: https://evil.example", "<https://evil.example>", "https://evil.example/x", "www.evil.example",
    "WWW.Evil.example", "http://x.example", "a@b.example", "mailto:a@b.example", "@octocat", "@acme/team",
    "@-x", "#123", "acme/fw#1", "GH-12", "gh-7", "|", "||", "\\|", "`", "``", "```", "~~~", "${{ secrets.HF_TOKEN }}",
    "{{ 7*7 }}", "{% raw %}", "&amp;", "&#64;x", "&lt;b&gt;", "&#x23;1", "<b>", "</td>", "<!-- kiki-bot:request:x -->",
    "<details open>", "<br>", "\\", "*x*", "_x_", "**", "~~x~~", "[^1]", "- ", "+ ", "1. ", "1) ", "> ", "# ",
    "---", "===", "    ", "\t", ":+1:", "<script>alert(1)</script>", "<a href=https://evil.example>x</a>",
    "javascript:alert(1)", "\n", "\n\n", "\r\n", "$x$", "[ ]", "- [x] ",
]
HOSTILE = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=4),
    min_size=1,
    max_size=8,
).map("".join).filter(str.strip)
TIGHT = [f for f in FRAGMENTS if not any(c.isspace() or c in "*" for c in f)]
# what fits in a URL's query (no whitespace, no `*`): the part of an identifier line that is echoed back
QUERY = st.lists(st.sampled_from(TIGHT), min_size=1, max_size=6).map("".join)
HARMLESS = "zzz"
ONE_LINE = settings(max_examples=300, deadline=None)


def _exactly(text: str) -> str:
    return squash(text.replace("\r", "").replace("\n", " "))


# ---------------------------------------------------------------- each escaping function, in its own context
@ONE_LINE
@given(text=HOSTILE)
def test_md_shows_the_text_literally_mid_line_and_at_a_line_start(text: str) -> None:
    for doc in (f"Reason: {md(text)} (end)", md(text), f"- {md(text)}", f"**{md(text)}**"):
        harmless = doc.replace(md(text), md(HARMLESS))
        assert live(doc, harmless) == [], doc
    assert visible(md(text)) == _exactly(text)


@ONE_LINE
@given(text=HOSTILE)
def test_code_span_holds_any_text(text: str) -> None:
    doc = f"See {code(text)} here"
    assert live(doc, f"See {code(HARMLESS)} here") == []
    [shown] = re.findall(r"<code>(.*?)</code>", to_html(doc), re.S)
    assert html.unescape(shown) == text.replace("\r", "").replace("\n", " ")


@ONE_LINE
@given(text=HOSTILE, other=HOSTILE)
def test_table_cells_stay_in_their_cell_even_as_code(text: str, other: str) -> None:
    """Issue 12 defect 8: `|` in a code span splits a GitHub table row unless it is escaped there too."""

    def table(a: str, b: str) -> str:
        return f"| A | B |\n|---|---|\n| {cell(a, as_code=True)} | {cell(b)} |\n"

    assert live(table(text, other), table(HARMLESS, HARMLESS)) == []
    cells = re.findall(r"<td>(.*?)</td>", to_html(table(text, other)), re.S)
    assert html.unescape(re.sub(r"</?code>", "", cells[0])) == text.replace("\r", "").replace("\n", " ")
    assert squash(html.unescape(cells[1])) == _exactly(other)


@ONE_LINE
@given(text=HOSTILE)
def test_link_text_is_only_the_text_of_the_bots_link(text: str) -> None:
    doc = f"[{link_text(text)}](https://example.org/card)"
    assert live(doc, f"[{link_text(HARMLESS)}](https://example.org/card)") == []
    assert squash("".join(page(doc).text)) == _exactly(text)


@ONE_LINE
@given(lines=st.lists(HOSTILE, max_size=4))
def test_code_block_holds_any_lines(lines: list[str]) -> None:
    text = "\n".join(lines)
    doc = "Diff:\n\n" + code_block(text, "diff") + "\n\nafter"
    assert live(doc, "Diff:\n\n" + code_block(HARMLESS, "diff") + "\n\nafter") == []
    [shown] = re.findall(r"<code[^>]*>(.*?)</code>", to_html(doc), re.S)
    assert html.unescape(shown) == text.replace("\r", "") + "\n"


@ONE_LINE
@given(text=HOSTILE)
def test_html_text_inside_a_summary(text: str) -> None:
    def doc(t: str) -> str:
        return f"<details><summary>✅ {html_text(t)}: 2 fields</summary>\n\nbody\n\n</details>\n"

    assert live(doc(text), doc(HARMLESS)) == []
    assert "<summary>" in to_html(doc(text)) and "</summary>" in to_html(doc(text))


def test_code_span_fences_and_padding() -> None:
    assert code("a `b` c") == "``a `b` c``"
    assert code("`x") == "`` `x ``" and code("x``") == "``` x`` ```"
    assert code("a|b") == "`a|b`" and cell("a|b", as_code=True) == "`a\\|b`"
    assert code("@everyone ![i](https://evil/i.png)") == "`@everyone ![i](https://evil/i.png)`"


# ---------------------------------------------------------------- every document the bot writes
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(make_project(tmp_path_factory.mktemp("render") / "repo"))


def _triage_documents(project: Project, query: str) -> dict[str, str]:
    """The triage comment (valid and invalid) and the approval/purge comment for identifier lines that carry
    `query` where a URL may: the query (kept in the normalised form) and the fragment (only as written)."""
    lines = ["acme/fw", f"https://evil.example/p?{query}", f"https://evil.example/q/#{query}",
             f"https://github.com/o/r/issues?{query}"]
    req = parse_removal_request(body(*lines))
    assert not isinstance(req, list), req
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    triaged = removal.Triaged("R-7", 7, [str(s.selector) for s in req.selectors], req.body_sha256, at,
                              at + dt.timedelta(days=30), ["tiny-lora"], [3, 0, 1, 0])
    ctx = SimpleNamespace(project=project)
    invalid = parse_removal_request(body("acme/fw", f"x {query}", f"everyone? {query}", f"*{query}"))
    assert isinstance(invalid, list)
    return {
        "triage": removal._request_comment(ctx, triaged, req, {"acme-fw": 4}, [], "received, awaiting approval.",
                                           "a maintainer approves."),
        "purged": removal._request_comment(ctx, triaged, None, {"acme-fw": 4}, [], "approved and purged.",
                                           "retrained."),
        "invalid": render.environment().get_template("removal_comment.md.j2").render(state="invalid",
                                                                                     errors=invalid),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERY)
def test_triage_and_purge_comments_echo_identifiers_inert(project: Project, query: str) -> None:
    """Issue 12 defect 8: an identifier holding `|` broke out of its table cell into live Markdown."""
    got, harmless = _triage_documents(project, query), _triage_documents(project, HARMLESS)
    for kind in got:
        assert live(got[kind], harmless[kind]) == [], (kind, got[kind])
    assert f"https://evil.example/p?{squash(query)}" in visible(got["triage"])


@settings(max_examples=60, deadline=None)
@given(text=HOSTILE)
def test_purge_and_release_pr_bodies(text: str) -> None:
    def purge(t: str) -> str:
        return removal._purge_pr_body(f"R-{t}", {(t, 1), ("acme-fw", 2)}, [t, "tiny-lora"])

    assert live(purge(text), purge(HARMLESS)) == []

    def release(t: str) -> str:
        return render.environment().get_template("release_pr.md.j2").render(
            tag=f"a/v{t}", adapter=t, version=t, hub_pr=3, hub_pr_url="https://huggingface.co/o/a/discussions/3",
            sources={t: {"used": 5, "excluded_removed": 1, "excluded_reappeared": 0}}, train=4, valid=1,
            honoured=[f"R-{t}", "R-2"], metrics=SimpleNamespace(
                iters=10, resumed_from=[t], trained_tokens=1000, tokens_per_second=50.0, wall_time_s=20.0,
                peak_memory_gb=1.0), hardware=t, timings={t: 1.0}, spark_train=t, spark_val=t, final_train=t,
            final_val=t, curve_url="https://github.com/o/r/blob/b/cards/a/loss-curve.svg",
            evaluation=SimpleNamespace(benchmark=t, metric=t, base=0.5, adapter=0.6, delta=0.1),
            card_changes=[t, f"Section {t}"])

    assert live(release(text), release(HARMLESS)) == []


@settings(max_examples=60, deadline=None)
@given(text=HOSTILE)
def test_card_review_sticky_comment(text: str) -> None:
    def comment(t: str, collapse: bool) -> str:
        one = review.AdapterReview(
            t, False, [Change(t, t, t, t), Change("1.3", "size", "", t)],
            [review.Check("Committed card matches the data", [f"-{t}", f"+{t}"], diff=True),
             review.Check("Licence policy", [t]), review.Check("Hub metadata valid", [])])
        return review.comment_text([one] * (3 if collapse else 1))

    for collapse in (False, True):
        assert live(comment(text, collapse), comment(HARMLESS, collapse)) == []


def _string_leaves(doc: object, path: tuple = ()) -> list[tuple]:
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in _string_leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in _string_leaves(v, (*path, i))]
    return [path] if isinstance(doc, str) else []


def _with(doc: dict, paths: list[tuple], value: str) -> dict:
    doc = json.loads(json.dumps(doc))
    for path in paths:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return doc


@pytest.fixture(scope="module")
def card_and_free_text(project: Project):
    """A real card, and every string field of it that takes any text (the card renders with it)."""
    adapter = next(iter(project.adapters.values()))
    card = cards.render_adapter(project, adapter, "0.1.0", dt.date(2026, 5, 6)).card
    doc = card.model_dump(mode="json", by_alias=True)
    free = []
    for path in _string_leaves(doc):
        try:
            probe = type(card).model_validate(_with(doc, [path], "<b>x</b> @y #1 | `"))
            render.readme(probe), render.changelog(probe)
        except Exception:  # noqa: BLE001  not free text (a URL, a date, an enum): the schema keeps it out
            continue
        free.append(path)
    for contact in (("section1", "provider_contact"), ("section3", "private_contact")):
        free.remove(contact)  # the provider's own contacts: a URL or an address there is linked, by design
    assert len(free) > 20
    return type(card), doc, free


def _card_files(card) -> tuple[str, str, dict]:
    """README body (GitHub shows the YAML front matter as a table, not as Markdown), CHANGELOG, metadata."""
    import yaml

    head, meta, body = re.split(r"^---$", render.readme(card), maxsplit=2, flags=re.M)
    assert head == ""
    return body, render.changelog(card), yaml.safe_load(meta)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE)
@example(text="0\xa0")  # the last YAML value, stripped by the writer, read back as 0
@example(text="<img src=x onerror=alert(1)>|`")  # a backtick after a pipe: once a live <img> in a changelog line
def test_pst_card_changelog_and_release_notes(card_and_free_text, text: str) -> None:
    model, doc, free = card_and_free_text
    got, harmless = (model.model_validate(_with(doc, free, t)) for t in (text, HARMLESS))
    try:
        readme, changelog, meta = _card_files(got)
    except BadInput as exc:  # a field rendered as a link holds text that is not a plain URL: refused
        assert "refusing to render" in str(exc)
        return
    plain_readme, plain_changelog, _ = _card_files(harmless)
    assert live(readme, plain_readme, code_spans=True) == []  # the card's prose: addresses as code spans
    assert live(changelog, plain_changelog) == []
    assert live(publish.changelog_text(got), publish.changelog_text(harmless)) == []  # the GitHub release notes
    for key, value in got.model_dump(mode="json", by_alias=True)["hub"].items():  # YAML quotes: the same back
        if value and key in meta:
            assert (set(meta[key]) == set(value)) if isinstance(value, list) else meta[key] == value, key


# ---------------------------------------------------------------- end to end: what the bot posts on GitHub
HOSTILE_FLOW = [
    "x=|![i](https://evil.example/i.png)|@octocat|#12|acme/fw#1|<b>b</b>|",
    "q=`|``<img/src=x>${{secrets.HF_TOKEN}}{{7+7}}&amp;&#64;x[x](https://evil.example)www.evil.example",
]


@pytest.mark.parametrize("query", HOSTILE_FLOW)
def test_everything_posted_for_a_hostile_request_is_inert(env, gh, cli, query):  # noqa: F811
    """Triage, a refused self-approval, a maintainer's approval (purge comment and PR), a rejection with a
    hostile reason (notice and PR), an invalid request: every comment and PR body, rendered by cmark-gfm."""
    lines = ["acme/fw", f"https://evil.example/p?{query}", f"https://example.com/a#{query}"]
    numbers = []
    for lines_ in (lines, lines, [*lines, "*", f"domain:{query}", query]):
        text = body(*lines_)
        n = gh.open_issue(GH_REPO, "Removal", text, user="octo-dev", labels=["removal-request"])
        assert handle(cli, env, "issues", issue_event(n, text)).code == 0
        numbers.append(n)
    reason = f"{query} @octocat #3 <b>x</b>"
    for n, command, user, cid in ((numbers[0], "/kiki approve", "octo-dev", 1),
                                  (numbers[0], "/kiki approve", "maint", 2),
                                  (numbers[1], f"/kiki reject {reason}", "maint", 3)):
        assert handle(cli, env, "issue_comment", comment_event(n, command, user, comment_id=cid)).code == 0
    posted = [(f"comment on #{n}", c.body) for n in numbers for c in gh.comments(GH_REPO, n)
              if c.user == "kiki-bot[bot]"]
    posted += [(f"PR {p.title}", p.body or "") for p in gh.pulls(GH_REPO)]
    assert len(posted) >= 7, posted  # 2 on each request (sticky + notice), the invalid one, 2 PRs
    for where, text in posted:
        assert inert(text) == [], (where, text)
    shown = " ".join(visible(text) for _, text in posted)
    assert squash(f"https://evil.example/p?{query}") in shown and squash(reason) in shown
