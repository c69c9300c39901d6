"""The provenance index: the same records, matches, purges and figures as streaming the JSONL, and never
trusted when it or the data changed behind its back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from factory import adapter, make_project, record, source, write_jsonl, write_split
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_matching import GITHUB_CASES, HF_URL, PROVENANCE, SELECTOR_LINES, URL_CASES, _parsed

from kiki_bot import removal
from kiki_bot.core.eligibility import Rule
from kiki_bot.core.canonical import content_hash
from kiki_bot.core.errors import BadInput
from kiki_bot.core.matching import match_records
from kiki_bot.core.selectors import github_file_of, hf_dataset_of, origin_url, parse_selector, registrable_domain
from kiki_bot.index import match, refresh, rows, schema, store
from kiki_bot.repo import figures, ledgerfile, manifests, purge
from kiki_bot.repo.project import Project
from kiki_bot.repo.records import iter_source, parse_line, record_text

AT = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _rec(sid: str, i: int, **prov) -> dict:
    owner = ["espressif", "Acme", "octo-dev"][i % 3]
    origin = [
        f"https://github.com/{owner}/fw/blob/main/src/f{i}.c",
        f"https://docs.example.com/guide/p{i}.html",
        f"{HF_URL}/viewer/default/train?row={i}",
        None,
    ][i % 4]
    prov = {
        "origin": origin,
        "repo": f"{owner}/fw" if i % 4 == 0 else None,
        "path": f"src/f{i}.c" if i % 8 == 0 else None,
        **prov,
    }
    notice = "// SPDX-License-Identifier: MIT\n" if i % 5 == 0 else ""  # covered: the row holds it, nothing refused
    return record(sid, i, f"{notice}// {sid} café ✓\nint f{i}(void) {{ return {i % 7}; }}", **prov)


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    """Two sources in several files, a blank line, no final newline, other JSON spacing, twins by content."""
    recs = {
        "acme-fw": [_rec("acme-fw", i) for i in range(40)],
        "blogs": [_rec("blogs", i) for i in range(12)],
    }
    srcs = {"acme-fw": source(), "blogs": source("2.1", url=HF_URL)}
    root = make_project(
        tmp_path / "repo",
        srcs,
        {"blogs": recs["blogs"]},
        adapters={"tiny-lora": adapter(["acme-fw", "blogs"])},
    )
    write_split(root / "data" / "acme-fw", recs["acme-fw"], 15, 25, blank_after=3)
    return Project(root)


def _served(project: Project) -> dict[tuple[str, str], int | None]:
    with store.opened(project, sorted(project.sources)) as ix:
        assert ix is not None
        return {(f.source, f.path.name): f.fid for fs in ix.files.values() for f in fs}


def _rows(project: Project) -> list[tuple]:
    """What the index serves, per record, in stream order (file, line, offset, length, key, hashes...)."""
    out = []
    with store.opened(project, sorted(project.sources)) as ix:
        assert ix is not None
        for sid in sorted(project.sources):
            for f in ix.files[sid]:
                assert f.served, f.path
                for r in ix.conn.execute(
                    "SELECT * FROM records WHERE id BETWEEN ? AND ? ORDER BY id", (f.lo, f.hi)
                ):
                    line, offset = f.locate(r["id"], r["off"])
                    key = (str(f.path), line, offset, r["len"], sid, r["idx"], r["ch"].hex(), r["sha"] and r["sha"].hex())
                    out.append(key + tuple(r[c] for c in rows.COLUMNS[6:]))
    return out


def _expected_rows(project: Project) -> list[tuple]:
    """The same, computed from streamed `Record`s with the library's own functions."""
    out = []
    for sid in sorted(project.sources):
        for r in iter_source(project.data_dir, sid):
            p = r.provenance
            url = origin_url(p.origin)
            owner, _, name = (p.repo or "").partition("/")
            ident = (owner.lower(), name.lower(), p.path) if p.repo else github_file_of(url)
            gkey = None if ident is None else "\0".join(x for x in ident if x is not None)
            flags = (
                (rows.NO_GH if ident is None else rows.NO_PATH if ident[2] is None else 0)
                | (rows.NO_URL if url is None else 0)
                | (rows.NO_ORIGIN if p.origin is None else 0)
            )
            ukey = (
                None
                if url is None
                else (f"{'.'.join(reversed(url.host.split('.')))}\0{url.port or ''}\0{url.path.rstrip('/')}")
            )
            ds = hf_dataset_of(url)
            out.append(
                (
                    str(r.file),
                    r.line,
                    r.offset,
                    r.length,
                    sid,
                    p.record_idx,
                    r.content_hash,
                    p.sha256,
                    p.access_date.toordinal(),
                    p.license,
                    len(record_text(r.payload).encode()),
                    None if p.origin is None else registrable_domain(p.origin),
                    flags,
                    gkey,
                    ukey,
                    None if url is None else url.query,
                    None if ds is None else "/".join(ds),
                    "\n".join(r.notices) or None,
                )
            )
    return out


