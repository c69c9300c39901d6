"""The rendered issue form → a request or field-by-field errors; never an exception, whatever the body."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kiki_bot.core.issueform import (
    BODY,
    CONFIRMATION,
    CONFIRMATION_TEXT,
    CONTENT,
    DETAILS,
    MAX_IDENTIFIERS,
    REASON,
    RELATIONSHIP,
    FieldError,
    RemovalRequest,
    parse_removal_request,
)
from kiki_bot.core.selectors import AccountSelector, PathSelector, RepositorySelector

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github-events"
OWNER = "I am the author or rightsholder"
TDM = "Text and data mining opt-out (DSM Directive Art. 4(3))"
TICKED = f"- [X] {CONFIRMATION_TEXT}"


def form(
    content: str = "espressif/esp-idf",
    relationship: str = OWNER,
    reason: str = TDM,
    details: str = "_No response_",
    confirmation: str = TICKED,
) -> str:
    """A body as GitHub renders the removal-request form."""
    return (
        f"### {CONTENT}\n\n{content}\n\n### {RELATIONSHIP}\n\n{relationship}\n\n### {REASON}\n\n{reason}\n\n"
        f"### {DETAILS}\n\n{details}\n\n### {CONFIRMATION}\n\n{confirmation}"
    )


def errors(body: object) -> list[FieldError]:
    result = parse_removal_request(body)
    assert isinstance(result, list) and result, result
    return result


def request(body: str) -> RemovalRequest:
    result = parse_removal_request(body)
    assert isinstance(result, RemovalRequest), result
    return result


def test_valid_form() -> None:
    body = form(
        "https://github.com/Espressif\nespressif/esp-idf\n\nhttps://github.com/o/r/tree/v1/examples/blink",
        details="Please remove.\n\n### Notes\nkeep this heading in the details",
    )
    req = request(body)
    assert [(s.line, s.raw) for s in req.selectors] == [
        (1, "https://github.com/Espressif"),
        (2, "espressif/esp-idf"),
        (4, "https://github.com/o/r/tree/v1/examples/blink"),
    ]
    assert [s.selector for s in req.selectors] == [
        AccountSelector(owner="espressif"),
        RepositorySelector(owner="espressif", repo="esp-idf"),
        PathSelector(owner="o", repo="r", path="examples/blink", is_tree=True),
    ]
    assert (req.relationship, req.reason, req.confirmed) == (OWNER, TDM, True)
    assert req.details == "Please remove.\n\n### Notes\nkeep this heading in the details"
    assert req.body_sha256 == hashlib.sha256(body.encode()).hexdigest()


def test_crlf_whitespace_reordering_and_code_fence() -> None:
    body = (
        "###   content TO remove  \r\n\r\n```text\r\n  espressif/esp-idf  \r\n```\r\n"
        f"### {CONFIRMATION}\r\n\r\n-  [x]   {CONFIRMATION_TEXT}  \r\n"
        f"### {REASON}\r\n   Copyright   \r\n"
        f"  ### {RELATIONSHIP}\r\n\r\nOther\r\n\r\n"
    )
    req = request(body)
    assert [(s.line, s.raw) for s in req.selectors] == [(1, "espressif/esp-idf")]
    assert (req.relationship, req.reason, req.details) == ("Other", "Copyright", None)
    assert req.body_sha256 == hashlib.sha256(body.encode()).hexdigest()  # the exact bytes, \r\n included


BAD_AMONG_GOOD = (
    "espressif/esp-idf",
    "*",
    "^.+$",
    "everyone?",
    "github.com",
    "/esp-idf",
    "",
    "domain:com",
    "sha256:abc",
    "record:src",
    "hf:models/o/n",
    "ftp://example.com/",
    "https://github.com/o/r/blob/main",
    "https://github.com/o/r/blob/main/ok.c",
)


def test_every_invalid_line_is_reported_with_its_number_and_why() -> None:
    content = "\n".join(BAD_AMONG_GOOD)
    errs = errors(form(content))
    assert all(e.field == CONTENT for e in errs)
    assert [e.line for e in errs] == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]
    whys = [e.message for e in errs]
    assert "wildcards" in whys[0] and "pattern characters" in whys[1] and "pattern characters" in whys[2]
    assert "GitHub identifiers" in whys[3] and "owner is empty" in whys[4] and "public suffix" in whys[5]
    assert "64 hexadecimal" in whys[6] and "record:" in whys[7] and "only datasets" in whys[8]
    assert "only http" in whys[9] and "needs a path" in whys[10]
    assert str(errs[0]) == f"{CONTENT}, line 2: {whys[0]}"


def test_a_path_that_approval_would_refuse_is_refused_at_triage_line_by_line() -> None:
    """Issue 12 defect 6: `%2F..%2F` decodes to a `..` segment: an error for its line now, not at approval."""
    lines = "acme/fw\nhttps://github.com/acme/fw/blob/main/src%2F..%2Ff1.c\nhttps://example.com/a//"
    errs = errors(form(lines))
    assert [(e.field, e.line) for e in errs] == [(CONTENT, 2), (CONTENT, 3)]
    assert "`.` or `..` segment" in errs[0].message and "empty path segment" in errs[1].message


def test_one_bad_line_among_good_ones_invalidates_the_request() -> None:
    errs = errors(form("espressif\nespressif/esp-idf\neveryone?\nhttps://example.com/"))
    assert [(e.field, e.line) for e in errs] == [(CONTENT, 3)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (form(content="_No response_"), [(CONTENT, "required")]),
        (form(content="\n\n"), [(CONTENT, "required")]),
        (form(relationship="_No response_"), [(RELATIONSHIP, "required")]),
        (form(relationship="i am the author or rightsholder"), [(RELATIONSHIP, "not one of the options")]),
        (form(reason="Copyright\nOther"), [(REASON, "not one of the options")]),
        (form(reason="Because"), [(REASON, "not one of the options")]),
        (form(confirmation=f"- [ ] {CONFIRMATION_TEXT}"), [(CONFIRMATION, "must be ticked")]),
        (form(confirmation="_No response_"), [(CONFIRMATION, "expected the ticked checkbox")]),
        (form(confirmation="- [X] I agree"), [(CONFIRMATION, "expected the ticked checkbox")]),
        (form() + f"\n\n### {REASON}\n\nCopyright", [(REASON, "appears 2 times")]),
        (
            form().replace(f"### {REASON}", "### Motive"),
            [(RELATIONSHIP, "not one of the options"), (REASON, "missing")],
        ),
        (
            f"### {CONTENT}\n\nespressif",
            [(RELATIONSHIP, "missing"), (REASON, "missing"), (CONFIRMATION, "missing")],
        ),
        (
            form(content="everyone?", reason="x", confirmation=""),
            [(CONTENT, "pattern characters"), (REASON, "not one of"), (CONFIRMATION, "expected")],
        ),
    ],
)
def test_field_errors(body: str, expected: list[tuple[str, str]]) -> None:
    errs = errors(body)
    assert [e.field for e in errs] == [field for field, _ in expected]
    for err, (_, why) in zip(errs, expected, strict=True):
        assert why in err.message


def test_details_are_optional() -> None:
    body = form().replace(f"### {DETAILS}\n\n_No response_\n\n", "")
    assert request(body).details is None


def test_limits() -> None:
    lines = [f"owner{i}" for i in range(MAX_IDENTIFIERS)]
    assert len(request(form("\n".join(lines))).selectors) == MAX_IDENTIFIERS
    too_many = errors(form("\n".join([*lines, "one-more"])))
    assert [(e.field, e.line) for e in too_many] == [(CONTENT, None)]
    assert "201 identifiers" in too_many[0].message
    huge = errors(form(details="x" * 64 * 1024))
    assert [(e.field, e.message) for e in huge] == [(BODY, "larger than 64 KiB")]


@pytest.mark.parametrize(
    "body", [None, "", "   \n", b"### Content to remove", 42, "\ud800", "\x00\xff\ufffd"]
)
def test_junk_bodies(body: object) -> None:
    assert [e.field for e in errors(body)] == [BODY]


@pytest.mark.parametrize("name", ["issues.opened.payload.json", "issues.opened.with-empty-body.payload.json"])
def test_real_issue_bodies_that_are_not_forms(name: str) -> None:
    body = json.loads((FIXTURES / name).read_text())["issue"]["body"]
    errs = errors(body)
    assert [e.field for e in errs] == [BODY]


LABELS = [CONTENT, RELATIONSHIP, REASON, DETAILS, CONFIRMATION]
ANSWERS = st.one_of(
    st.sampled_from(
        [OWNER, "Other", TDM, "Copyright", TICKED, f"- [ ] {CONFIRMATION_TEXT}", "_No response_", ""]
    ),
    st.lists(
        st.sampled_from(
            [
                "espressif",
                "o/r",
                "*",
                "domain:example.com",
                "https://github.com/o/r/blob/m/a",
                "record:s#1",
                "sha256:" + "a" * 64,
                "hf:datasets/o/n",
                "^.+$",
                " ",
                "```",
            ]
        ),
        max_size=8,
    ).map("\n".join),
    st.text(max_size=60),
    st.text(alphabet="#-[]Xx _\n\r*`>/:.", max_size=60),
)
SECTIONS = st.tuples(
    st.sampled_from(LABELS).map(lambda label: f"### {label}")
    | st.sampled_from(LABELS).map(lambda label: f"  ###   {label.upper()}  ")
    | st.text(max_size=20).map(lambda t: f"### {t}"),
    ANSWERS,
)
VALID_LINES = st.lists(
    st.sampled_from(
        [
            "espressif",
            "o/r",
            "git@github.com:o/r.git",
            "https://example.com/a/",
            "domain:example.com",
            "record:s#1",
            "sha256:" + "A" * 64,
            "hf:datasets/o/n",
            "https://github.com/o/r/tree/m/d",
            "",
        ]
    ),
    min_size=1,
    max_size=8,
).map("\n".join)
FORMS = st.builds(
    form,
    content=VALID_LINES | ANSWERS,
    relationship=st.sampled_from([OWNER, "I act on behalf of the rightsholder", "Other", "", "x"]),
    reason=st.sampled_from([TDM, "Copyright", "Personal data (GDPR Art. 17)", "Other", "_No response_"]),
    details=st.text(max_size=40),
    confirmation=st.sampled_from([TICKED, f"- [x] {CONFIRMATION_TEXT}", f"- [ ] {CONFIRMATION_TEXT}"]),
)
BODIES = st.one_of(
    FORMS,
    FORMS.map(lambda body: body.replace("\n", "\r\n")),
    st.builds(
        lambda sections, newline: newline.join(
            f"{head}{newline}{newline}{answer}" for head, answer in sections
        ),
        st.lists(SECTIONS, max_size=7),
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
    st.permutations(LABELS).map(lambda labels: "\n\n".join(f"### {label}\n\nOther" for label in labels)),
    st.text(max_size=200),
    st.text(alphabet="#-[]Xx _\n\r*`>", max_size=200),
    st.binary(max_size=100).map(lambda b: b.decode("utf-8", "replace")),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_any_body_gives_a_request_or_field_errors(body: str) -> None:
    result = parse_removal_request(body)
    event("request" if isinstance(result, RemovalRequest) else "field errors")
    if isinstance(result, RemovalRequest):
        assert result.selectors and result.confirmed
        assert result.body_sha256 == hashlib.sha256(body.encode()).hexdigest()
    else:
        assert result and all(isinstance(e, FieldError) and e.message for e in result)
