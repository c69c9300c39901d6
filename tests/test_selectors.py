"""Identifier lines → selectors: every accepted form, every refusal with its reason, canonical round trip."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiki_bot.core.selectors import (
    AccountSelector,
    DomainSelector,
    HfDatasetSelector,
    InvalidSelector,
    PathSelector,
    RecordSelector,
    RepositorySelector,
    Sha256Selector,
    UrlSelector,
    github_identity,
    parse_selector,
)
from kiki_bot.repo.records import Provenance

HEX = "0123456789abcdef" * 4

ACCEPTED = [
    ("https://github.com/espressif", AccountSelector(owner="espressif")),
    ("espressif", AccountSelector(owner="espressif")),
    ("  Espressif  ", AccountSelector(owner="espressif")),
    ("http://www.GitHub.com/espressif/", AccountSelector(owner="espressif")),
    ("https://github.com/espressif?tab=repositories", AccountSelector(owner="espressif")),
    ("espressif/esp-idf", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("Espressif/ESP-IDF.git", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("https://github.com/espressif/esp-idf", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("https://github.com/espressif/esp-idf.git", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("https://github.com:443/espressif/esp-idf/", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("git@github.com:espressif/esp-idf.git", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("git@github.com:espressif/esp-idf", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("https://github.com/espressif/esp-idf/tree/v5.3", RepositorySelector(owner="espressif", repo="esp-idf")),
    ("https://github.com/o/r.js", RepositorySelector(owner="o", repo="r.js")),
    (
        "https://github.com/espressif/esp-idf/blob/v5.3/examples/get-started/blink/main/blink.c",
        PathSelector(
            owner="espressif", repo="esp-idf", path="examples/get-started/blink/main/blink.c", is_tree=False
        ),
    ),
    (
        "https://github.com/Espressif/esp-idf/tree/main/examples/Blink/#readme",
        PathSelector(owner="espressif", repo="esp-idf", path="examples/Blink", is_tree=True),
    ),
    (
        "https://github.com/o/r/blob/main/my%20file.c?plain=1#L3",
        PathSelector(owner="o", repo="r", path="my file.c", is_tree=False),
    ),
    ("https://Example.COM:443/a/b/#x", UrlSelector(url="https://example.com/a/b/", prefix=True)),
    ("HTTP://example.com:80/Page?q=1", UrlSelector(url="http://example.com/Page?q=1", prefix=False)),
    ("https://example.com:8443/x", UrlSelector(url="https://example.com:8443/x", prefix=False)),
    ("https://example.com/docs/?q=1", UrlSelector(url="https://example.com/docs/?q=1", prefix=False)),
    ("https://example.com", UrlSelector(url="https://example.com", prefix=False)),
    ("https://github.com/o/r/issues/1", UrlSelector(url="https://github.com/o/r/issues/1", prefix=False)),
    ("https://example.com/a%2Fb/", UrlSelector(url="https://example.com/a%2Fb/", prefix=True)),
    ("https://example.com/a%2F", UrlSelector(url="https://example.com/a%2F", prefix=True)),  # decoded: `/`
    ("https://10.0.0.1/a", UrlSelector(url="https://10.0.0.1/a", prefix=False)),
    (
        "https://github.com/o/r/blob/main/src%2Fa.c",
        PathSelector(owner="o", repo="r", path="src/a.c", is_tree=False),
    ),
    ("domain:Sub.Example.com", DomainSelector(host="sub.example.com")),
    ("domain:163.com", DomainSelector(host="163.com")),  # all-numeric labels are valid in a host name
    ("domain:1.example.com", DomainSelector(host="1.example.com")),
    ("DOMAIN:example.com.", DomainSelector(host="example.com")),
    ("hf:datasets/Org/Name", HfDatasetSelector(org="org", name="name")),
    ("hf:datasets/org/name/", HfDatasetSelector(org="org", name="name")),
    ("https://huggingface.co/datasets/org/name", HfDatasetSelector(org="org", name="name")),
    ("https://huggingface.co/datasets/org/name/tree/main", HfDatasetSelector(org="org", name="name")),
    (  # a viewer page or a row is that page or row, never the whole dataset
        "https://huggingface.co/datasets/org/name/viewer/default/train",
        UrlSelector(url="https://huggingface.co/datasets/org/name/viewer/default/train", prefix=False),
    ),
    (
        "https://huggingface.co/datasets/org/name/viewer/c/train?row=7",
        UrlSelector(url="https://huggingface.co/datasets/org/name/viewer/c/train?row=7", prefix=False),
    ),
    (
        "https://huggingface.co/datasets/org/name/blob/main/x.json",
        UrlSelector(url="https://huggingface.co/datasets/org/name/blob/main/x.json", prefix=False),
    ),
    ("record:esp-idf#17", RecordSelector(source="esp-idf", idx=17)),
    ("record:my.src_2#0", RecordSelector(source="my.src_2", idx=0)),
    ("sha256:" + HEX.upper(), Sha256Selector(digest=HEX)),
    ("SHA256:" + HEX, Sha256Selector(digest=HEX)),
]


@pytest.mark.parametrize(("line", "expected"), ACCEPTED)
def test_accepted_forms(line: str, expected: object) -> None:
    assert parse_selector(line) == expected


@pytest.mark.parametrize(("line", "expected"), ACCEPTED)
def test_canonical_form_round_trips(line: str, expected: object) -> None:
    assert parse_selector(str(parse_selector(line))) == expected


def test_canonical_display() -> None:
    assert str(parse_selector("Espressif/ESP-IDF.git")) == "https://github.com/espressif/esp-idf"
    blob = "https://github.com/o/r/blob/v1/a%20b/c.c"
    assert str(parse_selector(blob)) == "https://github.com/o/r/blob/HEAD/a%20b/c.c"
    assert (
        str(parse_selector("https://github.com/o/r/tree/v1/docs/")) == "https://github.com/o/r/tree/HEAD/docs"
    )
    assert str(parse_selector("https://huggingface.co/datasets/O/N")) == "hf:datasets/o/n"
    assert str(parse_selector("domain:EXAMPLE.com")) == "domain:example.com"
    assert str(parse_selector("record:s#7")) == "record:s#7"


REFUSED = [
    ("", "empty"),
    ("*", "wildcard"),
    ("https://example.com/*", "wildcard"),
    ("^.+$", "pattern characters"),
    ("everyone?", "pattern characters"),
    ("(foo|bar)", "pattern characters"),
    ("github.com", "GitHub identifiers"),
    ("GitHub.com/espressif", "GitHub identifiers"),
    ("https://github.com", "all of GitHub"),
    ("https://www.github.com/", "all of GitHub"),
    ("/esp-idf", "owner is empty"),
    ("espressif/", "repository name is empty"),
    ("espressif/.git", "repository name is empty"),
    ("espressif/..", "not a valid repository name"),
    ("espressif/a+b", "pattern characters"),
    ("https://github.com//esp-idf", "empty path segment"),
    ("https://github.com/o/r/blob/main", "needs a path"),
    ("https://github.com/o/r/tree/main/../secret", "`.` or `..` segment"),
    # after percent-decoding, `.`, `..` and empty segments are refused in every URL (DESIGN.md section 3)
    ("https://github.com/acme/fw/blob/main/src%2F..%2Ff1.c", "`.` or `..` segment"),
    ("https://github.com/acme/fw/blob/main/src/%2e%2E/f1.c", "`.` or `..` segment"),
    ("https://github.com/acme/fw/tree/main/./src", "`.` or `..` segment"),
    ("https://github.com/acme/fw/blob/main/src%2F%2Ff1.c", "empty path segment"),
    ("https://github.com/acme/fw/blob//f1.c", "empty path segment"),
    ("https://github.com/acme/fw/issues/%2e%2e/1", "`.` or `..` segment"),
    ("https://example.com/a//", "empty path segment"),
    ("https://example.com//", "empty path segment"),
    ("https://example.com/a//b", "empty path segment"),
    ("https://example.com/a/%2F/b", "empty path segment"),
    ("https://example.com/a/../b/", "`.` or `..` segment"),
    ("https://example.com/a/%2E/", "`.` or `..` segment"),
    ("https://example.com/.", "`.` or `..` segment"),
    ("https://huggingface.co/datasets/o/n/blob/main/..%2Fx", "`.` or `..` segment"),
    ("https://github.com/o/r/tree", "branch, tag or commit"),
    ("under_score", "not a valid GitHub login"),
    ("double--hyphen", "not a valid GitHub login"),
    ("-leading", "not a valid GitHub login"),
    ("a" * 40, "not a valid GitHub login"),
    ("example.com", "host name"),
    ("example.com/page", "host name"),
    ("a/b/c", "one `/`"),
    ("- espressif", "spaces"),
    ("espressif esp-idf", "spaces"),
    ("ftp://example.com/x", "only http"),
    ("javascript://alert", "only http"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://[::1/", "well-formed"),
    ("https://example.com:99999/", "well-formed"),
    ("https:///path", "no valid host"),
    ("https://exa_mple..com/", "no valid host"),
    ("domain:", "needs a host name"),
    ("domain:https://example.com", "needs a host name"),
    ("domain:example.com:8080", "needs a host name"),
    ("domain:com", "public suffix"),
    ("domain:co.uk", "public suffix"),
    ("domain:github.io", "public suffix"),
    # an IP address is not a domain: a host whose last label is a number is one (the URL standard's IPv4 rule)
    ("domain:0.1", "IP address"),
    ("domain:10.0.0.1", "IP address"),
    ("domain:192.168.0.1", "IP address"),
    ("domain:0x7f.1", "IP address"),
    ("domain:example.123", "IP address"),
    ("domain:[::1]", "needs a host name"),
    ("domain:::ffff:10.0.0.1", "needs a host name"),
    ("domain:localhost", "public suffix"),
    ("domain:1", "IP address"),
    ("hf:models/org/name", "only datasets"),
    ("hf:datasets/org", "only datasets"),
    ("hf:datasets/-org/name", "not a valid dataset name"),
    ("https://huggingface.co/datasets/org", "needs `/datasets/<org>/<name>`"),
    ("record:esp-idf", "record:<source-id>#<record_idx>"),
    ("record:#3", "record:<source-id>#<record_idx>"),
    ("record:esp-idf#-1", "non-negative whole number"),
    ("record:esp-idf#1.5", "non-negative whole number"),
    ("record:esp-idf#" + "9" * 5000, "non-negative whole number"),
    ("record:esp-idf#\u0663", "non-negative whole number"),
    ("sha256:abc", "64 hexadecimal digits"),
    ("sha256:" + "g" * 64, "64 hexadecimal digits"),
    ("sha256:" + HEX + "0", "64 hexadecimal digits"),
    ("git@gitlab.com:o/r.git", "git@github.com"),
    ("git@github.com:o", "git@github.com"),
]


@pytest.mark.parametrize(("line", "why"), REFUSED)
def test_refused_lines_say_why(line: str, why: str) -> None:
    with pytest.raises(InvalidSelector) as exc:
        parse_selector(line)
    assert why in exc.value.problem


ECHO_PROBES = [
    "zqxj?",
    "zqxj.com",
    "zqxj/",
    "/zqxj",
    "zqxj_",
    "a/zqxj/b",
    "https://zqxj.com/*",
    "ftp://zqxj",
    "domain:zqxj",
    "hf:datasets/zqxj",
    "record:zqxj",
    "sha256:zqxj",
    "git@zqxj:o/r",
]


@pytest.mark.parametrize("line", ECHO_PROBES)
def test_refusals_never_echo_the_line(line: str) -> None:
    """Messages are bot-authored, so they can be posted without escaping attacker text."""
    with pytest.raises(InvalidSelector) as exc:
        parse_selector(line)
    assert "zqxj" not in exc.value.problem


def test_owner_login() -> None:
    assert parse_selector("Espressif").owner_login == "espressif"
    assert parse_selector("espressif/esp-idf").owner_login == "espressif"
    assert parse_selector("https://github.com/Espressif/x/blob/m/a.c").owner_login == "espressif"
    for line in (
        "https://github.com/espressif/x/issues",
        "domain:example.com",
        "hf:datasets/o/n",
        "record:s#1",
        "sha256:" + HEX,
    ):
        assert parse_selector(line).owner_login is None


def _prov(**kw: object) -> Provenance:
    return Provenance(source="s", license="MIT", record_idx=0, access_date=dt.date(2025, 1, 1), **kw)


def test_github_identity() -> None:
    assert github_identity(_prov(repo="Espressif/ESP-IDF", path="Examples/a.c")) == (
        "espressif",
        "esp-idf",
        "Examples/a.c",
    )
    assert github_identity(_prov(repo="o/r")) == ("o", "r", None)
    blob = "https://www.github.com:443/O/R/blob/v5.3/dir/My%20File.c#L1"
    assert github_identity(_prov(origin=blob)) == ("o", "r", "dir/My File.c")
    assert github_identity(_prov(origin="https://github.com/o/r/tree/main/dir/")) == ("o", "r", "dir")
    # repo/path win over the origin
    assert github_identity(_prov(repo="a/b", origin="https://github.com/o/r/blob/m/x")) == ("a", "b", None)
    for origin in (
        None,
        "https://github.com/o/r",
        "https://github.com/o/r/blob/main",
        "https://github.com/o/r/issues/1/x",
        "https://example.com/o/r/blob/m/x",
        "https://github.com/o_o/r/blob/m/x",
        "https://github.com/o/r/blob/m/../x",
        "not a url",
    ):
        assert github_identity(_prov(origin=origin)) is None


SEGMENT = st.text(alphabet="abcXYZ019-_. %/#?", min_size=1, max_size=8)
LINES = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda *p: "".join(p),
        st.sampled_from(
            ["", "https://", "http://", "git@", "domain:", "hf:", "record:", "sha256:", "HTTPS://www."]
        ),
        st.sampled_from(["", "github.com/", "github.com:", "huggingface.co/datasets/", "example.com/"]),
        st.lists(SEGMENT, max_size=6).map("/".join),
    ),
)


@given(LINES)
def test_any_line_is_a_selector_that_round_trips_or_a_refusal(line: str) -> None:
    try:
        sel = parse_selector(line)
    except InvalidSelector as exc:
        assert exc.problem
    else:
        assert parse_selector(str(sel)) == sel