# ---------------------------------------------------------------- the rows are the records
def test_index_holds_exactly_what_a_fresh_stream_gives(repo: Project) -> None:
    assert _rows(repo) == _expected_rows(repo)
    assert (repo.root / ".kiki" / "index.sqlite").is_file()


def test_refresh_is_incremental_after_editing_adding_and_removing_files(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _served(repo)
    parsed: list[Path] = []
    real = rows.iter_rows
    monkeypatch.setattr(rows, "iter_rows", lambda path, *a, **k: parsed.append(path) or real(path, *a, **k))
    fw = repo.data_dir / "acme-fw"
    # edit one file (and its manifest): only it is parsed again
    write_jsonl(fw / "part-002.jsonl", [_rec("acme-fw", i, license="Apache-2.0") for i in range(25, 41)])
    manifests.refresh(fw)
    assert _served(repo) == before
    assert parsed == [fw / "part-002.jsonl"]
    assert _rows(repo) == _expected_rows(repo)
    # add a file, remove another
    write_jsonl(fw / "part-003.jsonl", [_rec("acme-fw", i) for i in range(41, 45)])
    (fw / "part-000.jsonl").unlink()
    manifests.refresh(fw)
    again = _served(repo)
    assert ("acme-fw", "part-000.jsonl") not in again and again[("acme-fw", "part-003.jsonl")] is not None
    assert again[("acme-fw", "part-001.jsonl")] == before[("acme-fw", "part-001.jsonl")]
    assert _rows(repo) == _expected_rows(repo)
    with sqlite3.connect(schema.index_path(repo.root)) as conn:  # no rows left behind for the removed file
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == len(_expected_rows(repo))


def _verified_long_after(project: Project) -> None:
    """As if the files had been verified well after their last change: their stat is not "racy"."""
    with sqlite3.connect(schema.index_path(project.root)) as conn:
        conn.execute("UPDATE files SET verified = verified + 10000000000")


def _fid_rows(project: Project, name: str) -> list[tuple]:
    with sqlite3.connect(schema.index_path(project.root)) as conn:
        (fid,) = conn.execute(
            "SELECT fid FROM files WHERE source = 'acme-fw' AND name = ?", (name,)
        ).fetchone()
        return conn.execute("SELECT * FROM records WHERE id >> 32 = ? ORDER BY id", (fid,)).fetchall()


def test_appended_lines_are_parsed_alone_and_an_edit_keeps_the_rows_it_did_not_touch(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _served(repo)
    fw = repo.data_dir / "acme-fw"
    path = fw / "part-002.jsonl"
    before = _fid_rows(repo, "part-002.jsonl")
    parsed: list[tuple] = []
    real = rows.iter_rows
    monkeypatch.setattr(
        rows, "iter_rows", lambda *a, **k: parsed.append(a[3:] or k.get("start")) or real(*a, **k)
    )
    old = path.read_bytes()
    with open(path, "ab") as fh:  # new records appended
        fh.write(b"\n".join(json.dumps(_rec("acme-fw", i)).encode() for i in (60, 61)) + b"\n")
    manifests.refresh(fw)
    assert _rows(repo) == _expected_rows(repo)
    assert parsed == [((len(old), old.count(b"\n") + 1),)]  # only the new lines were parsed
    assert _fid_rows(repo, "part-002.jsonl")[: len(before)] == before
    # a line inserted in the middle and another edited: parsed whole, unchanged rows kept
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"return", b"return  ")
    lines.insert(9, json.dumps(_rec("acme-fw", 62)).encode() + b"\n")
    path.write_bytes(b"".join(lines))
    manifests.refresh(fw)
    assert _rows(repo) == _expected_rows(repo)
    after = _fid_rows(repo, "part-002.jsonl")
    assert after[:3] == before[:3] and after[3] != before[3]


def test_a_bad_line_appended_makes_the_file_bad(repo: Project, streaming) -> None:
    _served(repo)
    path = repo.data_dir / "acme-fw" / "part-000.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"text": "x"}\n')
    manifests.refresh(path.parent)
    assert _served(repo)[("acme-fw", "part-000.jsonl")] is None
    with streaming(), pytest.raises(BadInput) as want:
        removal.match(repo, [parse_selector("acme")])
    with pytest.raises(BadInput) as got:
        removal.match(repo, [parse_selector("acme")])
    assert str(got.value) == str(want.value)


def test_unchanged_files_are_not_hashed_again(repo: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _served(repo)
    _served(repo)  # files written within RACY_NS of their verification are hashed once more
    _verified_long_after(repo)
    hashed = []
    monkeypatch.setattr(refresh, "_hash_file", lambda p: hashed.append(p) or None)
    assert all(fid is not None for fid in _served(repo).values())
    assert hashed == []


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(repo: Project) -> None:
    _served(repo)
    _verified_long_after(repo)  # only the stat can tell now
    path = repo.data_dir / "blogs" / "part-000.jsonl"
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b"octo-dev", b"octo-bad"))  # same size, manifest not updated
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime cannot be
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert _served(repo)[("blogs", "part-000.jsonl")] is None
    assert removal.match(repo, [parse_selector("octo-bad")]).result.matches


