"""Matching per the DESIGN.md table: boundary cases, and the fast matcher against a naive reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiki_bot.core.matching import match_records, matches
from kiki_bot.core.selectors import InvalidSelector, Selector, parse_selector
from kiki_bot.repo.records import Provenance, Record

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64
HF_URL = "https://huggingface.co/datasets/org/name"


def prov(source: str = "s", idx: int = 0, **kw: object) -> Provenance:
    return Provenance(source=source, license="MIT", record_idx=idx, access_date=dt.date(2025, 1, 1), **kw)


def record(p: Provenance, content_hash: str = H3) -> Record:
    return Record({"text": "x"}, p, Path("x.jsonl"), 1, 0, 1, content_hash)


def hit(line: str, p: Provenance, content_hash: str = H3, source_url: str | None = None) -> bool:
    return matches(parse_selector(line), p, content_hash, source_url)


ESP = prov(repo="espressif/esp-idf", path="examples/blink/main.c")
ESP_EXTRA = prov(repo="espressif/esp-idf-extra", path="examples/blink/main.c")
BLINK2 = prov(repo="espressif/esp-idf", path="examples/blink2/main.c")
BY_ORIGIN = prov(origin="https://github.com/Espressif/ESP-IDF/blob/v5.3/examples/blink/main.c")


GITHUB_CASES = [
    ("espressif", ESP, True),
    ("ESPRESSIF", ESP, True),
    ("espressif", BY_ORIGIN, True),
    ("esp", ESP, False),
    ("espressif/esp-idf", ESP, True),
    ("espressif/esp-idf", ESP_EXTRA, False),
    ("espressif/esp-idf-extra", ESP, False),
    ("Espressif/ESP-IDF.git", ESP, True),
    ("git@github.com:espressif/esp-idf.git", BY_ORIGIN, True),
    ("https://github.com/espressif/esp-idf/tree/v1/examples/blink", ESP, True),
    ("https://github.com/espressif/esp-idf/tree/main/examples/blink/", ESP, True),
    ("https://github.com/espressif/esp-idf/tree/main/examples/blink", BLINK2, False),
    ("https://github.com/espressif/esp-idf/tree/main/examples/blink", ESP_EXTRA, False),
    ("https://github.com/espressif/esp-idf/tree/main/examples/blink", BY_ORIGIN, True),
    ("https://github.com/espressif/esp-idf/blob/any-ref/examples/blink/main.c", ESP, True),
    ("https://github.com/espressif/esp-idf/blob/any-ref/examples/blink/main.c", BY_ORIGIN, True),
    ("https://github.com/espressif/esp-idf/blob/main/examples/blink/MAIN.c", ESP, False),
    ("https://github.com/espressif/esp-idf/tree/main/Examples", ESP, False),
    ("https://github.com/espressif/esp-idf/blob/main/examples/blink/main", ESP, False),
    ("https://github.com/espressif/esp-idf/tree/main/examples", prov(repo="espressif/esp-idf"), False),
    ("espressif", prov(origin="https://github.com/espressif/esp-idf/blob/v1/a/%2e%2e/b.c"), False),
    ("espressif/esp-idf", prov(origin="https://github.com/espressif/esp-idf/blob/v1/a//b.c"), False),
    ("https://github.com/o/r/tree/v1/a", prov(origin="https://github.com/o/r/blob/v2/a%2Fb.c"), True),
]


@pytest.mark.parametrize(("line", "p", "expected"), GITHUB_CASES)
def test_github_boundaries(line: str, p: Provenance, expected: bool) -> None:
    assert hit(line, p) is expected


PAGE = prov(origin="https://Docs.Example.com/guide/intro.html?lang=en#top")
FOLDER = prov(origin="http://docs.example.com:80/guide/")
PORTED = prov(origin="https://docs.example.com:8443/guide/intro.html")


URL_CASES = [
    ("https://docs.example.com/guide/intro.html?lang=en", PAGE, True),
    ("http://DOCS.EXAMPLE.COM:80/guide/intro.html?lang=en#other", PAGE, True),
    ("https://docs.example.com:443/guide/intro.html?lang=en", PAGE, True),
    ("https://docs.example.com/guide/intro.html", PAGE, False),  # query kept
    ("https://docs.example.com/guide/Intro.html?lang=en", PAGE, False),  # paths exact
    ("https://docs.example.com/guide/", PAGE, True),
    ("https://docs.example.com/guide", PAGE, False),  # no trailing `/`: the page only
    ("https://docs.example.com/gui/", PAGE, False),
    ("https://docs.example.com/", PAGE, True),
    ("https://docs.example.com/guide", FOLDER, True),  # trailing `/` ignored for equality
    ("https://docs.example.com/guide/", FOLDER, True),
    ("https://docs.example.com/guide/", PORTED, False),  # non-default port kept
    ("https://docs.example.com:8443/guide/", PORTED, True),
    ("http://docs.example.com:8443/guide/", PORTED, True),
    ("https://docs.example.com/guide/", prov(), False),
    ("domain:example.com", PAGE, True),
    ("domain:docs.example.com", PAGE, True),
    ("domain:Example.COM", PORTED, True),
    ("domain:sub.docs.example.com", PAGE, False),
    ("domain:example.com", prov(origin="https://badexample.com/x"), False),
    ("domain:example.com", prov(origin="https://example.com.evil.net/x"), False),
    ("domain:example.com", prov(origin="https://example.com"), True),
    ("domain:sub.example.com", prov(origin="https://sub.example.com/"), True),
    ("domain:sub.example.com", prov(origin="https://badsub.example.com/"), False),
    ("domain:example.com", prov(origin="ftp://example.com/x"), False),
    ("domain:example.com", prov(repo="o/r", path="example.com"), False),
    # issue 12 defect 7: a folder covers pages whose PATH lies below it, never the folder page with a query
    ("https://x.org/a/", prov(origin="https://x.org/a?x=1/b"), False),
    ("https://x.org/a/", prov(origin="https://x.org/a/?x=1"), False),
    ("https://x.org/a/", prov(origin="https://x.org/a?x=1"), False),
    ("https://x.org/a/", prov(origin="https://x.org/a"), True),
    ("https://x.org/a/", prov(origin="https://x.org/a/"), True),
    ("https://x.org/a/", prov(origin="https://x.org/a/b?x=1"), True),
    ("https://x.org/a/", prov(origin="https://x.org/ab"), False),
    ("https://x.org/", prov(origin="https://x.org/?q=1"), False),
    ("https://x.org/", prov(origin="https://x.org?q=1/a"), False),
    ("https://x.org/", prov(origin="https://x.org"), True),
    ("https://x.org/a/?q=1", prov(origin="https://x.org/a/b"), False),  # with a query: equal URLs only
    ("https://x.org/a/?q=1", prov(origin="https://x.org/a?q=1"), True),
    # paths compare after percent-decoding
    ("https://x.org/a%2Fb", prov(origin="https://x.org/a/b"), True),
    ("https://x.org/d%6Fcs/", prov(origin="https://x.org/docs/a"), True),
    ("https://x.org/docs/", prov(origin="https://x.org/d%6fcs/a"), True),
    ("https://x.org/%C3%A9", prov(origin="https://x.org/é"), True),
    ("https://x.org/%3F/", prov(origin="https://x.org/?/a"), False),
    ("https://x.org/a/", prov(origin="https://x.org/a//"), True),  # `//` stays literal: a page below `a/`
    ("https://x.org/a", prov(origin="https://x.org/a//"), False),
    ("https://10.0.0.1/", prov(origin="https://10.0.0.1/x"), True),
]


@pytest.mark.parametrize(("line", "p", "expected"), URL_CASES)
def test_url_and_domain_boundaries(line: str, p: Provenance, expected: bool) -> None:
    assert hit(line, p) is expected


@pytest.mark.parametrize(
    ("line", "p", "source_url", "expected"),
    [
        ("hf:datasets/org/name", prov(), HF_URL, True),
        ("hf:datasets/ORG/Name", prov(), "https://huggingface.co/datasets/Org/NAME/tree/main", True),
        ("hf:datasets/org/name", prov(), "https://huggingface.co/datasets/org/name2", False),
        ("hf:datasets/org/name", prov(), "https://huggingface.co/org/name", False),  # a model, not a dataset
        ("hf:datasets/org/name", prov(), None, False),
        ("hf:datasets/org/name", prov(origin=HF_URL + "/blob/main/train.jsonl"), None, True),
        ("hf:datasets/org/name", prov(origin=HF_URL), "https://example.com", True),
        ("hf:datasets/org/name", prov(origin=HF_URL + "2/blob/main/x"), None, False),
        (HF_URL + "/viewer", prov(origin=HF_URL + "/resolve/main/x.parquet"), None, False),  # a page, not the dataset
        (HF_URL + "/blob/main/x.json", prov(origin=HF_URL + "/blob/main/y.json"), HF_URL, False),
        ("record:s#3", prov("s", 3), None, True),
        ("record:s#3", prov("s", 4), None, False),
        ("record:s#3", prov("S", 3), None, False),  # source ids are exact
        ("record:s#3", prov("s2", 3), None, False),
        ("sha256:" + H1, prov(sha256=H1), None, True),
        ("sha256:" + H1.upper(), prov(sha256=H1), None, True),
        ("sha256:" + H3, prov(sha256=H1), None, True),  # the content hash
        ("sha256:" + H2, prov(sha256=H1), None, False),
    ],
)
def test_dataset_record_and_hash(line: str, p: Provenance, source_url: str | None, expected: bool) -> None:
    assert hit(line, p, H3, source_url) is expected


def test_first_selector_wins_and_counts() -> None:
    sels = [parse_selector(x) for x in ("record:a#2", "espressif", "espressif/esp-idf", "domain:example.com")]
    recs = [
        record(prov("a", 1, repo="espressif/esp-idf")),
        record(prov("a", 2, repo="espressif/esp-idf")),
        record(prov("a", 3)),
        record(prov("b", 0, origin="https://www.example.com/")),
        record(prov("b", 1, origin="https://other.org/")),
    ]
    result = match_records(sels, recs, {})
    assert result.matches == [("a", 1, 1), ("a", 2, 0), ("b", 0, 3)]
    assert result.counts == {"a": 2, "b": 1}
    assert result.scanned == {"a": 3, "b": 2}
    assert result.uncovered == {"a": {"github_identity": 1, "origin": 1}, "b": {"github_identity": 1}}


def test_uncovered_names_what_is_missing() -> None:
    recs = [record(prov("x", i)) for i in range(412)] + [record(prov("x", 999, repo="o/r"))]
    assert match_records([parse_selector("https://example.com/")], recs, {}).uncovered == {
        "x": {"origin": 413}
    }
    tree = parse_selector("https://github.com/o/r/tree/main/src")
    assert match_records([tree], recs, {}).uncovered == {"x": {"github_identity": 412, "path": 1}}
    hf = [parse_selector("hf:datasets/org/name")]
    assert match_records(hf, recs, {"x": None}).uncovered == {"x": {"origin": 413}}
    other = match_records(hf, recs, {"x": "https://huggingface.co/datasets/org/other"})
    assert other.uncovered == {} and other.matches == []
    assert len(match_records(hf, recs, {"x": HF_URL}).matches) == 413
    assert (
        match_records([parse_selector("record:x#1"), parse_selector("sha256:" + H1)], recs, {}).uncovered
        == {}
    )


# --- the reference: the DESIGN.md table, written naively and independently from the implementation ---


def ref_decode(path: str) -> str:
    """Percent-decoding as DESIGN.md compares paths (undecodable bytes keep the path literal)."""
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return path


def ref_url(url: str | None) -> tuple[str, str, str] | None:
    """(host[:port], decoded path, query) of an http(s) URL, by plain string surgery."""
    if not url or "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        return None
    rest = rest.split("#")[0]
    cut = len(rest)
    for ch in "/?":
        if ch in rest:
            cut = min(cut, rest.index(ch))
    authority, tail = rest[:cut].lower(), rest[cut:]
    path, _, query = tail.partition("?")
    default = ":80" if scheme == "http" else ":443"
    return authority.removesuffix(default), ref_decode(path), query


def ref_is_ip(host: str) -> bool:
    return host.startswith("[") or host.replace(".", "").isdigit()


def ref_github(p: Provenance) -> tuple[str, str, str | None] | None:
    if p.repo:
        owner, repo = p.repo.lower().split("/")
        return owner, repo, p.path
    u = ref_url(p.origin)
    if u is None or u[0] not in ("github.com", "www.github.com"):
        return None
    parts = u[1].removeprefix("/").removesuffix("/").split("/")
    if len(parts) >= 5 and parts[2] in ("blob", "tree") and not {"", ".", ".."} & set(parts):
        return parts[0].lower(), parts[1].lower(), "/".join(parts[4:])
    return None


def ref_dataset(url: str | None) -> tuple[str, str] | None:
    u = ref_url(url)
    if u is None or u[0] not in ("huggingface.co", "www.huggingface.co"):
        return None
    parts = u[1].strip("/").split("/")
    return (parts[1].lower(), parts[2].lower()) if len(parts) >= 3 and parts[0] == "datasets" else None


def ref_matches(sel: Selector, p: Provenance, content_hash: str, source_url: str | None) -> bool:
    g = ref_github(p)
    o = ref_url(p.origin)
    if sel.kind == "account":
        return g is not None and g[0] == sel.owner.lower()
    if sel.kind == "repository":
        return g is not None and (g[0], g[1]) == (sel.owner.lower(), sel.repo.lower())
    if sel.kind == "path":
        return (
            g is not None
            and (g[0], g[1]) == (sel.owner.lower(), sel.repo.lower())
            and g[2] is not None
            and (g[2] == sel.path or g[2].startswith(sel.path + "/"))
        )
    if sel.kind == "url":
        s = ref_url(sel.url)
        if o is None or s is None or o[0] != s[0]:
            return False
        page, folder = o[1].removesuffix("/"), s[1].removesuffix("/")
        if (page, o[2]) == (folder, s[2]):
            return True  # equal URLs: one trailing `/` ignored, the query kept
        # a folder (no query) covers pages whose *path* lies below its own, whatever their query
        return s[1].endswith("/") and not s[2] and page.startswith(folder + "/")
    if sel.kind == "domain":
        host = o[0].rsplit(":", 1)[0] if o and not o[0].startswith("[") else (o[0] if o else "")
        return (
            o is not None and not ref_is_ip(host) and (host == sel.host or host.endswith("." + sel.host))
        )
    if sel.kind == "hf_dataset":
        return (sel.org, sel.name) in (ref_dataset(source_url), ref_dataset(p.origin))
    if sel.kind == "record":
        return (p.source, p.record_idx) == (sel.source, sel.idx)
    return sel.digest in (p.sha256, content_hash)


def ref_match_records(
    sels: list[Selector], recs: list[Record], source_urls: dict[str, str | None]
) -> tuple[list[tuple[str, int, int]], dict[str, dict[str, int]]]:
    found: list[tuple[str, int, int]] = []
    uncovered: dict[str, dict[str, int]] = {}
    kinds = {s.kind for s in sels}
    for r in recs:
        p, url = r.provenance, source_urls.get(r.provenance.source)
        first = next((i for i, s in enumerate(sels) if ref_matches(s, p, r.content_hash, url)), None)
        if first is not None:
            found.append((p.source, p.record_idx, first))
            continue
        g = ref_github(p)
        missing = []
        if kinds & {"account", "repository", "path"} and g is None:
            missing.append("github_identity")
        if "path" in kinds and g is not None and g[2] is None:
            missing.append("path")
        needs_origin = kinds & {"url", "domain"} or ("hf_dataset" in kinds and ref_dataset(url) is None)
        if needs_origin and ref_url(p.origin) is None:
            missing.append("origin")
        for m in missing:
            uncovered.setdefault(p.source, {}).setdefault(m, 0)
            uncovered[p.source][m] += 1
    return found, uncovered


OWNERS = st.sampled_from(["espressif", "Espressif", "esp"])
REPOS = st.sampled_from(["esp-idf", "ESP-IDF", "esp-idf-extra"])
PATHS = st.sampled_from(
    [
        "examples/blink",
        "examples/blink2",
        "examples/blink/main.c",
        "examples",
        "README.md",
        "examples/blink/",
        "Examples/blink",
        "examples%2Fblink",
        "examples/%2e%2e/blink",
        "examples//blink",
    ]
)
HOSTS = st.sampled_from(
    [
        "example.com",
        "Example.COM",
        "sub.example.com",
        "badexample.com",
        "github.com",
        "www.github.com",
        "huggingface.co",
        "10.0.0.1",
        "192.168.0.1",
        "[::1]",
    ]
)
URL_PATHS = st.sampled_from(
    [
        "",
        "/",
        "/docs",
        "/docs/",
        "/docs/a",
        "/docs/a/",
        "/docs2",
        "/datasets/org/name",
        "/datasets/Org/Name/blob/main/x.json",
        "/datasets/org/name2/tree/main",
        "/espressif/esp-idf/blob/v5/examples/blink/main.c",
        "/Espressif/ESP-IDF/tree/main/examples",
        "/espressif/esp-idf-extra/blob/main/README.md",
        "/espressif/esp-idf",
        "/esp/blink",
        # decoding, empty / dot segments and the query tricks of issue 12 defect 7
        "/docs?x=1/a",
        "/docs/?x=1/a",
        "/docs%2Fa",
        "/d%6Fcs/a/",
        "/docs/a%2F",
        "/docs//",
        "/docs//a",
        "/docs/./a",
        "/docs/%2e%2E/a",
        "/%FF/docs",
        "/espressif/esp-idf/blob/v5/examples%2Fblink/main.c",
        "/espressif/esp-idf/blob/v5/examples/%2E%2E/blink/main.c",
        "/espressif/esp-idf/tree/v5/examples//blink",
    ]
)
URLS = st.builds(
    lambda scheme, host, port, path, query, frag: f"{scheme}://{host}{port}{path}{query}{frag}",
    st.sampled_from(["http", "https", "HTTPS"]),
    HOSTS,
    st.sampled_from(["", ":443", ":80", ":8080"]),
    URL_PATHS,
    st.sampled_from(["", "?q=1"]),
    st.sampled_from(["", "#frag"]),
)
HASHES = st.sampled_from([H1, H2, H3])
PROVENANCE = st.builds(
    prov,
    source=st.sampled_from(["s1", "s2"]),
    idx=st.integers(0, 4),
    repo=st.none() | st.builds("{}/{}".format, OWNERS, REPOS),
    path=st.none() | PATHS,
    origin=st.none() | URLS | st.sampled_from(["not a url", "ftp://example.com/docs"]),
    sha256=st.none() | HASHES,
)
SELECTOR_LINES = st.one_of(
    OWNERS,
    st.builds("{}/{}".format, OWNERS, REPOS),
    st.builds("https://github.com/{}/{}.git".format, OWNERS, REPOS),
    st.builds("git@github.com:{}/{}".format, OWNERS, REPOS),
    st.builds(
        "https://github.com/{}/{}/{}/{}/{}".format,
        OWNERS,
        REPOS,
        st.sampled_from(["blob", "tree"]),
        st.sampled_from(["main", "v5"]),
        PATHS,
    ),
    URLS,
    st.builds(
        "domain:{}".format,
        st.sampled_from(
            ["example.com", "sub.example.com", "Example.com", "github.com"]
            + ["0.1", "0.0.1", "168.0.1", "[::1]"]
        ),
    ),
    st.builds(
        "hf:datasets/{}/{}".format, st.sampled_from(["org", "Org"]), st.sampled_from(["name", "name2"])
    ),
    st.builds("record:{}#{}".format, st.sampled_from(["s1", "s2"]), st.integers(0, 4)),
    st.builds("sha256:{}".format, HASHES),
)


def _parsed(lines: list[str]) -> list[Selector]:
    out = []
    for line in lines:
        try:
            out.append(parse_selector(line))
        except InvalidSelector:
            pass  # e.g. `https://github.com/` alone: refused, as tested elsewhere
    return out


@settings(max_examples=1000, deadline=None)
@given(
    lines=st.lists(SELECTOR_LINES, min_size=1, max_size=6),
    provs=st.lists(st.tuples(PROVENANCE, HASHES), max_size=12),
    source_urls=st.fixed_dictionaries(
        {
            "s1": st.none() | st.sampled_from([HF_URL, "https://HuggingFace.co/datasets/Org/Name/tree/main"]),
            "s2": st.none()
            | st.sampled_from(["https://huggingface.co/datasets/org/name2", "https://example.com/docs/"]),
        }
    ),
)
def test_match_records_equals_reference(
    lines: list[str], provs: list[tuple[Provenance, str]], source_urls: dict[str, str | None]
) -> None:
    sels = _parsed(lines)
    recs = [record(p, h) for p, h in provs]
    result = match_records(sels, recs, source_urls)
    expected, uncovered = ref_match_records(sels, recs, source_urls)
    assert result.matches == expected
    assert result.uncovered == uncovered
    for sel in sels:
        for r in recs:
            url = source_urls[r.provenance.source]
            assert matches(sel, r.provenance, r.content_hash, url) is ref_matches(
                sel, r.provenance, r.content_hash, url
            )


SEGMENTS = st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1, max_size=4)


@settings(max_examples=1000, deadline=None)
@given(sel_path=SEGMENTS, rec_path=SEGMENTS, trailing=st.booleans(), labels=SEGMENTS, sel_labels=SEGMENTS)
def test_prefix_boundaries_equal_reference(
    sel_path: list[str], rec_path: list[str], trailing: bool, labels: list[str], sel_labels: list[str]
) -> None:
    """Dense small alphabets so that `a/b` vs `a/bb` vs `a/b/x` (and `b.a` vs `ab.a`) occur constantly."""
    slash = "/" if trailing else ""
    p = prov(
        repo="o/r",
        path="/".join(rec_path) + slash,
        origin=f"https://{'.'.join(labels)}.com/{'/'.join(rec_path)}{slash}",
    )
    lines = [
        f"https://github.com/o/r/tree/main/{'/'.join(sel_path)}",
        f"https://{'.'.join(labels)}.com/{'/'.join(sel_path)}/",
        f"https://{'.'.join(labels)}.com/{'/'.join(sel_path)}",
        f"domain:{'.'.join(sel_labels)}.com",
    ]
    for line in lines:
        assert hit(line, p) is ref_matches(parse_selector(line), p, H3, None), line