def test_a_file_edited_without_its_manifest_is_never_served(repo: Project, cli, streaming) -> None:
    sels = [parse_selector(x) for x in ("octo-dev", "domain:example.com", "record:acme-fw#16")]
    _served(repo)
    path = repo.data_dir / "acme-fw" / "part-001.jsonl"
    path.write_bytes(path.read_bytes().replace(b"octo-dev", b"octo-new"))
    served = _served(repo)
    assert served[("acme-fw", "part-001.jsonl")] is None  # no rows for bytes the manifest does not vouch for
    assert all(fid is not None for k, fid in served.items() if k != ("acme-fw", "part-001.jsonl"))
    with sqlite3.connect(schema.index_path(repo.root)) as conn:
        assert conn.execute("SELECT count(*) FROM files WHERE name = 'part-001.jsonl'").fetchone()[0] == 0
    got = removal.match(repo, sels + [parse_selector("octo-new")]).result
    with streaming():
        want = removal.match(repo, sels + [parse_selector("octo-new")]).result
    assert got == want and any(k == 3 for _, _, k in got.matches)  # the edited file, read as it is now
    res = cli("card", "check", "-C", repo.root, "--json")
    assert res.code == 1 and "part-001.jsonl: bytes differ from MANIFEST.json" in res.out


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "schema", "copied", "not ours"])
def test_a_missing_stale_or_foreign_index_is_rebuilt(repo: Project, damage: str) -> None:
    _served(repo)
    path = schema.index_path(repo.root)
    with sqlite3.connect(path) as conn:  # a lie that must never be served
        conn.execute("UPDATE records SET gkey = ?, idx = idx + 1000", ("evil\0x",))
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not a database" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "schema":
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    elif damage == "copied":  # restored from a cache, or committed: another inode
        shutil.copy(path, path.with_suffix(".bak"))
        path.unlink()
        path.with_suffix(".bak").rename(path)
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM meta")
    assert _rows(repo) == _expected_rows(repo)
    assert not removal.match(repo, [parse_selector("evil")]).result.matches


def test_a_bad_line_raises_the_same_error_every_time(repo: Project, streaming) -> None:
    path = repo.data_dir / "acme-fw" / "part-002.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = b'{"text": "x", "_provenance": {"source": "acme-fw", "license": "MIT", "record_idx": -1}}\n'
    path.write_bytes(b"".join(lines))
    manifests.refresh(path.parent)
    sels = [parse_selector("octo-dev")]
    with streaming(), pytest.raises(BadInput) as want:
        removal.match(repo, sels)
    for _ in range(2):  # built once (and remembered as bad), then served from that memory
        with pytest.raises(BadInput) as got:
            removal.match(repo, sels)
        assert str(got.value) == str(want.value) and f"{path}:5" in str(got.value)


def test_a_source_mismatch_is_the_same_error(repo: Project, streaming) -> None:
    write_jsonl(repo.data_dir / "blogs" / "part-009.jsonl", [_rec("acme-fw", 99)])
    manifests.refresh(repo.data_dir / "blogs")
    with streaming(), pytest.raises(BadInput) as want:
        removal.match(repo, [parse_selector("octo-dev")])
    with pytest.raises(BadInput) as got:
        removal.match(repo, [parse_selector("octo-dev")])
    assert str(got.value) == str(want.value)


def test_an_unusable_index_directory_falls_back_to_streaming(repo: Project, streaming) -> None:
    (repo.root / ".kiki").write_text("a file where the directory should be")
    sels = [parse_selector("espressif")]
    got = removal.match(repo, sels).result
    with streaming():
        assert got == removal.match(repo, sels).result


# ---------------------------------------------------------------- parsing like parse_line, faster
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**65) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
PROV_VALUES = {
    "source": st.sampled_from(["s", "", "é", "s\udc80", 3]),
    "license": st.sampled_from(["MIT", "", "MIT OR Apache-2.0", None, "ünï"]),
    "record_idx": st.sampled_from([0, 7, -1, 2**70, True, 1.0, 1.5, "3", None]),
    "access_date": st.sampled_from(
        [
            "2025-10-02",
            "2025-1-02",
            "2025-02-30",
            "0000-01-01",
            "0001-01-01",
            "2025-10-02T00:00:00",
            "２０２５-10-02",
            20251002,
            None,
        ]
    ),
    "origin": st.sampled_from([None, "https://a.example/x", "ftp://x", "https://é.example/", 5]),
    "repo": st.sampled_from([None, "o/r", "o/r\n", "o/r/x", "ö/r", ""]),
    "path": st.sampled_from([None, "a/b.c", "", "ä", 1]),
    "sha256": st.sampled_from([None, "a" * 64, "A" * 64, "a" * 63, "a" * 64 + "\n"]),
    "upstream_id": st.sampled_from([None, "row-1", "", 7, True, 1.5, ["x"], {"id": 1}]),
    "extra": JSON_VALUES,
}


@st.composite
def lines(draw) -> bytes:
    prov = {
        k: draw(v) for k, v in PROV_VALUES.items() if draw(st.booleans()) or k in ("source", "record_idx")
    }
    obj = {
        k: draw(JSON_VALUES)
        for k in draw(st.sets(st.sampled_from(["text", "prompt", "completion", "messages", "x"])))
    }
    if draw(st.booleans()):
        obj["_provenance"] = prov
    elif draw(st.booleans()):
        obj["_provenance"] = draw(JSON_VALUES)
    doc = obj if draw(st.integers(0, 9)) else draw(JSON_VALUES)
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return draw(
        st.sampled_from(
            [
                raw,
                raw + b"\n",
                b"\xef\xbb\xbf" + raw,
                raw[:-1],
                raw.replace(b"{", b"[", 1),
                raw.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass"),
            ]
        )
    )


def _outcome(fn, raw: bytes):
    try:
        return fn(raw)
    except Exception as exc:  # noqa: BLE001  the exact error is the point
        return (type(exc), str(exc))


def _by_parse_line(raw: bytes):
    r = parse_line(raw, Path("f.jsonl"), 3, 10)
    p = r.provenance
    return (
        r.payload,
        (p.source, p.license, p.record_idx, p.access_date.toordinal(), p.origin, p.repo, p.path, p.sha256),
        bytes.fromhex(r.content_hash),
    )


def _valid(**prov) -> bytes:
    return json.dumps({"text": "x", "_provenance": {"source": "s", "license": "MIT", "record_idx": 0,
                                                    "access_date": "2025-10-02", **prov}}).encode()


@settings(max_examples=1500, deadline=None)
@given(raw=lines())
@example(raw=_valid(upstream_id=["x"])).via("an upstream id of no accepted type")
@example(raw=_valid(upstream_id=True)).via("a boolean is not an integer id")
@example(raw=_valid(upstream_id=7)).via("an integer id")
def test_parse_fields_is_parse_line(raw: bytes) -> None:
    assert _outcome(lambda b: rows.parse_fields(b, Path("f.jsonl"), 3, 10), raw) == _outcome(
        _by_parse_line, raw
    )


URLISH = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "https:", "", " https://", "https:///"]),
    st.text(alphabet="aB0.-_:@[]%é", max_size=12),
    st.text(alphabet="/?#aé%2F.\t\n", max_size=10),
    st.sampled_from(["", "/x", "?q=1", "#f", "/a/b/?q#z"]),
)


@settings(max_examples=2000, deadline=None)
@given(origin=URLISH | st.text(max_size=20))
def test_origin_parts_are_origin_url_and_registrable_domain(origin: str) -> None:
    want = _outcome(lambda o: (origin_url(o), registrable_domain(o)), origin)
    assert _outcome(rows.origin_parts, origin) == want


# ---------------------------------------------------------------- matching: the index answers as streaming does
TEXTS = ["a", "b", "é ✓"]
CONTENT = [content_hash({"text": t}) for t in TEXTS]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines_=st.lists(
        SELECTOR_LINES | st.sampled_from([f"sha256:{h}" for h in CONTENT]), min_size=1, max_size=6
    ),
    provs=st.lists(st.tuples(PROVENANCE, st.sampled_from(TEXTS), st.integers(0, 1)), max_size=14),
    source_urls=st.fixed_dictionaries(
        {
            "s1": st.none() | st.sampled_from([HF_URL, "https://HuggingFace.co/datasets/Org/Name/tree/main"]),
            "s2": st.none()
            | st.sampled_from(["https://huggingface.co/datasets/org/name2", "https://example.com/docs/"]),
        }
    ),
    served=st.booleans(),
)
def test_index_matching_equals_match_records(lines_, provs, source_urls, served) -> None:
    sels = _parsed(lines_)
    with tempfile.TemporaryDirectory() as tmp:
        project = _project_of(Path(tmp), [(p, text, part) for p, text, part in provs])
        if not served and (project.data_dir / "s1").is_dir():  # one source's files are streamed, not served
            (project.data_dir / "s1" / "MANIFEST.json").write_text('{"files": {}}')
        with store.opened(project, ["s1", "s2"]) as ix:
            assert ix is not None
            got = match.match(ix, ["s1", "s2"], sels, source_urls)
        recs = [r for sid in ("s1", "s2") for r in iter_source(project.data_dir, sid)]
        want = match_records(sels, recs, source_urls)
        assert got.matches == want.matches and got.hashes == want.hashes
        assert got.counts == want.counts and got.scanned == want.scanned
        assert got.uncovered == want.uncovered


def _project_of(root: Path, provs: list[tuple]) -> SimpleNamespace:
    """A bare project whose data holds one record per (provenance, text, file part), manifests refreshed.
    A key drawn twice gets a fresh record_idx: (source, record_idx) is unique within a source."""
    per_file: dict[tuple[str, int], list[str]] = {}
    used: set[tuple[str, int]] = set()
    for p, text, part in provs:
        if (p.source, p.record_idx) in used:
            p = p.model_copy(update={"record_idx": 1000 + len(used)})
        used.add((p.source, p.record_idx))
        doc = {"text": text, "_provenance": p.model_dump(mode="json", exclude_none=True)}
        per_file.setdefault((p.source, part), []).append(json.dumps(doc, ensure_ascii=False))
    for (sid, part), docs in per_file.items():
        path = root / "data" / sid / f"part-{part}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    for sid in ("s1", "s2"):
        if (root / "data" / sid).is_dir():
            manifests.refresh(root / "data" / sid)
    return SimpleNamespace(root=root, data_dir=root / "data", sources={"s1": None, "s2": None})


def test_index_answers_every_boundary_case_of_the_matching_table(tmp_path: Path) -> None:
    """The SQL path on the DESIGN.md table's edges (IP hosts, decoded paths, folders vs queries, `//`)."""
    cases = GITHUB_CASES + URL_CASES
    provs = [
        (p.model_copy(update={"source": "s1", "record_idx": n}), "a", 0) for n, (_, p, _) in enumerate(cases)
    ]
    project = _project_of(tmp_path, provs)
    with store.opened(project, ["s1"]) as ix:
        assert ix is not None
        for n, (line, _, expected) in enumerate(cases):
            got = {i for _, i, _ in match.match(ix, ["s1"], [parse_selector(line)], {}).matches}
            assert (n in got) is expected, (line, provs[n][0])


def test_removal_match_uses_the_index_and_agrees_with_streaming(repo: Project, streaming) -> None:
    lines_ = [
        "espressif",
        "acme/fw",
        "https://github.com/octo-dev/fw/tree/v1/src",
        "domain:example.com",
        "https://docs.example.com/guide/",
        "hf:datasets/org/name",
        "record:blogs#3",
        f"sha256:{content_hash(_rec('blogs', 5))}",
        "https://docs.example.com/guide/p13.html",
    ]
    for k in range(len(lines_)):
        sels = [parse_selector(x) for x in lines_[k:] + lines_[:k]]
        got = removal.match(repo, sels)
        with streaming():
            want = removal.match(repo, sels)
        assert got.result == want.result and got.per_adapter == want.per_adapter
    assert (repo.root / ".kiki" / "index.sqlite").is_file()


# ---------------------------------------------------------------- purge through the index
def _twin(repo: Project) -> None:
    """blogs#7 gets the payload of acme-fw#3: a hash selector takes both."""
    path = repo.data_dir / "blogs" / "part-000.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    recs[7] = {**_rec("acme-fw", 3), "_provenance": recs[7]["_provenance"]}
    write_jsonl(path, recs)
    manifests.refresh(path.parent)


def test_purge_through_the_index_equals_purge_by_stream(repo: Project, streaming, tmp_path: Path) -> None:
    _twin(repo)
    other = Project(shutil.copytree(repo.root, tmp_path / "other"))
    steps = [
        ({("acme-fw", 0), ("acme-fw", 14), ("acme-fw", 16), ("acme-fw", 24)}, set()),
        ({("acme-fw", 17), ("blogs", 0)}, {content_hash(_rec("acme-fw", 3))}),
        ({("acme-fw", 18), ("acme-fw", 39)}, set()),
    ]
    for n, (keys, hashes) in enumerate(steps):
        got = purge.plan(repo, keys, hashes)
        with streaming():
            want = purge.plan(other, keys, hashes)
        assert got.records == want.records
        assert [(c.source, c.name, c.drops) for c in got.cuts] == [
            (c.source, c.name, c.drops) for c in want.cuts
        ]
        assert purge.purge(repo, f"R-{n + 1}", n + 1, keys, hashes, [], "m", AT) == list(got.records)
        with streaming():
            purge.purge(other, f"R-{n + 1}", n + 1, keys, hashes, [], "m", AT)
        for path in sorted(other.data_dir.glob("*/*")):
            assert (repo.root / path.relative_to(other.root)).read_bytes() == path.read_bytes()
        for cut in got.cuts:  # the entry hashed while copying is the file's
            source_dir = repo.data_dir / cut.source
            assert manifests.load(source_dir).files[cut.name] == manifests.describe_file(source_dir / cut.name)
        assert _rows(repo) == _expected_rows(repo)  # the rewritten files' rows: derived, not parsed
    with sqlite3.connect(schema.index_path(repo.root)) as conn:
        assert conn.execute("SELECT count(*) FROM files WHERE drops IS NOT NULL").fetchone()[0] >= 3
        assert conn.execute("SELECT count(*) FROM pending").fetchone()[0] == 0
    assert purge.plan(repo, steps[0][0], set()) == purge.PurgePlan((), ())


def test_a_cut_file_changed_otherwise_is_parsed_again(repo: Project) -> None:
    keys = {("acme-fw", 16)}
    plan = purge.plan(repo, keys)
    purge.apply(repo, plan)
    path = repo.data_dir / "acme-fw" / "part-001.jsonl"
    path.write_bytes(path.read_bytes().replace(b"octo-dev", b"octo-zzz"))  # not what the cut predicted
    manifests.refresh(path.parent)
    assert _rows(repo) == _expected_rows(repo)


# ---------------------------------------------------------------- figures through the index
def _figures(project: Project, rule: Rule | None = None):
    return figures.compute(project, project.adapters["tiny-lora"], rule)


class _Reserved:
    """A reservation of rights on record for one host the records come from (docs.example.com)."""

    def hosts(self, source: str) -> frozenset[str]:
        return frozenset({"docs.example.com", "elsewhere.example"})

    def reserved(self, source: str, host: str, day: dt.date) -> str | None:
        return f"{host} had reserved its rights (ai.txt)" if host == "docs.example.com" else None


def test_figures_through_the_index_equal_streamed_figures(repo: Project, streaming) -> None:
    _twin(repo)
    purge.purge(repo, "R-1", 1, {("acme-fw", 3), ("blogs", 2)}, set(), [], "m", AT)
    # the purged content comes back under new keys, and a purged key comes back with new content
    extra = [
        {**_rec("acme-fw", 3), "_provenance": _rec("acme-fw", 50)["_provenance"]},
        _rec("blogs", 2),
        _rec("blogs", 51, license="GPL-3.0-only"),
    ]
    write_jsonl(repo.data_dir / "blogs" / "part-001.jsonl", extra[1:])
    write_jsonl(repo.data_dir / "acme-fw" / "part-009.jsonl", extra[:1])
    for sid in ("blogs", "acme-fw"):
        manifests.refresh(repo.data_dir / sid)
    entries = ledgerfile.read(repo.ledger_path)
    rule = Rule.of(entries, repo.config.policy.allowed_licenses, _Reserved())
    got = _figures(repo, rule)
    with streaming():
        want = _figures(repo, rule)
    assert got == want
    assert len(got.reappeared) == 3  # blogs#7 (twin), blogs#2, acme-fw#50
    assert len(got.refused) == 1 and "_provenance.license" in got.refused[0]
    assert len(got.reserved) > 5 and all("docs.example.com had reserved its rights (ai.txt)" in r for r in got.reserved)


def test_an_invalid_licence_is_the_same_error(repo: Project, streaming) -> None:
    write_jsonl(
        repo.data_dir / "blogs" / "part-001.jsonl", [_rec("blogs", 60), _rec("blogs", 61, license="MIT AND")]
    )
    manifests.refresh(repo.data_dir / "blogs")
    with streaming(), pytest.raises(BadInput) as want:
        _figures(repo)
    with pytest.raises(BadInput) as got:
        _figures(repo)
    assert str(got.value) == str(want.value) and "part-001.jsonl:2" in str(got.value)


def test_token_counts_with_a_tokenizer_are_cached_per_file(repo: Project, streaming, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(
        ["int f(void) { return 1; }"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"])
    )
    base = tmp_path / "base"
    base.mkdir()
    tok.save(str(base / "tokenizer.json"))
    text = (repo.root / "adapters" / "tiny-lora.toml").read_text()
    (repo.root / "adapters" / "tiny-lora.toml").write_text(
        text.replace("[base_model]\n", f'[base_model]\nlocal_path = "{base}"\n')
    )
    project = Project(repo.root)
    rule = Rule(purged={("acme-fw", 5)}, allowed=frozenset(project.config.policy.allowed_licenses))
    got = _figures(project, rule)
    with streaming():
        want = _figures(Project(repo.root), rule)
    assert got == want and got.token_method == "tokenizer"
    with sqlite3.connect(schema.index_path(repo.root)) as conn:
        assert conn.execute("SELECT count(*) FROM file_tokens").fetchone()[0] == 4
    assert _figures(Project(repo.root), rule) == want


def test_card_render_and_check_agree_with_and_without_the_index(repo: Project, cli, streaming) -> None:
    args = ("card", "render", "-C", repo.root, "--version", "0.1.0", "--date", "2026-05-06")
    assert cli(*args).code == 0
    card = (repo.root / "cards" / "tiny-lora" / "card.json").read_bytes()
    assert cli("card", "check", "-C", repo.root).code == 0
    with streaming():
        assert cli(*args).code == 0
        assert cli("card", "check", "-C", repo.root).code == 0
    assert (repo.root / "cards" / "tiny-lora" / "card.json").read_bytes() == card
    assert hashlib.sha256(card).hexdigest()


def test_nested_use_in_one_process_does_not_deadlock(repo: Project) -> None:
    with store.opened(repo, ["acme-fw"]) as outer:
        assert outer is not None
        assert removal.match(repo, [parse_selector("acme")]).result.matches  # opens it again inside
        assert _figures(repo).sources["acme-fw"].records == 40
        assert outer.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 4
